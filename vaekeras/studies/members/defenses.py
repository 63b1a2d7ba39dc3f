"""`defenses`: every defense on one robustness/distortion frontier."""

from vaekeras.studies import registry
from vaekeras.studies.defenses import DefensesStudy

registry.register(
    "defenses", help="every defense on one frontier, 3 seeds, the protocol.",
)(DefensesStudy)
