"""`eigen_output`: one step along the top eigenvector of the output metric."""

import functools

from vaekeras.attacks import registry
from vaekeras.attacks.members import eigen

SPEC = registry.add(registry.AttackSpec(
    "eigen_output", make=functools.partial(eigen.make, kind="output"),
    family="eigen", ensemble=True, marker="v",
    help="One step along the top eigenvector of the output pullback metric.",
), __name__)
