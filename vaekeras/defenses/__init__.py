"""Defenses: VAEs trained to resist latent attacks, one file each.

Each defense subclasses `vaekeras.models.VAE`, declares its options once
(`options`) and changes only the loss, through its `extra_loss` hook, so
training, saving, export, the metric and the attacks work on it
unchanged. `build_defended_vae(input_shape, defense, ...)` builds any of
them by name (`DEFENSES`), as `apps/train.py --defense=...` does.

- `MixupVAE` (`mixup`): trains on convex mixtures of its inputs.
- `GeometryRegularizedVAE` (`geometry_penalty`): the paper's own lens as
  a penalty on the encoder's pullback metric.
- `LipschitzVAE` (`lipschitz`, Barrett et al., 2022), with
  `certified_radius` (`certificates`).
- `AdversarialVAE` (`adversarial`, Cemgil et al., 2020).
- `TCVAE` (`tc`, Chen et al., 2018).

The test-time MCMC defense is not a model: `vaekeras.purification`
(`MCMCReconstruction`, also importable from here).
"""

from vaekeras.defenses.adversarial import ADV_DIVERGENCES
from vaekeras.defenses.adversarial import AdversarialVAE
from vaekeras.defenses.adversarial import gaussian_w2
from vaekeras.defenses.certificates import ACTIVATION_LIPSCHITZ
from vaekeras.defenses.certificates import certified_radius
from vaekeras.defenses.certificates import layer_lipschitz
from vaekeras.defenses.certificates import lipschitz_constants
from vaekeras.defenses.certificates import operator_norm
from vaekeras.defenses.geometry_penalty import PENALTIES
from vaekeras.defenses.geometry_penalty import GeometryRegularizedVAE
from vaekeras.defenses.geometry_penalty import metric_penalty
from vaekeras.defenses.lipschitz import LipschitzVAE
from vaekeras.defenses.lipschitz import build_lipschitz_vae
from vaekeras.defenses.mixup import DEFAULT_MIXUP_CONSISTENCY
from vaekeras.defenses.mixup import MixupVAE
from vaekeras.defenses.registry import DEFENSE_CLASSES
from vaekeras.defenses.registry import DEFENSE_OPTIONS
from vaekeras.defenses.registry import DEFENSES
from vaekeras.defenses.registry import build_defended_vae
from vaekeras.defenses.registry import build_vae
from vaekeras.defenses.registry import check_defense_options
from vaekeras.defenses.tc import TCVAE
from vaekeras.defenses.tc import kl_decomposition
from vaekeras.purification import MCMC_METHODS
from vaekeras.purification import MCMCReconstruction

__all__ = [
    "ADV_DIVERGENCES", "ACTIVATION_LIPSCHITZ", "AdversarialVAE",
    "DEFAULT_MIXUP_CONSISTENCY", "DEFENSES", "DEFENSE_CLASSES",
    "DEFENSE_OPTIONS", "GeometryRegularizedVAE", "LipschitzVAE",
    "MCMCReconstruction", "MCMC_METHODS", "MixupVAE", "PENALTIES", "TCVAE",
    "build_defended_vae", "build_lipschitz_vae", "build_vae",
    "certified_radius", "check_defense_options", "gaussian_w2",
    "kl_decomposition", "layer_lipschitz", "lipschitz_constants",
    "metric_penalty", "operator_norm",
]
