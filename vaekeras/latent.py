"""One adapter from any model kind to compiled latent functions.

`LatentModel.of(model)` accepts a vaekeras `VAE`, a Keras encoder
(`x -> [z_mean, z_log_var]`), a SavedModel loaded with
`tf.saved_model.load` (its `encode`, `decode` endpoints) or any callable
`x -> (z_mean, z_log_var)` (or a dict with those keys), and gives:

- `encode(x) -> (z_mean, z_log_var)`, `decode(z)`, `reconstruct(x)`;
- `jacobian(x) -> (z_mean, z_log_var, jac)` with `jac` `(B, 2d, D)`, the
  per-sample Jacobian of `[z_mean; z_log_var]` w.r.t. the flattened input;
- `input_gradient(loss)`: a compiled `(x, *args) -> (losses, d sum / dx)`;
- `function(fn, key)`: any `fn(view, x, *args)` compiled once, where `view`
  offers the same operations inside the compiled code.

Functions are compiled once per model and backend (`tf.function`,
`jax.jit`; torch runs eagerly) and take the model's weights as arguments,
through `keras.StatelessScope`, so one trace serves every weight value:
after `set_weights` or more training the same functions see the new
weights. The adapter is stored on the model it wraps (the two form a
cycle that Python's garbage collector frees together), so deleting the
model frees its traces. This module and `export` are the only ones that
branch on the Keras backend.

Example:

>>> latent = LatentModel.of(model)
>>> z_mean, z_log_var = latent.encode(images)
>>> z_mean, z_log_var, jac = latent.jacobian(images)  # jac (B, 2d, D)
"""

import contextlib
import functools
import inspect

import keras
import numpy as np
from keras import ops

# Attribute under which a model keeps its adapters.
_ATTRIBUTE = "_vaekeras_latent"


def split_encoding(outputs):
    """`(z_mean, z_log_var)` from a list/tuple pair or a SavedModel dict."""
    if isinstance(outputs, dict) and {"z_mean", "z_log_var"} <= set(outputs):
        return outputs["z_mean"], outputs["z_log_var"]
    if isinstance(outputs, (list, tuple)) and len(outputs) == 2:
        return outputs[0], outputs[1]
    raise ValueError(
        "The encoder must return [z_mean, z_log_var] (or a dict with those "
        f"keys). Received outputs of type {type(outputs).__name__}"
        + (f" with {len(outputs)} entries" if hasattr(outputs, "__len__")
           else "")
    )


def unwrap_output(outputs, name):
    """The tensor of a single-output call; SavedModel endpoints return dicts.

    Args:
        outputs: a tensor, or a dict holding `name` (e.g. `"x_mean"`).
        name: the key of a dict output.

    Returns:
        The tensor.
    """
    if isinstance(outputs, dict):
        if name in outputs:
            return outputs[name]
        raise ValueError(
            f"Expected an output named {name!r}; received the names "
            f"{sorted(outputs)}."
        )
    return outputs


def input_vjp(f, x, cotangent, differentiable=True):
    """`J_f(x)^T cotangent`, differentiable w.r.t. the weights `f` uses.

    For training losses built from input derivatives (double backprop).
    `differentiable=False` keeps no graph of the product (torch), for the
    compiled views of `LatentModel`.
    """
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            out = f(x)
        return tape.gradient(
            out, x, output_gradients=cotangent,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
    if name == "jax":
        import jax

        return jax.vjp(f, x)[1](cotangent)[0]
    import torch

    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(
            f(x), x, grad_outputs=cotangent, create_graph=differentiable
        )
    return grad


def input_jvp(f, x, tangent):
    """`J_f(x) tangent`, differentiable w.r.t. the weights `f` uses."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
            out = f(x)
        return accumulator.jvp(
            out, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
    if name == "jax":
        import jax

        return jax.jvp(f, (x,), (tangent,))[1]
    import torch

    with torch.enable_grad():
        _, product = torch.autograd.functional.jvp(
            f, x.detach(), tangent, create_graph=True, strict=False
        )
    return product


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


def backend():
    """The Keras backend name, checked to be one vaekeras can differentiate."""
    name = keras.backend.backend()
    if name not in ("tensorflow", "jax", "torch"):
        raise ValueError(
            "vaekeras needs the tensorflow, jax or torch backend. Received: "
            f"KERAS_BACKEND={name!r}"
        )
    return name


def is_symbolic(x):
    """Whether `x` is traced (inside `tf.function`, `jax.jit`, Keras)."""
    if isinstance(x, keras.KerasTensor):
        return True
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return isinstance(x, tf.Tensor) and not hasattr(x, "numpy")
    if name == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


def check_finite(x, argument="x"):
    """Raises a `ValueError` if a concrete tensor holds NaN or inf.

    Traced tensors have no values yet and pass.
    """
    if is_symbolic(x):
        return
    if not bool(ops.convert_to_numpy(ops.all(ops.isfinite(x)))):
        raise ValueError(
            f"Invalid value received for argument `{argument}`: it holds "
            "non-finite values (NaN or inf)."
        )


def check_batch_shape(x, image_shape, argument="x"):
    """Raises a `ValueError` unless `x` is a batch of `image_shape` images."""
    shape, expected = tuple(x.shape), tuple(image_shape)
    if len(shape) != len(expected) + 1 or any(
        s is not None and e is not None and s != e
        for s, e in zip(shape[1:], expected)
    ):
        raise ValueError(
            f"Invalid value received for argument `{argument}`: expected "
            f"images of shape (batch, {', '.join(map(str, expected))}). "
            f"Received: {argument}.shape={shape}"
        )


def _is_encoder_model(model):
    outputs = getattr(model, "outputs", None)
    return isinstance(model, keras.Model) and outputs is not None and (
        len(outputs) == 2
    )


class LatentModel:
    """Compiled encode / decode / Jacobian / input-gradient of one model.

    Build it with `LatentModel.of(model)`, which returns the adapter the
    model already has, so every caller shares its traces.

    Args:
        model: a vaekeras `VAE`, a Keras encoder, a loaded SavedModel with
            an `encode` endpoint, or a callable `x -> (z_mean, z_log_var)`.

    Raises:
        ValueError: for anything else, or a Keras model that does not
            return `[z_mean, z_log_var]` of equal shape.
    """

    def __init__(self, model):
        self.model = model
        self.trace_count = 0
        self.sharded_calls = 0
        self._compiled = {}
        self._torch_vmap = True
        self._latent_dim = None
        self._variables = []
        self._decoder = None
        inner = getattr(model, "encoder", None)
        if isinstance(model, keras.Model) and isinstance(inner, keras.Model):
            self._encoder = inner  # a VAE
            self._decoder = model.decode
            self._variables = list(model.variables)
        elif isinstance(model, keras.Model):
            outputs = model.outputs or []
            if len(outputs) != 2 or tuple(outputs[0].shape) != tuple(
                outputs[1].shape
            ):
                raise ValueError(
                    "Invalid value received for argument `model`: a Keras "
                    "encoder must return [z_mean, z_log_var] of equal shape "
                    "(B, d). Received a model with outputs "
                    f"{[tuple(o.shape) for o in outputs]}"
                )
            self._encoder = model
            self._variables = list(model.variables)
        elif callable(getattr(model, "encode", None)):
            self._encoder = model.encode  # e.g. a loaded SavedModel
            if callable(getattr(model, "decode", None)):
                self._decoder = model.decode
        elif callable(model):
            self._encoder = model
        else:
            raise ValueError(
                "Invalid value received for argument `model`: expected a "
                "vaekeras VAE, a Keras encoder, a loaded SavedModel with an "
                "`encode` endpoint, or a callable x -> (z_mean, z_log_var). "
                f"Received: model={model!r}"
            )

    @classmethod
    def of(cls, model):
        """The adapter of `model`, built on first use and kept on it.

        Args:
            model: see the class docstring; a `LatentModel` is returned as
                it is.

        Returns:
            A `LatentModel`.
        """
        if isinstance(model, LatentModel):
            return model
        owner, key = model, None
        if inspect.ismethod(model):  # a bound method is new on every access
            owner, key = model.__self__, model.__func__.__name__
        cache = getattr(owner, "__dict__", {}).get(_ATTRIBUTE)
        if cache is not None and key in cache:
            return cache[key]
        adapter = cls(model)
        try:
            if cache is None:
                cache = {}
                # Plain setattr: Keras must not track the adapter as state.
                object.__setattr__(owner, _ATTRIBUTE, cache)
            cache[key] = adapter
        except (AttributeError, TypeError):
            pass  # an object without a __dict__: not cached
        return adapter

    # --- Facts about the model. ---

    @property
    def has_decoder(self):
        return self._decoder is not None

    @property
    def image_shape(self):
        """`(H, W, C)` the model takes, or None when it cannot be told."""
        if isinstance(self._encoder, keras.Model):
            return tuple(self._encoder.inputs[0].shape[1:])
        try:
            spec = self._encoder.concrete_functions[0]
            return tuple(spec.structured_input_signature[0][0].shape[1:])
        except (AttributeError, IndexError, TypeError):
            return None

    def latent_dim(self, x=None):
        """Latent size d; a plain callable is probed once on `x[:1]`."""
        if self._latent_dim is None:
            if _is_encoder_model(self._encoder):
                self._latent_dim = int(self._encoder.outputs[0].shape[-1])
            elif x is None:
                raise ValueError(
                    "The latent size of this callable is not known yet: "
                    "pass a batch to probe it."
                )
            else:
                z_mean, _ = self.encode(x[:1])
                self._latent_dim = int(z_mean.shape[-1])
        return self._latent_dim

    def check_inputs(self, x, argument="x"):
        """Raises a `ValueError` for a batch of the wrong shape or NaN/inf.

        Returns:
            `x` as a float32 tensor.
        """
        shape = tuple(x.shape)
        if self.image_shape is not None:
            check_batch_shape(x, self.image_shape, argument)
        if len(shape) < 2:
            raise ValueError(
                f"Invalid value received for argument `{argument}`: expected "
                f"a batch of inputs of rank >= 2. Received: {argument}.shape="
                f"{shape}"
            )
        x = ops.convert_to_tensor(x, dtype="float32")
        check_finite(x, argument)
        return x

    # --- Compiled operations. ---

    def encode(self, x):
        """`(z_mean, z_log_var)`, each `(B, d)`."""
        return self.function(_encode, "encode")(x)

    def decode(self, z):
        """Pixel means `(B, H, W, C)` for latents `z` `(B, d)`."""
        self.require_decoder()
        return self.function(_decode, "decode")(z)

    def reconstruct(self, x):
        """`decode(z_mean(x))`, deterministic."""
        self.require_decoder()
        return self.function(_reconstruct, "reconstruct")(x)

    def jacobian(self, x):
        """`(z_mean, z_log_var, jac)`; `jac` `(B, 2d, D)`, reverse mode."""
        return self.function(_jacobian, "jacobian")(x)

    def input_gradient(self, loss):
        """Compiles `(x, *args) -> (losses (B,), d sum(losses) / dx)`.

        Args:
            loss: `loss(encode, x, *args) -> (B,)` in `keras.ops`, where
                `encode(x) -> (z_mean, z_log_var)`. Use a module-level
                function (or the same object) to share one trace.
        """

        def gradient(view, x, *args):
            return view.value_and_grad(
                lambda x_: loss(view.encode, x_, *args), x
            )

        return self.function(gradient, ("input_gradient", loss))

    def function(self, fn, key):
        """`fn(view, *args)` compiled once for this model under `key`.

        `view` offers `encode`, `decode`, `jacobian` and
        `value_and_grad(f, x)` on the weights passed at call time. Tensor
        arguments (not Python numbers) keep one trace for every value.

        The first argument is a batch, and every output is per-example
        (leading axis the batch): inside a `vaekeras.distribution` plan's
        scope the call is split over the devices, each taking its share of
        every argument whose leading size is the batch's (TensorFlow:
        `strategy.run`, counted in `sharded_calls`; JAX accelerators:
        the batch sharded along its first axis).

        Args:
            fn: `(view, *args) -> tensors` in `keras.ops`.
            key: hashable name of `fn` and its static settings.

        Returns:
            A callable `(*args) -> fn(view, *args)`.
        """
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compile(fn)
            self._compiled[key] = compiled
        return compiled

    def live_view(self):
        """A view on the live weights, compiled by nobody.

        For code that runs inside someone else's trace, such as a
        `train_step` (`vaekeras.attacks.worst_case_inputs`): it offers what
        the compiled views offer (`encode`, `value_and_grad`, ...).
        """
        return _View(self, None)

    def require_decoder(self):
        """Raises a `ValueError` when the model has no decoder."""
        if not self.has_decoder:
            raise ValueError(
                "This model has no decoder: pass a vaekeras VAE or a "
                "SavedModel with a `decode` endpoint, not an encoder alone."
            )

    def _weights(self):
        return [v.value for v in self._variables]

    def _compile(self, fn):
        name = backend()

        def traced(weights, *args):
            self.trace_count += 1
            return fn(_View(self, weights), *args)

        if name == "torch":  # eager: the live weights are read directly
            return lambda *args: fn(_View(self, None), *_tensors(args))
        if name == "jax":
            import jax

            compiled = jax.jit(traced)

            def run(*args):
                return compiled(*_place(self._weights(), _tensors(args)))

            return run
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

        def run_tf(*args):
            args = _tensors(args)
            strategy = _tf_strategy_to_split(args)
            if strategy is not None:
                mask = _per_example(args)
                key = (id(strategy), mask)
                if sharded.get(key, (None,))[0] is not strategy:
                    run = tf.function(
                        functools.partial(
                            _run_on_replicas, traced, self._weights,
                            strategy, mask,
                        ),
                        reduce_retracing=True,
                    )
                    run.get_concrete_function(*free_batch(args))
                    sharded[key] = (strategy, run)
                self.sharded_calls += 1
                return sharded[key][1](*args)
            if not first:
                compiled.get_concrete_function(
                    self._weights(), *free_batch(args)
                )
                first.append(True)
            return compiled(self._weights(), *args)

        return run_tf


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

    Inside `vaekeras.distribution` data parallelism (a
    `keras.distribution.DataParallel` in scope) on accelerators, every
    per-example argument (leading size the batch's, see `_per_example`)
    whose batch divides evenly by the number of devices is placed sharded
    along that axis, so the function runs on all of them at once with the
    weights replicated. On many hosts each host measures on its own
    devices (the weights' local replica; every host computes the whole
    batch). On CPU devices everything goes to the host's first device
    instead: XLA's CPU runtime deadlocked intermittently on these
    programs over replicated weights (measured: a second eigenvalue call
    hung), and one CPU gains nothing from splitting.

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


def _tensors(args):
    """Numpy arrays become float32 tensors (one trace for every array)."""
    return [
        ops.convert_to_tensor(a, "float32") if isinstance(a, np.ndarray)
        else a for a in args
    ]


class _View:
    """What a compiled function sees: the model on the given weights."""

    def __init__(self, latent, weights):
        self.latent = latent
        self.weights = weights

    def _scope(self):
        if not self.weights:
            return contextlib.nullcontext()
        return keras.StatelessScope(
            state_mapping=list(zip(self.latent._variables, self.weights))
        )

    def encode(self, x):
        with self._scope():
            return split_encoding(self.latent._encoder(x))

    def decode(self, z):
        with self._scope():
            return unwrap_output(self.latent._decoder(z), "x_mean")

    def value_and_grad(self, f, x):
        """`(f(x), d sum f(x) / dx)` for a per-sample `f` `(B,)`."""
        name = backend()
        if name == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                tape.watch(x)
                values = f(x)
                total = tf.reduce_sum(values)
            return values, tape.gradient(total, x)
        if name == "jax":
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

    def jvp(self, f, x, tangent):
        """`(f(x), J_f(x) tangent)`: one forward-mode product, batched.

        `f` maps `x` to one tensor; `tangent` has the shape of `x`.
        """
        name = backend()
        if name == "tensorflow":
            import tensorflow as tf

            with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
                out = f(x)
            return out, accumulator.jvp(
                out, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
        if name == "jax":
            import jax

            return jax.jvp(f, (x,), (tangent,))
        import torch

        # The double-backward route: torch.func's forward mode cannot run
        # through every Keras layer (channels-last convolutions).
        with torch.enable_grad():
            out, product = torch.autograd.functional.jvp(
                f, x.detach(), tangent, create_graph=False, strict=False
            )
        return out.detach(), product.detach()

    def metric_product(self, f, x, v, weights=None):
        """`J^T diag(weights) J v` for `J = df/dx`, sharing one forward pass.

        The Gauss-Newton product behind every pullback metric: `v` has the
        shape of `x`, `weights` (optional) that of `f(x)`; the result has
        the shape of `x`. TensorFlow records the forward-mode pass on the
        tape and reverses it; JAX linearises once and transposes; torch
        runs a JVP and a VJP.
        """
        name = backend()
        if name == "tensorflow":
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
        if name == "jax":
            import jax

            _, forward = jax.linearize(f, x)
            product = forward(v)
            if weights is not None:
                product = product * weights
            return jax.linear_transpose(forward, x)(product)[0]
        _, product = self.jvp(f, x, v)
        if weights is not None:
            product = product * weights
        return self.vjp(f, x, product)

    def vjp(self, f, x, cotangent):
        """`J_f(x)^T cotangent`, shaped like `x`: one reverse pass."""
        return input_vjp(f, x, cotangent, differentiable=False)

    def jacobian(self, x):
        name = backend()
        if name == "tensorflow":
            return self._tf_jacobian(x)
        if name == "jax":
            return self._jax_jacobian(x)
        return self._torch_jacobian(x)

    def _single(self, x1):
        """Per-sample `x1 -> ([z_mean; z_log_var], aux)`, for vmap."""
        z_mean, z_log_var = self.encode(x1[None])
        z_mean, z_log_var = z_mean[0], z_log_var[0]
        return ops.concatenate([z_mean, z_log_var], axis=-1), (
            z_mean, z_log_var
        )

    def _tf_jacobian(self, x):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            z_mean, z_log_var = self.encode(x)
            z = tf.concat([z_mean, z_log_var], axis=-1)  # (B, 2d)
        jac = tape.batch_jacobian(z, x)  # (B, 2d, H, W, C)
        batch, rows = tf.shape(jac)[0], tf.shape(jac)[1]
        return z_mean, z_log_var, tf.reshape(jac, (batch, rows, -1))

    def _jax_jacobian(self, x):
        import jax

        jac, (z_mean, z_log_var) = jax.vmap(
            jax.jacrev(self._single, has_aux=True)
        )(x)
        return z_mean, z_log_var, jac.reshape(x.shape[0], jac.shape[1], -1)

    def _torch_jacobian(self, x):
        import torch

        if self.latent._torch_vmap:
            try:
                jac, (z_mean, z_log_var) = torch.func.vmap(
                    torch.func.jacrev(self._single, has_aux=True)
                )(x)
                return z_mean, z_log_var, jac.reshape(
                    x.shape[0], jac.shape[1], -1
                )
            except RuntimeError:
                # Keras' channels-last Conv2D cannot be vmapped: remember.
                self.latent._torch_vmap = False
        # One forward pass, then one batched backward pass per output row.
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            z_mean, z_log_var = self.encode(x)
            z = torch.cat([z_mean, z_log_var], dim=-1)  # (B, 2d)
            rows = z.shape[1]
            cotangents = torch.eye(rows, dtype=z.dtype, device=z.device)
            cotangents = cotangents[:, None, :].expand(rows, *z.shape)
            (jac,) = torch.autograd.grad(
                z, x, grad_outputs=cotangents, is_grads_batched=True
            )  # (2d, B, H, W, C)
        jac = jac.reshape(rows, x.shape[0], -1).transpose(0, 1)
        return z_mean.detach(), z_log_var.detach(), jac


def _encode(view, x):
    return view.encode(x)


def _decode(view, z):
    return view.decode(z)


def _reconstruct(view, x):
    z_mean, _ = view.encode(x)
    return view.decode(z_mean)


def _jacobian(view, x):
    return view.jacobian(x)


_PLAIN = {}


def compile_function(fn, key=None):
    """`fn` compiled for the backend, for code that uses no model.

    Cached under `key` (default: `fn` itself, so pass a module-level
    function). Tensor arguments keep one trace for every value.
    """
    key = fn if key is None else key
    compiled = _PLAIN.get(key)
    if compiled is None:
        name = backend()
        if name == "tensorflow":
            import tensorflow as tf

            compiled = tf.function(fn, reduce_retracing=True)
        elif name == "jax":
            import jax

            compiled = jax.jit(fn)
        else:
            compiled = fn
        _PLAIN[key] = compiled
    return compiled


def as_numpy(x):
    """A numpy array of any backend tensor."""
    return np.asarray(ops.convert_to_numpy(x))
