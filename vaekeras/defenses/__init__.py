"""Defenses: VAEs trained to resist latent attacks, one file each.

Each defense subclasses `vaekeras.models.VAE`, declares its options once
(`options`) and changes only the loss, through its `extra_loss` hook, so
training, saving, export, the metric and the attacks work on it
unchanged. Every defense is registered by name (`registry`; built-ins
in `members/`, one file each; a user's with `register`), and
`build_defended_vae(input_shape, defense, ...)` builds any of them, as
`apps/train.py --defense=...` does.

- `MixupVAE` (`mixup`): trains on convex mixtures of its inputs.
- `GeometryRegularizedVAE` (`geometry`): the paper's own lens as a
  penalty on the encoder's pullback metric.
- `LipschitzVAE` (`lipschitz`, Barrett et al., 2022), with
  `certified_radius` (`certificates`).
- `AdversarialVAE` (`adversarial`, Cemgil et al., 2020).
- `TCVAE` (`tc`, Chen et al., 2018).

The test-time MCMC defense is not a model: `vaekeras.purification`
(`MCMCReconstruction`, also importable from here).

Names are imported on first use: importing this package imports no
backend.
"""

from vaekeras import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "ADV_DIVERGENCES": "members.adversarial",
    "AdversarialVAE": "members.adversarial",
    "gaussian_w2": "members.adversarial",
    "ACTIVATION_LIPSCHITZ": "certificates",
    "certified_radius": "certificates",
    "layer_lipschitz": "certificates",
    "lipschitz_constants": "certificates",
    "operator_norm": "certificates",
    "PENALTIES": "members.geometry",
    "GeometryRegularizedVAE": "members.geometry",
    "metric_penalty": "members.geometry",
    "LipschitzVAE": "members.lipschitz",
    "build_lipschitz_vae": "members.lipschitz",
    "DEFAULT_MIXUP_CONSISTENCY": "members.mixup",
    "MixupVAE": "members.mixup",
    "TCVAE": "members.tc",
    "kl_decomposition": "members.tc",
    "DefenseSpec": "registry",
    "check_defense_options": "registry",
    "load_builtins": "registry",
    "names": "registry",
    "register": "registry",
    "resolve": "registry",
    "specs": "registry",
    "Option": "options",
    "build_defended_vae": "build",
    "build_vae": "build",
    "MCMC_METHODS": "vaekeras.purification",
    "MCMCReconstruction": "vaekeras.purification",
}, submodules=("build", "certificates", "members", "options", "registry"))
