"""`random`: a random direction of the whole budget, the baseline."""

from vaekeras.attacks import methods
from vaekeras.attacks import registry


def make(model, eps, settings):
    return methods.RandomAttack(
        eps=eps, norm=settings.norm, seed=settings.seed,
        batch_size=settings.batch_size,
    )


SPEC = registry.add(registry.AttackSpec(
    "random", make=make, family="random", role="baseline", ensemble=True,
    needs_gradients=False, marker="x",
    help="A random direction using the whole budget (the baseline).",
), __name__)
