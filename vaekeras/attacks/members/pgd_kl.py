"""`pgd_kl`: projected gradient ascent on the latent KL divergence.

On the bare encoder, with random restarts in the protocol.
"""

from vaekeras.attacks import methods
from vaekeras.attacks import registry


def make(model, eps, settings):
    return methods.LatentPGD(
        model, norm=settings.norm, eps=eps, max_iter=settings.max_iter,
        objective="kl", seed=settings.seed, batch_size=settings.batch_size,
    )


def runs(context, x, eps_list, seed):
    """The first run from next to x, the others from random points."""
    return [
        methods.LatentPGD(
            context.model, norm=context.norm, eps=eps_list,
            max_iter=context.pgd_iter, objective="kl",
            random_init=restart > 0, seed=seed + restart,
            batch_size=context.batch_size,
        ).generate(x)
        for restart in range(context.restarts)
    ]


SPEC = registry.add(registry.AttackSpec(
    "pgd_kl", make=make, runs=runs, family="pgd",
    marker="o",
    help="PGD on KL(q(z|x+delta) || q(z|x)), the latent divergence.",
), __name__)
