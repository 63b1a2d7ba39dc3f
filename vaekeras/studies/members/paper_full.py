"""`paper_full`: the paper study on the authors' own 50 betas."""

from vaekeras.studies import registry
from vaekeras.studies.paper import PaperStudy

registry.register(
    "paper_full", help="the authors' 50 betas on [0.01, 10], 1 seed.",
    make=lambda: PaperStudy(full=True),
)(PaperStudy)
