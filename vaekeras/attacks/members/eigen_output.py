"""`eigen_output`: one step along the top eigenvector of the output metric."""

from vaekeras.attacks import methods
from vaekeras.attacks import registry


def make(model, eps, settings):
    return methods.EigenAttack(
        model, eps=eps, norm=settings.norm, kind="output",
        batch_size=settings.batch_size,
    )


SPEC = registry.add(registry.AttackSpec(
    "eigen_output", make=make, family="eigen", ensemble=True,
    marker="v",
    help="One step along the top eigenvector of the output pullback metric.",
), __name__)
