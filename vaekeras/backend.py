"""Everything that differs between the TensorFlow, JAX and torch backends.

This module and `export` (a SavedModel is TensorFlow's format) are the
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

import functools
import platform

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


# --- Autodiff. ---


def input_vjp(f, x, cotangent, differentiable=True):
    """`J_f(x)^T cotangent`, differentiable w.r.t. the weights `f` uses.

    For training losses built from input derivatives (double backprop).
    `differentiable=False` keeps no graph of the product (torch).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            out = f(x)
        return tape.gradient(
            out, x, output_gradients=cotangent,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
    if backend == "jax":
        import jax

        return jax.vjp(f, x)[1](cotangent)[0]
    import torch

    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(
            f(x), x, grad_outputs=cotangent, create_graph=differentiable
        )
    return grad


def input_jvp(f, x, tangent, differentiable=True):
    """`(f(x), J_f(x) tangent)`, differentiable w.r.t. `f`'s weights.

    torch takes the double-backward route: `torch.func`'s forward mode
    cannot run through every Keras layer (channels-last convolutions).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
            out = f(x)
        return out, accumulator.jvp(
            out, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
    if backend == "jax":
        import jax

        return jax.jvp(f, (x,), (tangent,))
    import torch

    with torch.enable_grad():
        out, product = torch.autograd.functional.jvp(
            f, x.detach(), tangent, create_graph=differentiable,
            strict=False,
        )
    if differentiable:
        return out, product
    return out.detach(), product.detach()


def value_and_grad(f, x):
    """`(f(x), d sum f(x) / dx)` for a per-sample `f` `(B,)`."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            values = f(x)
            total = tf.reduce_sum(values)
        return values, tape.gradient(total, x)
    if backend == "jax":
        import jax

        def total(x_):
            values = f(x_)
            return values.sum(), values

        (_, values), grad = jax.value_and_grad(total, has_aux=True)(x)
        return values, grad
    import torch

    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        values = f(x)
        (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), grad


def metric_product(f, x, v, weights=None):
    """`J^T diag(weights) J v` for `J = df/dx`, sharing one forward pass.

    The Gauss-Newton product behind every pullback metric: `v` has the
    shape of `x`, `weights` (optional) that of `f(x)`. TensorFlow records
    the forward-mode pass on the tape and reverses it; JAX linearises once
    and transposes; torch runs a JVP and a VJP.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            with tf.autodiff.ForwardAccumulator(x, v) as accumulator:
                out = f(x)
        product = tf.stop_gradient(accumulator.jvp(
            out, unconnected_gradients=tf.UnconnectedGradients.ZERO
        ))
        if weights is not None:
            product = product * weights
        return tape.gradient(
            out, x, output_gradients=product,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
    if backend == "jax":
        import jax

        _, forward = jax.linearize(f, x)
        product = forward(v)
        if weights is not None:
            product = product * weights
        return jax.linear_transpose(forward, x)(product)[0]
    _, product = input_jvp(f, x, v, differentiable=False)
    if weights is not None:
        product = product * weights
    return input_vjp(f, x, product, differentiable=False)


def encoder_jacobian(encode, x, state):
    """`(z_mean, z_log_var, jac)`, `jac` `(B, 2d, D)`, reverse mode.

    Args:
        encode: `x (B, ...) -> (z_mean, z_log_var)`.
        x: the batch.
        state: a dict kept between calls (torch remembers there that a
            model cannot be vmapped).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            z_mean, z_log_var = encode(x)
            z = tf.concat([z_mean, z_log_var], axis=-1)  # (B, 2d)
        jac = tape.batch_jacobian(z, x)  # (B, 2d, H, W, C)
        batch, rows = tf.shape(jac)[0], tf.shape(jac)[1]
        return z_mean, z_log_var, tf.reshape(jac, (batch, rows, -1))

    def single(x1):  # one example, for vmap
        z_mean, z_log_var = encode(x1[None])
        z_mean, z_log_var = z_mean[0], z_log_var[0]
        return ops.concatenate([z_mean, z_log_var], -1), (z_mean, z_log_var)

    if backend == "jax":
        import jax

        jac, (z_mean, z_log_var) = jax.vmap(
            jax.jacrev(single, has_aux=True)
        )(x)
        return z_mean, z_log_var, jac.reshape(x.shape[0], jac.shape[1], -1)
    import torch

    if state.get("torch_vmap", True):
        try:
            jac, (z_mean, z_log_var) = torch.func.vmap(
                torch.func.jacrev(single, has_aux=True)
            )(x)
            return z_mean, z_log_var, jac.reshape(
                x.shape[0], jac.shape[1], -1
            )
        except RuntimeError:
            # Keras' channels-last Conv2D cannot be vmapped: remember.
            state["torch_vmap"] = False
    # One forward pass, then one batched backward pass per output row.
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        z_mean, z_log_var = encode(x)
        z = torch.cat([z_mean, z_log_var], dim=-1)  # (B, 2d)
        rows = z.shape[1]
        cotangents = torch.eye(rows, dtype=z.dtype, device=z.device)
        cotangents = cotangents[:, None, :].expand(rows, *z.shape)
        (jac,) = torch.autograd.grad(
            z, x, grad_outputs=cotangents, is_grads_batched=True
        )  # (2d, B, H, W, C)
    jac = jac.reshape(rows, x.shape[0], -1).transpose(0, 1)
    return z_mean.detach(), z_log_var.detach(), jac


# --- Compilation. ---

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


def compile_on_weights(traced, weights):
    """`traced(weights, *args)` compiled once; called as `run(*args)`.

    `weights()` returns the current weight values, passed at every call,
    so one trace serves every weight value. The first argument is a batch
    and every output is per-example: inside a data-parallel scope each
    device takes its share (see `_run_on_replicas`, `_place`). torch runs
    eagerly on the live weights (`traced(None, *args)`).
    """
    backend = name()
    if backend == "torch":
        return lambda *args: traced(None, *_tensors(args))
    if backend == "jax":
        import jax

        compiled = jax.jit(traced)
        return lambda *args: compiled(*_place(weights(), _tensors(args)))
    import tensorflow as tf

    compiled = tf.function(traced, reduce_retracing=True)
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


# --- Devices, for `vaekeras.distribution`. ---

# Backends with data parallelism; JAX's runs one program over the global
# batch, so its batches must split evenly over the devices.
DATA_PARALLEL_BACKENDS = ("jax", "tensorflow")


def splits_batches_evenly():
    """Whether data parallelism needs batches divisible by the devices."""
    return keras.backend.backend() == "jax"


def processes():
    """`(number of hosts, this host's index)` (JAX multi-host; else 1, 0)."""
    if keras.backend.backend() != "jax":
        return 1, 0
    import jax

    return jax.process_count(), jax.process_index()


def devices():
    """`(accelerators, every device)` names this process can use."""
    if keras.backend.backend() == "jax":
        import jax

        found = jax.devices()
        return tuple(str(d) for d in found if d.platform != "cpu"), tuple(
            str(d) for d in found
        )
    import tensorflow as tf

    gpus = tuple(d.name for d in tf.config.list_logical_devices("GPU"))
    cpus = tuple(d.name for d in tf.config.list_logical_devices("CPU"))
    return gpus, gpus or cpus


def data_parallel_engine(device_names, hosts):
    """The Keras `DataParallel` (JAX) or `MirroredStrategy` (TF) to use.

    Many JAX hosts each feed their own share of the data (tfds'
    per-process split), not one global data set for Keras to cut up after
    every host has read all of it.
    """
    if keras.backend.backend() == "jax":
        import jax

        by_name = {str(d): d for d in jax.devices()}
        return keras.distribution.DataParallel(
            devices=[by_name[n] for n in device_names],
            auto_shard_dataset=hosts == 1,
        )
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices=list(device_names))


def environment():
    """The backend and the devices TensorFlow sees, for environment.json."""
    try:
        import tensorflow as tf

        found = [d.name for d in tf.config.list_logical_devices()]
    except ImportError:  # pragma: no cover - TF is a dependency
        found = []
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras_backend": keras.backend.backend(),
        "tensorflow_devices": found,
    }
