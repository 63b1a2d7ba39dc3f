"""vaekeras: adversarial robustness of VAEs through encoder geometry.

The public names are imported on first use (PEP 562): `import vaekeras`
loads no backend, so the apps check their flags before TensorFlow
starts. Load a saved model with `vaekeras.load_model(path)` (or import
`vaekeras.defenses` before `keras.saving.load_model`), which registers
every model class with Keras.
"""

import os

from vaekeras import _lazy
from vaekeras import _quiet

__version__ = "0.1.0"

# torch's OpenMP threads spin while they wait. On a CPU shared with other
# work that made torch training 6x slower (docs: "Torch on CPU"); passive
# waiting costs nothing on an idle machine. Takes effect only when torch is
# imported after vaekeras; an explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# TensorFlow's start-up banner is nothing a user can act on.
_quiet.install()

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "VAE": "models",
    "MixupVAE": "defenses",
    "Sampling": "layers",
    "build_vae": "defenses",
    "build_defended_vae": "defenses",
    "evaluate_robustness": "attacks",
    "load_model": "artifacts",
    "as_vae": "model_interface",
}, submodules=(
    "architectures", "attacks", "backend", "checks", "curves", "data",
    "defenses", "evaluation", "export", "geometry", "latent", "layers",
    "model_interface", "models", "purification", "registry", "reporting",
    "runs", "scores", "studies", "training", "tuning",
))
__all__ = [*__all__, "__version__"]
