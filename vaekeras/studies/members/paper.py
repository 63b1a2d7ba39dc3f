"""`paper`: Khan & Storkey's claims on eight betas and a mixup VAE."""

from vaekeras.studies import registry
from vaekeras.studies.paper import PaperStudy

registry.register(
    "paper",
    help="betas 0.01..8 and mixup at beta 1, 3 seeds (the paper's claims).",
)(PaperStudy)
