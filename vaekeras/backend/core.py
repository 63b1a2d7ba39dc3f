"""The backend's name and what every other backend module needs."""

import keras
import numpy as np
from keras import ops

BACKENDS = ("tensorflow", "jax", "torch")
# The backend run folders and tests assume unless another is named.
DEFAULT = "tensorflow"


def name():
    """The Keras backend name, checked to be one vaekeras differentiates."""
    backend = keras.backend.backend()
    if backend not in BACKENDS:
        raise ValueError(
            "vaekeras needs the tensorflow, jax or torch backend. Received: "
            f"KERAS_BACKEND={backend!r}"
        )
    return backend


def is_symbolic(x):
    """Whether `x` is traced (inside `tf.function`, `jax.jit`, Keras)."""
    if isinstance(x, keras.KerasTensor):
        return True
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return isinstance(x, tf.Tensor) and not hasattr(x, "numpy")
    if backend == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


def as_numpy(x):
    """A numpy array of any backend tensor."""
    return np.asarray(ops.convert_to_numpy(x))
