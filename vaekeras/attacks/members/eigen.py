"""`eigen`: one step along the top eigenvector of the pullback metric.

The paper's attack; the metric is the settings' `kind` (the attack app's
`--kind`).
"""

from vaekeras.attacks import methods
from vaekeras.attacks import registry


def make(model, eps, settings, kind=None):
    """The eigen attack of metric `kind` (default: the settings')."""
    return methods.EigenAttack(
        model, eps=eps, norm=settings.norm, kind=kind or settings.kind,
        batch_size=settings.batch_size,
    )


SPEC = registry.add(registry.AttackSpec(
    "eigen", make=make, family="eigen", marker="^",
    help="One step along the top eigenvector of the metric of `kind`.",
), __name__)
