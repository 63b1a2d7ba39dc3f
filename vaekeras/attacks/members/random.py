"""`random`: random directions of the whole budget, the baseline."""

from vaekeras.attacks import methods
from vaekeras.attacks import registry

# Directions per image in the protocol: a gradient attack must beat the
# best of them, not one lucky or unlucky draw.
DRAWS = 4


def make(model, eps, settings):
    return methods.RandomAttack(
        eps=eps, norm=settings.norm, seed=settings.seed,
        batch_size=settings.batch_size,
    )


def runs(context, x, eps_list, seed):
    """`DRAWS` random directions per image and budget."""
    attack = methods.RandomAttack(
        eps=eps_list, norm=context.norm, seed=seed,
        batch_size=context.batch_size,
    )
    return [attack.generate(x) for _ in range(DRAWS)]


SPEC = registry.add(registry.AttackSpec(
    "random", make=make, runs=runs, family="random", role="baseline",
    ensemble=True, needs_gradients=False, marker="x",
    help="Random directions using the whole budget (the baseline).",
), __name__)
