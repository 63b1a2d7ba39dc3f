"""Layers shared by the VAE models."""

import keras
from keras import ops

# Bounds on log sigma^2: exp(-30) and exp(20) stay finite in float32, and a
# clamped value keeps one bad batch from turning the loss into NaN.
LOG_VAR_MIN = -30.0
LOG_VAR_MAX = 20.0


def clip_log_var(z_log_var):
    """Clamps a log-variance tensor to [LOG_VAR_MIN, LOG_VAR_MAX]."""
    return ops.clip(z_log_var, LOG_VAR_MIN, LOG_VAR_MAX)


@keras.saving.register_keras_serializable(package="vaekeras")
class LogVarianceClip(keras.layers.Layer):
    """Clamps the encoder's log-variance head (see `LOG_VAR_MIN/MAX`).

    Inside the encoder, so that every consumer of the encoder (the loss, the
    pullback metric, attacks, the exported SavedModel) sees the same values.
    """

    def call(self, z_log_var):
        return clip_log_var(z_log_var)


@keras.saving.register_keras_serializable(package="vaekeras")
class Sampling(keras.layers.Layer):
    """Draws z = mu + sigma * eps from the diagonal Gaussian posterior.

    Args:
        seed: int or None, seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: base `Layer` arguments.

    Call args:
        inputs: list `[z_mean, z_log_var]`, each `(B, d)`.
        method: `"sample"` (default) draws; `"mode"` returns `z_mean`, for
            deterministic code paths and tests.

    Example:

    >>> z = Sampling(seed=0)([ops.zeros((2, 3)), ops.zeros((2, 3))])
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, method="sample"):
        z_mean, z_log_var = inputs
        if method == "mode":
            return z_mean
        if method != "sample":
            raise ValueError(
                "Invalid value received for argument `method`: expected "
                f'"sample" or "mode". Received: method={method!r}'
            )
        eps = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * clip_log_var(z_log_var)) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def save_own_variables(self, store):
        # The sampler's random state is saved with the weights, so a run
        # resumed from a backup draws the noise the uninterrupted one would.
        save_seed_state(self.seed_generator, store, "seed_state")

    def load_own_variables(self, store):
        load_seed_state(self.seed_generator, store, "seed_state")

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def save_seed_state(generator, store, key):
    """Writes a `keras.random.SeedGenerator`'s state into a weights store."""
    store[key] = ops.convert_to_numpy(generator.state.value)


def load_seed_state(generator, store, key):
    """Restores what `save_seed_state` wrote; files without it are fine."""
    if key in list(store.keys()):
        generator.state.assign(store[key])
