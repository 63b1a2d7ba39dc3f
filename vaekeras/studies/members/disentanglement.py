"""`disentanglement`: the five metrics beside the protocol on dSprites."""

from vaekeras.studies import registry
from vaekeras.studies.disentanglement import DisentanglementStudy

registry.register(
    "disentanglement",
    help="beta-VAEs and beta-TCVAEs on dsprites: disentanglement metrics "
    "against the worst-damage area.",
)(DisentanglementStudy)
