"""`eigen_fisher`: one step along the top eigenvector of the fisher metric."""

from vaekeras.attacks import methods
from vaekeras.attacks import registry


def make(model, eps, settings):
    return methods.EigenAttack(
        model, eps=eps, norm=settings.norm, kind="fisher",
        batch_size=settings.batch_size,
    )


SPEC = registry.add(registry.AttackSpec(
    "eigen_fisher", make=make, family="eigen", ensemble=True,
    marker="^",
    help="One step along the top eigenvector of the fisher pullback metric.",
), __name__)
