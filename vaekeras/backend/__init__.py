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


from vaekeras.backend.autodiff import encoder_jacobian
from vaekeras.backend.autodiff import input_jvp
from vaekeras.backend.autodiff import input_vjp
from vaekeras.backend.autodiff import metric_product
from vaekeras.backend.autodiff import value_and_grad
from vaekeras.backend.compile import compile_on_weights
from vaekeras.backend.compile import compile_plain
from vaekeras.backend.compile import replica_id
from vaekeras.backend.compile import scale_for_replicas
from vaekeras.backend.core import BACKENDS
from vaekeras.backend.core import DEFAULT
from vaekeras.backend.core import as_numpy
from vaekeras.backend.core import is_symbolic
from vaekeras.backend.core import name
from vaekeras.backend.devices import DATA_PARALLEL_BACKENDS
from vaekeras.backend.devices import data_parallel_engine
from vaekeras.backend.devices import devices
from vaekeras.backend.devices import environment
from vaekeras.backend.devices import processes
from vaekeras.backend.devices import splits_batches_evenly

__all__ = [
    "BACKENDS", "DATA_PARALLEL_BACKENDS", "DEFAULT", "as_numpy",
    "compile_on_weights", "compile_plain", "data_parallel_engine",
    "devices", "encoder_jacobian", "environment", "input_jvp", "input_vjp",
    "is_symbolic", "metric_product", "name", "processes", "replica_id",
    "scale_for_replicas", "splits_batches_evenly", "value_and_grad",
]
