"""Everything that differs between the TensorFlow, JAX and torch backends.

This package and `export` (a SavedModel is TensorFlow's format) are the
only ones that import tensorflow, jax or torch or ask Keras which backend
runs; `data` builds `tf.data` pipelines, which every backend's `fit`
reads. A test walks every module's imports and calls to keep it so.

- autodiff: input VJPs and JVPs (differentiable, for training losses
  built from input derivatives), value-and-gradient, the Gauss-Newton
  product `J^T diag(w) J v`, and per-sample Jacobians;
- compilation: `tf.function`, `jax.jit`, eager torch;
- replicas and placement: the `tf.distribute` replica of a training step,
  the loss scale per replica, a measurement split over a mirrored
  strategy's replicas or a JAX mesh;
- devices: what `vaekeras.distribution` plans over.
"""


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


# The submodules use `name` and friends above: imported after them.
from vaekeras.backend.autodiff import encoder_jacobian  # noqa: E402
from vaekeras.backend.autodiff import input_jvp  # noqa: E402
from vaekeras.backend.autodiff import input_vjp  # noqa: E402
from vaekeras.backend.autodiff import metric_product  # noqa: E402
from vaekeras.backend.autodiff import value_and_grad  # noqa: E402
from vaekeras.backend.compile import compile_on_weights  # noqa: E402
from vaekeras.backend.compile import compile_plain  # noqa: E402
from vaekeras.backend.compile import replica_id  # noqa: E402
from vaekeras.backend.compile import scale_for_replicas  # noqa: E402
from vaekeras.backend.devices import DATA_PARALLEL_BACKENDS  # noqa: E402
from vaekeras.backend.devices import data_parallel_engine  # noqa: E402
from vaekeras.backend.devices import devices  # noqa: E402
from vaekeras.backend.devices import environment  # noqa: E402
from vaekeras.backend.devices import processes  # noqa: E402
from vaekeras.backend.devices import splits_batches_evenly  # noqa: E402

__all__ = [
    "BACKENDS", "DATA_PARALLEL_BACKENDS", "DEFAULT", "as_numpy",
    "compile_on_weights", "compile_plain", "data_parallel_engine",
    "devices", "encoder_jacobian", "environment", "input_jvp", "input_vjp",
    "is_symbolic", "metric_product", "name", "processes", "replica_id",
    "scale_for_replicas", "splits_batches_evenly", "value_and_grad",
]
