"""Masked models that look robust and are not: the protocol must mark
them unreliable.

- `Shatter`: the identity in the forward pass (bit for bit), with the
  gradient cos(1000 x + phase) instead of 1: the model is exactly as
  vulnerable as before, but its gradient points nowhere useful.
- `Round`: pixels rounded to `levels` levels, with no gradient at all.

And one that is honest though rough, which the protocol must not flag:

- `Ripple`: x + sin(frequency x) / frequency with its true gradient
  1 + cos(frequency x): finite differences match it only at steps small
  against 1 / frequency, as through a Markov chain's accept-or-reject.
- `Jumps`: x plus a jump wherever the image's mean pixel crosses a fine
  grid, with the true gradient (1) between the jumps: piecewise smooth,
  as a chain's accept-or-reject makes the damage.
"""

import keras
import numpy as np
from keras import ops

import vaekeras


class _Wave(keras.layers.Layer):
    """A layer that adds a wave of `frequency` to its input."""

    def __init__(self, frequency=1000.0, **kwargs):
        super().__init__(**kwargs)
        self.frequency = frequency

    def get_config(self):
        return {**super().get_config(), "frequency": self.frequency}


@keras.saving.register_keras_serializable(package="vaekeras_tests")
class Shatter(_Wave):
    """Identity forward; gradient cos(frequency x + phase)."""

    def call(self, x):
        phase = ops.reshape(
            ops.arange(int(np.prod(x.shape[1:])), dtype="float32"),
            x.shape[1:],
        )
        wave = ops.sin(self.frequency * x + phase) / self.frequency
        return ops.stop_gradient(x) + (wave - ops.stop_gradient(wave))


@keras.saving.register_keras_serializable(package="vaekeras_tests")
class Round(keras.layers.Layer):
    """Pixels rounded to `levels` levels; no gradient."""

    def __init__(self, levels=255, **kwargs):
        super().__init__(**kwargs)
        self.levels = levels

    def call(self, x):
        return ops.stop_gradient(ops.round(x * self.levels) / self.levels)

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


@keras.saving.register_keras_serializable(package="vaekeras_tests")
class Ripple(_Wave):
    """x + sin(frequency x) / frequency, honest gradient."""

    def call(self, x):
        return x + ops.sin(self.frequency * x) / self.frequency


@keras.saving.register_keras_serializable(package="vaekeras_tests")
class Jumps(_Wave):
    """x + size (0 or 1, alternating every 1 / frequency of the mean
    pixel); gradient 1."""

    def __init__(self, frequency=1e6, size=0.05, **kwargs):
        super().__init__(frequency, **kwargs)
        self.size = size

    def call(self, x):
        level = ops.floor(
            self.frequency * ops.mean(x, axis=(1, 2, 3), keepdims=True)
        )
        return x + self.size * ops.stop_gradient(ops.mod(level, 2.0))

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def wrapped(model, layer):
    """`model` (a vaekeras VAE) with `layer` in front of its encoder."""
    inputs = keras.Input(model.encoder.inputs[0].shape[1:])
    encoder = keras.Model(inputs, model.encoder(layer(inputs)))
    return vaekeras.VAE(
        encoder, model.decoder, beta=model.beta, likelihood=model.likelihood,
        seed=0,
    )
