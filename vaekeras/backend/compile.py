"""Compiled functions, and how a call splits over replicas and devices."""

import functools

import keras
import numpy as np
from keras import ops

from vaekeras.backend.core import name

_PLAIN = {}


def compile_plain(fn, key=None):
    """`fn` compiled for the backend, for code that uses no model.

    Cached under `key` (default: `fn` itself, so pass a module-level
    function). Tensor arguments keep one trace for every value.
    """
    key = fn if key is None else key
    compiled = _PLAIN.get(key)
    if compiled is None:
        backend = name()
        if backend == "tensorflow":
            import tensorflow as tf

            compiled = tf.function(fn, reduce_retracing=True)
        elif backend == "jax":
            import jax

            compiled = jax.jit(fn)
        else:
            compiled = fn
        _PLAIN[key] = compiled
    return compiled


def compile_on_weights(traced, weights, core=None):
    """`traced(weights, *args)` compiled once; called as `run(*args)`.

    `weights()` returns the current weight values, passed at every call,
    so one trace serves every weight value. The first argument is a batch
    and every output is per-example: inside a data-parallel scope each
    device takes its share (see `_run_on_replicas`, `_place`). torch runs
    eagerly on the live weights (`traced(None, *args)`).

    `run.core` is the backend's compiled function (None on torch); pass
    it as `core` to run another model of the same architecture, with its
    own `weights`, on the traces already made.
    """
    backend = name()
    if backend == "torch":
        def run_eagerly(*args):
            return traced(None, *_tensors(args))

        run_eagerly.core = None
        return run_eagerly
    if backend == "jax":
        import jax

        compiled = core or jax.jit(traced)

        def run_jitted(*args):
            return compiled(*_place(weights(), _tensors(args)))

        run_jitted.core = compiled
        return run_jitted
    import tensorflow as tf

    compiled = core or tf.function(traced, reduce_retracing=True)
    sharded = {}
    first = []

    def free_batch(args):
        # Trace once with a free batch size, so a smaller last batch
        # reuses this trace instead of retracing.
        return [
            tf.TensorSpec([None, *a.shape[1:]], a.dtype)
            if tf.is_tensor(a) and a.shape.rank else a for a in args
        ]

    def run(*args):
        args = _tensors(args)
        strategy = _tf_strategy_to_split(args)
        if strategy is not None:
            mask = _per_example(args)
            key = (id(strategy), mask)
            if sharded.get(key, (None,))[0] is not strategy:
                split = tf.function(
                    functools.partial(
                        _run_on_replicas, traced, weights, strategy, mask
                    ),
                    reduce_retracing=True,
                )
                split.get_concrete_function(*free_batch(args))
                sharded[key] = (strategy, split)
            return sharded[key][1](*args)
        if not first:
            compiled.get_concrete_function(weights(), *free_batch(args))
            first.append(True)
        return compiled(weights(), *args)

    run.core = compiled
    return run


def _tensors(args):
    """Numpy arrays become float32 tensors (one trace for every array)."""
    return [
        ops.convert_to_tensor(a, "float32") if isinstance(a, np.ndarray)
        else a for a in args
    ]


# --- Replicas and placement. ---


def replica_id():
    """This `tf.distribute` replica's id, or None outside replicas.

    JAX's data parallelism runs one program over the global batch, so it
    has no replicas to tell apart; None there and on torch.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy() or (
        tf.distribute.in_cross_replica_context()
    ):
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context.replica_id_in_sync_group


def scale_for_replicas(loss):
    """The loss divided by the number of `tf.distribute` replicas.

    Each replica computes its slice's mean loss and the strategy sums the
    replicas' gradients; dividing here makes the update the global
    batch's mean gradient (what Keras' own `compute_loss` does, and what
    its logged `loss` undoes). A no-op outside a strategy and off
    TensorFlow.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            return loss / replicas
    return loss


def _per_example(args):
    """Which arguments are per-example: rank >= 1, the first's batch size.

    The first argument of every compiled function is a batch; arguments
    with the same leading size are split with it, the rest (scalars,
    settings) are passed whole.
    """
    batch = _leading_size(args[0]) if args else None
    return tuple(
        batch is not None and _leading_size(a) == batch for a in args
    )


def _leading_size(a):
    shape = getattr(a, "shape", None)
    if shape is None or len(shape) == 0 or shape[0] is None:
        return None
    return int(shape[0])


def _tf_strategy_to_split(args):
    """The `tf.distribute.MirroredStrategy` to split this call over, or None.

    Only a one-host mirrored strategy in scope, called from outside its
    replicas (a `train_step` already runs per replica), with at least one
    example per replica.
    """
    import tensorflow as tf

    if not tf.distribute.has_strategy() or not (
        tf.distribute.in_cross_replica_context()
    ):
        return None
    strategy = tf.distribute.get_strategy()
    batch = _leading_size(args[0]) if args else None
    replicas = strategy.num_replicas_in_sync
    if not isinstance(strategy, tf.distribute.MirroredStrategy) or (
        replicas < 2 or batch is None or batch < replicas
    ):
        return None
    return strategy


def _run_on_replicas(traced, weights, strategy, mask, *args):
    """`traced` on each replica's share of the batch, gathered in order.

    Replica i takes the examples [start_i, start_i + size_i) of every
    per-example argument (the first `batch % replicas` replicas one more);
    the outputs, all per-example, are concatenated back along axis 0.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync

    def share(a):
        index = tf.cast(
            tf.distribute.get_replica_context().replica_id_in_sync_group,
            tf.int32,
        )
        size = tf.shape(a)[0]
        per, extra = size // replicas, size % replicas
        start = index * per + tf.minimum(index, extra)
        return a[start:start + per + tf.cast(index < extra, tf.int32)]

    def on_replica(*args):
        args = [share(a) if m else a for a, m in zip(args, mask)]
        return traced(weights(), *args)

    outputs = strategy.run(on_replica, args=args)
    # A concatenation, not `strategy.gather`: gather is a collective, and
    # collectives of two strategies over the same devices (a training's
    # and a measurement's) clash on their instance keys (measured).
    return tf.nest.map_structure(
        lambda t: tf.concat(strategy.experimental_local_results(t), 0),
        outputs,
    )


def _place(weights, args):
    """Where a compiled JAX function's weights and batch run.

    Inside a `keras.distribution.DataParallel` scope on accelerators,
    every per-example argument whose batch divides evenly by the number
    of devices is placed sharded along that axis, so the function runs on
    all of them at once with the weights replicated. On many hosts each
    host measures on its own devices (the weights' local replica; every
    host computes the whole batch). On CPU devices everything goes to the
    host's first device instead: XLA's CPU runtime deadlocked
    intermittently on these programs over replicated weights (measured: a
    second eigenvalue call hung), and one CPU gains nothing from
    splitting.

    Returns:
        `(weights, *args)`.
    """
    distribution = keras.distribution.distribution()
    if distribution is None:
        return (weights, *args)
    import jax

    devices = distribution.device_mesh.devices.ravel()
    local = [d for d in devices if d.process_index == jax.process_index()]
    if all(getattr(d, "platform", "cpu") == "cpu" for d in devices):
        return (
            [jax.device_put(_local_value(w), local[0]) for w in weights],
            *[jax.device_put(a, local[0]) if hasattr(a, "shape") else a
              for a in args],
        )
    count = len(local)
    if count < len(devices):
        mesh = jax.sharding.Mesh(np.array(local), ("batch",))
        spec = jax.sharding.PartitionSpec
        weights = [
            jax.device_put(
                _local_value(w), jax.sharding.NamedSharding(mesh, spec())
            ) for w in weights
        ]

        def split(a):
            return jax.device_put(
                a, jax.sharding.NamedSharding(mesh, spec("batch"))
            )
    else:
        def split(a):
            return keras.distribution.distribute_tensor(
                a, distribution.get_data_layout(a.shape)
            )
    return (weights, *[
        split(a) if per_example and a.shape[0] % count == 0 else a
        for a, per_example in zip(args, _per_example(args))
    ])


def _local_value(array):
    """A replicated array's copy on this host (on many hosts)."""
    if getattr(array, "is_fully_addressable", True):
        return array
    return array.addressable_data(0)
