"""How the protocol scores adversarial images: damage and latent KL.

Damage is the reconstruction's per-pixel MSE against the clean image,
minus the clean reconstruction's, both through a test-time defense when
one is given.
"""

import numpy as np

from vaekeras import backend
from vaekeras.attacks import damage as damage_module


class Scorer:
    """Damage and latent KL of adversarial images, clean error once.

    Args:
        adapter: the model's `vaekeras.latent.LatentModel`.
        x: clean images (numpy).
        defense: None, or an object with `reconstruct(x)`.
        batch_size: images per call.
    """

    def __init__(self, adapter, x, defense, batch_size):
        self.adapter = adapter
        self.defense = defense
        self.batch_size = batch_size
        self.x = x
        self.z_mean, self.z_log_var = encode_numpy(adapter, x, batch_size)
        self.clean_mse = self.mse(self.reconstruct(x))

    def reconstruct(self, images):
        if self.defense is None:
            return self.adapter.reconstruct_numpy(images, self.batch_size)
        parts = [
            np.asarray(backend.as_numpy(self.defense.reconstruct(
                images[i:i + self.batch_size]
            )), "float32")
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts).reshape(images.shape)

    def mse(self, reconstructions, x=None):
        x = self.x if x is None else x
        axes = tuple(range(1, x.ndim))
        return np.mean((reconstructions - x) ** 2, axis=axes)

    def damage(self, x_adv):
        """Per-image damage of `x_adv` (aligned with the clean images)."""
        return self.mse(self.reconstruct(x_adv)) - self.clean_mse

    def score(self, x_adv):
        """`{"damage", "latent_kl"}` per image."""
        mean, log_var = encode_numpy(self.adapter, x_adv, self.batch_size)
        kl = damage_module.gaussian_kl_numpy(
            mean, log_var, self.z_mean, self.z_log_var
        )
        return {"damage": self.damage(x_adv), "latent_kl": kl}


def encode_numpy(adapter, x, batch_size):
    """`(z_mean, z_log_var)` of numpy images, as numpy, in batches."""
    means, log_vars = [], []
    for i in range(0, len(x), batch_size):
        mean, log_var = adapter.encode(x[i:i + batch_size])
        means.append(backend.as_numpy(mean))
        log_vars.append(backend.as_numpy(log_var))
    return np.concatenate(means), np.concatenate(log_vars)
