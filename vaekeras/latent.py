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
model frees its traces. What differs between backends is in
`vaekeras.backend`.

Examples:
    >>> latent = LatentModel.of(model)
    >>> z_mean, z_log_var = latent.encode(images)
    >>> z_mean, z_log_var, jac = latent.jacobian(images)  # jac (B, 2d, D)
"""

import contextlib
import inspect
import json
import weakref

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import checks
from vaekeras.model_interface import INTERFACE
from vaekeras.model_interface import decoder_of
from vaekeras.model_interface import equal_shapes

# Attribute under which a model keeps its adapters.
_ATTRIBUTE = "_vaekeras_latent"
# Compiled functions by (architecture, key), shared by the models of one
# architecture (`LatentModel.architecture`); weak, so that a function
# lives only while a model that uses it does.
_SHARED = weakref.WeakValueDictionary()
_UNKNOWN = object()


def split_encoding(outputs):
    """`(z_mean, z_log_var)` from a list/tuple of two (or three: keras-io's
    `[z_mean, z_log_var, z]`, the sample left out) or a SavedModel dict."""
    if isinstance(outputs, dict) and {"z_mean", "z_log_var"} <= set(outputs):
        return outputs["z_mean"], outputs["z_log_var"]
    if isinstance(outputs, (list, tuple)) and len(outputs) in (2, 3):
        return outputs[0], outputs[1]
    raise ValueError(
        "The encoder must return [z_mean, z_log_var] or [z_mean, "
        "z_log_var, z] (or a dict with the first two keys). Received "
        f"outputs of type {type(outputs).__name__}"
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


def _is_encoder_model(model):
    outputs = getattr(model, "outputs", None)
    return isinstance(model, keras.Model) and outputs is not None and (
        len(outputs) in (2, 3)
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
        self._compiled = {}
        self._state = {}  # what the backend remembers about this model
        self._latent_dim = None
        self._variables = []
        self._decoder = None
        self._architecture = _UNKNOWN
        inner = getattr(model, "encoder", None)
        if isinstance(model, keras.Model) and isinstance(inner, keras.Model):
            self._encoder = inner  # a VAE, vaekeras' or keras-io's
            self._decoder = decoder_of(model)
            self._variables = list(model.variables)
        elif isinstance(model, keras.Model):
            outputs = model.outputs or []
            if not equal_shapes(outputs):
                raise ValueError(
                    "Invalid value received for argument `model`: a Keras "
                    "encoder must return [z_mean, z_log_var] (or [z_mean, "
                    "z_log_var, z]) of equal shape (B, d). Received a model "
                    f"with outputs {[tuple(o.shape) for o in outputs]}. "
                    + INTERFACE + "."
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
                "Invalid value received for argument `model`: "
                + INTERFACE + f". Received: model={model!r}"
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
            checks.batch_shape(x, self.image_shape, argument)
        if len(shape) < 2:
            raise ValueError(
                f"Invalid value received for argument `{argument}`: expected "
                f"a batch of inputs of rank >= 2. Received: {argument}.shape="
                f"{shape}"
            )
        x = ops.convert_to_tensor(x, dtype="float32")
        # Traced tensors have no values to check.
        if not backend.is_symbolic(x) and not bool(
            backend.as_numpy(ops.all(ops.isfinite(x)))
        ):
            raise checks.not_finite(argument)
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

    def reconstruct_numpy(self, x, batch_size=256):
        """`reconstruct` of any number of images, in batches, as numpy.

        Returns:
            float32 array of the shape of `x`.
        """
        x = np.asarray(x, "float32")
        parts = [
            backend.as_numpy(self.reconstruct(x[i:i + batch_size]))
            for i in range(0, len(x), batch_size)
        ]
        if not parts:
            return np.zeros_like(x)
        return np.concatenate(parts).reshape(x.shape)

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
        `strategy.run`; JAX accelerators:
        the batch sharded along its first axis).

        Args:
            fn: `(view, *args) -> tensors` in `keras.ops`.
            key: hashable name of `fn` and its static settings.

        Returns:
            A callable `(*args) -> fn(view, *args)`.
        """
        compiled = self._compiled.get(key)
        if compiled is None:
            shared_key = (self.architecture(), key)
            def traced(weights, *args):
                return fn(_View(self, weights), *args)

            compiled = backend.compile_on_weights(
                traced, self._weights,
                core=_SHARED.get(shared_key) if shared_key[0] else None,
            )
            if shared_key[0] and compiled.core is not None:
                _SHARED.setdefault(shared_key, compiled.core)
            self._compiled[key] = compiled
        return compiled

    def architecture(self):
        """What this model's traces depend on besides its weights, or None.

        Models with equal architectures (the same layers in the same
        order with the same settings, names and seeds aside, the same
        weight shapes and the same class) share compiled functions: a
        study's many models of one shape trace each function once. A
        trace reads the weights only as arguments, so sharing changes no
        number. None (never shared) for SavedModels, plain callables and
        a configuration Keras cannot serialize. torch runs eagerly: there
        is no trace to share.
        """
        if self._architecture is _UNKNOWN:
            self._architecture = _architecture_of(self)
        return self._architecture

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
                "This model has no decoder, and this needs one. "
                + INTERFACE + "."
            )

    def _weights(self):
        return [v.value for v in self._variables]



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

    def value_and_grad(self, f, x, differentiable=False):
        """`(f(x), d sum f(x) / dx)` for a per-sample `f` `(B,)`.

        `differentiable`: an outer derivative may go through both results
        (see `vaekeras.backend.value_and_grad`).
        """
        return backend.value_and_grad(f, x, differentiable)

    def jvp(self, f, x, tangent):
        """`(f(x), J_f(x) tangent)`: one forward-mode product, batched."""
        return backend.input_jvp(f, x, tangent, differentiable=False)

    def vjp(self, f, x, cotangent):
        """`J_f(x)^T cotangent`, shaped like `x`: one reverse pass."""
        return backend.input_vjp(f, x, cotangent, differentiable=False)

    def metric_product(self, f, x, v, weights=None):
        """`J^T diag(weights) J v` for `J = df/dx` (`backend`)."""
        return backend.metric_product(f, x, v, weights)

    def jacobian(self, x):
        """`(z_mean, z_log_var, jac)`, `jac` `(B, 2d, D)`."""
        return backend.encoder_jacobian(self.encode, x, self.latent._state)


def _encode(view, x):
    return view.encode(x)


def _decode(view, z):
    return view.decode(z)


def _reconstruct(view, x):
    z_mean, _ = view.encode(x)
    return view.decode(z_mean)


def _jacobian(view, x):
    return view.jacobian(x)


def _architecture_of(adapter):
    """`LatentModel.architecture`: a canonical JSON of the modules a trace
    runs, with layer names replaced by their order and seeds left out."""
    model = adapter.model
    if not isinstance(model, keras.Model):
        return None
    inner = getattr(model, "encoder", None)
    modules = (
        [inner, model.decoder] if isinstance(inner, keras.Model) else [model]
    )
    names = {}
    for module in modules:
        for layer in _layers(module):
            names.setdefault(layer.name, f"<layer {len(names)}>")
    try:
        configs = [keras.saving.serialize_keras_object(m) for m in modules]
        return json.dumps({
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "likelihood": getattr(model, "likelihood", None),
            "modules": _canonical(configs, names),
            "weights": [
                [list(v.shape), str(v.dtype)] for v in adapter._variables
            ],
        }, sort_keys=True, default=repr)
    except (TypeError, ValueError, NotImplementedError):
        return None


def _layers(layer):
    """`layer` and every layer inside it (models, wrappers), in order."""
    yield layer
    children = list(getattr(layer, "layers", None) or [])
    wrapped = getattr(layer, "layer", None)
    if isinstance(wrapped, keras.layers.Layer):
        children.append(wrapped)
    for child in children:
        yield from _layers(child)


def _canonical(value, names):
    if isinstance(value, dict):
        return {
            k: _canonical(v, names) for k, v in value.items() if k != "seed"
        }
    if isinstance(value, (list, tuple)):
        return [_canonical(v, names) for v in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value
