"""Data-parallel training and measurement on many devices and hosts.

vaekeras writes no engine of its own: on JAX it uses
`keras.distribution.DataParallel` (one program over a device mesh, the
batch split along its first axis, weights replicated), on TensorFlow a
`tf.distribute.MirroredStrategy` (one replica per device, one host). torch
is not supported, nor TensorFlow across hosts (`TF_CONFIG`): Keras 3's
`fit` fails under `MultiWorkerMirroredStrategy` (measured with Keras
3.15 and TF 2.21 on two loopback workers), so many hosts run on JAX.

`plan_distribution("auto" | "none" | "data_parallel")` decides what to use
and returns a `DistributionPlan`: build, compile and fit the model inside
`plan.scope()`. The batch size is always the global batch: each of n
replicas sees batch_size / n examples per step.

Multi-host JAX: set `KERAS_DISTRIBUTION_JOB_ADDRESSES` (comma-separated
host:port of every process, the first is the coordinator),
`KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID` on
each host; `plan_distribution` then calls `keras.distribution.initialize`
once, and every host's devices join the mesh.
"""

import contextlib
import dataclasses
import json
import os

import keras

from vaekeras import backend as backends
from vaekeras import checks
from vaekeras import choices

DISTRIBUTIONS = choices.DISTRIBUTIONS
SUPPORTED_BACKENDS = backends.DATA_PARALLEL_BACKENDS
MULTI_HOST_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
_INITIALIZED = []


@dataclasses.dataclass
class DistributionPlan:
    """What a run distributes over; `scope()` applies it.

    Attributes:
        name: `"none"` or `"data_parallel"`.
        backend: the Keras backend.
        devices: the device names the batch is split over (empty for
            none).
        processes: number of hosts (JAX multi-host), 1 otherwise.
        process_index: this host's index.
    """

    name: str
    backend: str
    devices: tuple = ()
    processes: int = 1
    process_index: int = 0
    _engine: object = dataclasses.field(default=None, repr=False)

    @property
    def num_replicas(self):
        """Devices the global batch is split over (1 without)."""
        return max(len(self.devices), 1)

    def scope(self):
        """Context for model building, `compile`, `fit` and measurement."""
        if self.name == "none":
            return contextlib.nullcontext()
        return self.engine().scope()

    def engine(self):
        """The Keras `Distribution` (JAX) or `tf.distribute` strategy."""
        if self._engine is None and self.name != "none":
            self._engine = backends.data_parallel_engine(
                self.devices, self.processes
            )
        return self._engine

    def batch_multiple(self):
        """What every local batch's size must be a multiple of.

        JAX splits each batch evenly over the mesh, so a host's batch
        must divide among its own devices; `tf.distribute` handles uneven
        batches itself (1).
        """
        if self.name == "data_parallel" and backends.splits_batches_evenly():
            return self.num_replicas // self.processes
        return 1

    def local_batch(self, global_batch):
        """This host's share of the global batch (all of it on one host).

        Raises:
            ValueError: when the global batch does not divide evenly among
                the devices (JAX) or the hosts.
        """
        multiple = self.batch_multiple() * self.processes
        if global_batch % multiple:
            raise ValueError(
                "Invalid value received for argument `batch_size`: with "
                f"{self.num_replicas} devices on {self.processes} host(s) "
                f"on {self.backend}, the global batch must divide evenly "
                f"among {multiple}. Received: batch_size={global_batch}"
            )
        return global_batch // self.processes

    def local_share(self, images):
        """This host's share of an array of examples (see `data_shard`).

        Every host gets the same number, a multiple of `batch_multiple()`:
        every count-th example from the host's index.
        """
        shard = self.data_shard()
        if shard is not None:
            index, count = shard
            images = images[:len(images) - len(images) % count][index::count]
        multiple = self.batch_multiple()
        return images[:len(images) - len(images) % multiple]

    def data_shard(self):
        """`(index, count)` of this host's share of the data, or None.

        On multi-host JAX each host reads its own slice of every split
        (the global batch is assembled from the hosts' local batches).
        """
        if self.processes > 1:
            return self.process_index, self.processes
        return None

    def describe(self):
        """A JSON-able summary, for `environment.json`."""
        return {
            "distribution": self.name,
            "backend": self.backend,
            "devices": list(self.devices),
            "num_replicas": self.num_replicas,
            "processes": self.processes,
            "process_index": self.process_index,
        }


def check_distribution(name):
    """Raises a `ValueError` unless `name` is one of `DISTRIBUTIONS`."""
    return checks.choice("distribution", name, DISTRIBUTIONS)


def _maybe_initialize_multi_host():
    """`keras.distribution.initialize()` once, when the variables say so."""
    if _INITIALIZED or not all(
        os.environ.get(v) for v in MULTI_HOST_VARIABLES
    ):
        return
    keras.distribution.initialize()
    _INITIALIZED.append(True)


def _tf_workers():
    """Tasks in `TF_CONFIG`'s cluster (0 when it is not set)."""
    config = os.environ.get("TF_CONFIG")
    if not config:
        return 0
    try:
        cluster = json.loads(config).get("cluster", {})
    except (ValueError, AttributeError) as error:
        raise ValueError(
            f"TF_CONFIG is not a JSON object with a cluster: {error}. "
            f"Received: TF_CONFIG={config!r}"
        ) from None
    return sum(len(tasks) for tasks in cluster.values())


def plan_distribution(name="auto"):
    """Decides how to distribute on this machine.

    - `"none"`: one device (Keras' default placement).
    - `"data_parallel"`: every local accelerator, else every CPU device
      (virtual CPU devices, for tests); on multi-host JAX, every host's.
    - `"auto"`: data parallel when there are two or more accelerators,
      else none.

    Args:
        name: one of `DISTRIBUTIONS`.

    Returns:
        A `DistributionPlan`.

    Raises:
        ValueError: for an unknown name, data parallelism on torch (naming
            the backends that support it), TensorFlow across hosts
            (`TF_CONFIG` with several tasks), or fewer than two devices.

    Examples:
        >>> plan = plan_distribution("auto")
        >>> with plan.scope():
        ...     model = build_vae((28, 28, 1))
        ...     model.compile(optimizer="adam")
        ...     model.fit(images, batch_size=256)  # the global batch
    """
    check_distribution(name)
    backend = backends.name()
    if name == "none":
        return DistributionPlan("none", backend)
    if backend not in SUPPORTED_BACKENDS:
        if name == "auto":
            return DistributionPlan("none", backend)
        raise ValueError(
            "Invalid value received for argument `distribution`: "
            f"data_parallel runs on the {' and '.join(SUPPORTED_BACKENDS)} "
            f"backends, not on {backend!r}. Received: distribution={name!r}"
        )
    workers = 0 if backends.splits_batches_evenly() else _tf_workers()
    if workers > 1:
        # Each worker would otherwise train alone, silently.
        raise ValueError(
            "Invalid value received for argument `distribution`: "
            f"TensorFlow across hosts (TF_CONFIG names {workers} tasks) "
            "is not supported: Keras 3's fit "
            "fails under MultiWorkerMirroredStrategy. Run many hosts with "
            "KERAS_BACKEND=jax and the variables "
            f"{', '.join(MULTI_HOST_VARIABLES)}, or unset TF_CONFIG. "
            f"Received: distribution={name!r}"
        )
    if backends.splits_batches_evenly():  # JAX: hosts join one mesh
        _maybe_initialize_multi_host()
    processes, index = backends.processes()
    accelerators, every = backends.devices()
    if name == "auto":
        if len(accelerators) < 2:
            return DistributionPlan("none", backend)
        every = accelerators
    if len(every) < 2:
        raise ValueError(
            "Invalid value received for argument `distribution`: "
            "data_parallel needs at least two devices; this process sees "
            f"{list(every)}. Received: distribution={name!r}"
        )
    return DistributionPlan(
        "data_parallel", backend, tuple(every), processes, index
    )
