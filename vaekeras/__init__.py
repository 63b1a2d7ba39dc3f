"""vaekeras: adversarial robustness of VAEs through encoder geometry."""

__version__ = "0.1.0"

from vaekeras.layers import Sampling  # noqa: E402
from vaekeras.models import VAE  # noqa: E402
from vaekeras.models import MixupVAE  # noqa: E402
from vaekeras.models import build_vae  # noqa: E402

__all__ = ["VAE", "MixupVAE", "Sampling", "build_vae", "__version__"]
