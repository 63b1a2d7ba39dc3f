"""A user's own defense and attack, registered from outside the package.

The two forms README and docs/guide/extending.md show; the contract
tests import this module and so test both with no other edit.
"""

import numpy as np
from keras import ops

import vaekeras


@vaekeras.defenses.register("smooth")
class SmoothVAE(vaekeras.VAE):
    """A beta-VAE with a penalty on the squared latent means."""

    options = (vaekeras.defenses.Option(
        "smooth_weight", 0.1, "weight of a latent penalty.",
        vaekeras.checks.non_negative),)

    def extra_loss(self, x, encoding, training=False):
        return self.smooth_weight * ops.mean(ops.sum(
            ops.square(encoding.z_mean), axis=-1))


@vaekeras.attacks.register("my_shift")
def my_shift(model, x, eps, *, norm, seed):
    """Moves every pixel by the same seeded random sign, twice the budget.

    Deliberately over budget: the protocol must project it back.
    """
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=x.shape[1:]).astype("float32")
    step = 2.0 * eps / (np.sqrt(signs.size) if norm == 2 else 1.0)
    return x + step * signs
