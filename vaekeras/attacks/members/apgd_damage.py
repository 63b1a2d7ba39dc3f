"""`apgd_damage`: Auto-PGD on the reconstruction damage itself.

Croce & Hein (2020)'s step schedule and momentum, runs from next to x,
from random points and from latent warm starts
(`vaekeras.attacks.apgd_attack`), every budget in one batch. Through a
test-time defense that offers `attack_encode` the gradient goes through
the defense, averaged over its randomness (EOT).
"""

from vaekeras.attacks import apgd_attack
from vaekeras.attacks import registry


def make(model, eps, settings):
    return apgd_attack.APGD.from_settings(model, eps, settings, "damage")


def runs(context, x, eps_list, seed):
    """`context.restarts` runs (see `apgd_attack.start_kinds`)."""
    return apgd_attack.APGD(
        context.model, eps_list, norm=context.norm, objective="damage",
        iterations=context.pgd_iter, restarts=context.restarts, seed=seed,
        batch_size=context.batch_size,
        defense=context.defense if context.adaptive else None,
        eot_samples=context.eot_samples,
    ).runs(x)


SPEC = registry.add(registry.AttackSpec(
    "apgd_damage", make=make, runs=runs, family="apgd", role="damage",
    ensemble=True, marker="P",
    help="Auto-PGD on the reconstruction error (through a defense).",
), __name__)
