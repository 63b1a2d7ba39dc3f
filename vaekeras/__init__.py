"""vaekeras: adversarial robustness of VAEs through encoder geometry."""

import os

__version__ = "0.1.0"

# torch's OpenMP threads spin while they wait. On a CPU shared with other
# work that made torch training 6x slower (docs: "Torch on CPU"); passive
# waiting costs nothing on an idle machine. Takes effect only when torch is
# imported after vaekeras; an explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Importing the defenses registers every model class for `.keras` loading.
from vaekeras.attacks import evaluate_robustness  # noqa: E402
from vaekeras.defenses import MixupVAE  # noqa: E402
from vaekeras.defenses import build_vae  # noqa: E402
from vaekeras.layers import Sampling  # noqa: E402
from vaekeras.models import VAE  # noqa: E402

__all__ = [
    "VAE", "MixupVAE", "Sampling", "build_vae", "evaluate_robustness",
    "__version__",
]
