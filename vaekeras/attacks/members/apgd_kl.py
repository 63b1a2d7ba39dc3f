"""`apgd_kl`: Auto-PGD on the latent KL divergence, on the bare encoder.

One run from next to x: the KL's gradient differs from the damage's, so
its images add diversity to the ensemble's per-image worst case.
"""

from vaekeras.attacks import apgd_attack
from vaekeras.attacks import registry


def make(model, eps, settings):
    return apgd_attack.APGD.from_settings(model, eps, settings, "kl")


def runs(context, x, eps_list, seed):
    """One run from next to x."""
    return apgd_attack.APGD(
        context.model, eps_list, norm=context.norm, objective="kl",
        iterations=context.pgd_iter, seed=seed,
        batch_size=context.batch_size,
    ).runs(x)


SPEC = registry.add(registry.AttackSpec(
    "apgd_kl", make=make, runs=runs, family="apgd", ensemble=True,
    marker="h",
    help="Auto-PGD on KL(q(z|x+delta) || q(z|x)), the latent divergence.",
), __name__)
