"""How the protocol scores adversarial images: damage and latent KL.

Damage is the reconstruction's per-pixel MSE against the clean image,
minus the clean reconstruction's, both through a test-time defense when
one is given.
"""

import numpy as np

from vaekeras import backend
from vaekeras.attacks import damage as damage_module


def randomized(defense):
    """Whether a defense's reconstruction is random: it offers
    `attack_draws` (its randomness, for EOT) or says `stochastic = True`."""
    return defense is not None and bool(
        getattr(defense, "stochastic", hasattr(defense, "attack_draws"))
    )


class Scorer:
    """Damage and latent KL of adversarial images, clean error once.

    Through a randomized defense (`randomized`) every image's error is the
    mean over `draws` fresh reconstructions, the clean image's too, so a
    lucky draw neither makes nor hides damage.

    Args:
        adapter: the model's `vaekeras.latent.LatentModel`.
        x: clean images (numpy).
        defense: None, or an object with `reconstruct(x)`.
        batch_size: images per call.
        draws: reconstructions averaged per image through a randomized
            defense (1 otherwise).
    """

    def __init__(self, adapter, x, defense, batch_size, draws=1):
        self.adapter = adapter
        self.defense = defense
        self.batch_size = batch_size
        self.x = x
        self.draws = draws if randomized(defense) else 1
        self.z_mean, self.z_log_var = encode_numpy(adapter, x, batch_size)
        self.clean_mse = self.error(x)

    def reconstruct(self, images):
        """One (defended) reconstruction of `images`."""
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

    def error(self, images, x=None):
        """Per image: the reconstruction's MSE against `x` (default the
        clean images), averaged over `draws` reconstructions."""
        return np.mean([
            self.mse(self.reconstruct(images), x) for _ in range(self.draws)
        ], axis=0)

    def damage(self, x_adv):
        """Per-image damage of `x_adv` (aligned with the clean images)."""
        return self.error(x_adv) - self.clean_mse

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
