"""`eigen_fisher`: one step along the top eigenvector of the fisher metric."""

import functools

from vaekeras.attacks import registry
from vaekeras.attacks.members import eigen

SPEC = registry.add(registry.AttackSpec(
    "eigen_fisher", make=functools.partial(eigen.make, kind="fisher"),
    family="eigen", ensemble=True, marker="^",
    help="One step along the top eigenvector of the fisher pullback metric.",
), __name__)
