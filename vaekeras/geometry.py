"""Pullback metric tensors of a VAE encoder and their eigenspectra.

For an encoder q(z|x) = N(mu(x), diag sigma^2(x)) with latent size d and
flattened input size D, let J_mu, J_sigma, J_lv (each d x D) be the
Jacobians of mu, sigma and log sigma^2 with respect to x. Every metric
kind is G = A^T A (D x D) for a stack of rows A:

- `"mean"`:       A = J_mu                                  (d x D)
- `"stochastic"`: A = [J_mu; J_sigma]                       (2d x D)
  E_eps[J_z^T J_z] for z = mu + sigma * eps: the paper's metric (default).
- `"fisher"`:     A = [diag(1/sigma) J_mu; sqrt(1/2) J_lv]  (2d x D)
  pullback of the Fisher-Rao metric: KL(q(z|x+delta) || q(z|x)) =
  0.5 * delta^T G delta + O(|delta|^3).

The nonzero eigenvalues of G are those of the small Gram matrix A A^T, and
the eigenvectors are v = A^T u / |A^T u|, so the spectrum never needs the
D x D matrix. Jacobians are reverse mode (d passes, not D), batched and
compiled per backend; this module is the only one that branches on the
Keras backend.
"""

import math
import weakref

import keras
import numpy as np
from keras import ops

KINDS = ("mean", "stochastic", "fisher")

# Compiled functions per encoder and (what, kind, k); weak keys so a model
# that is deleted takes its traced functions with it.
_CACHE = weakref.WeakKeyDictionary()
_STRONG_CACHE = {}  # for callables that cannot be weakly referenced


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(
            "Invalid value received for argument `kind`: expected one of "
            f"{KINDS}. Received: kind={kind!r}"
        )


def rank_bound(kind, latent_dim):
    """Largest possible rank of G: d for `"mean"`, 2d otherwise."""
    _check_kind(kind)
    return latent_dim if kind == "mean" else 2 * latent_dim


def _as_encoder(encoder):
    """Accepts a VAE (uses its `.encoder`) or an encoder-like callable."""
    inner = getattr(encoder, "encoder", None)
    if isinstance(encoder, keras.Model) and isinstance(inner, keras.Model):
        return inner
    if not callable(encoder):
        raise ValueError(
            "Invalid value received for argument `encoder`: expected a Keras "
            "model or callable mapping x to [z_mean, z_log_var]. Received: "
            f"encoder={encoder!r}"
        )
    return encoder


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


def _check_encoder_outputs(encoder):
    outputs = getattr(encoder, "outputs", None)
    if isinstance(encoder, keras.Model) and outputs is not None:
        if len(outputs) != 2 or tuple(outputs[0].shape) != tuple(
            outputs[1].shape
        ):
            raise ValueError(
                "Invalid value received for argument `encoder`: it must "
                "return [z_mean, z_log_var] of equal shape (B, d). Received "
                f"an encoder with outputs {[tuple(o.shape) for o in outputs]}"
            )


def _check_inputs(encoder, x):
    """Checks x's rank/shape against a Keras encoder and that it is finite."""
    shape = tuple(x.shape)
    inputs = getattr(encoder, "inputs", None)
    if isinstance(encoder, keras.Model) and inputs:
        expected = tuple(inputs[0].shape[1:])
        if len(shape) != len(expected) + 1 or any(
            s is not None and e is not None and s != e
            for s, e in zip(shape[1:], expected)
        ):
            raise ValueError(
                "Invalid value received for argument `x`: expected shape "
                f"(batch, {', '.join(map(str, expected))}) for this encoder. "
                f"Received: x.shape={shape}"
            )
    elif len(shape) < 2:
        raise ValueError(
            "Invalid value received for argument `x`: expected a batch of "
            f"inputs of rank >= 2. Received: x.shape={shape}"
        )
    if isinstance(x, np.ndarray) and not np.all(np.isfinite(x)):
        raise ValueError(
            "Invalid value received for argument `x`: it holds non-finite "
            "values (NaN or inf)."
        )


def _check_k(k, kind, latent_dim):
    bound = rank_bound(kind, latent_dim)
    if k is None:
        return bound
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (
        1 <= k <= bound
    ):
        raise ValueError(
            "Invalid value received for argument `k`: expected an integer in "
            f"[1, {bound}] (the rank bound of kind={kind!r} with latent size "
            f"{latent_dim}). Received: k={k!r}"
        )
    return int(k)


# --- Per-backend Jacobians: x (B, ...) -> z_mean, z_log_var (B, d),
# jacobian (B, 2d, D) of [z_mean, z_log_var] w.r.t. flattened x. ---


def _tf_jacobian(encode, x):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        z_mean, z_log_var = split_encoding(encode(x))
        z = tf.concat([z_mean, z_log_var], axis=-1)  # (B, 2d)
    jac = tape.batch_jacobian(z, x)  # (B, 2d, H, W, C)
    batch, rows = tf.shape(jac)[0], tf.shape(jac)[1]
    return z_mean, z_log_var, tf.reshape(jac, (batch, rows, -1))


def _single_output(encode):
    """Per-sample function x1 -> ([z_mean; z_log_var], aux) for vmap."""

    def single(*args):
        z_mean, z_log_var = split_encoding(encode(*args))
        z_mean, z_log_var = z_mean[0], z_log_var[0]
        return ops.concatenate([z_mean, z_log_var], axis=-1), (
            z_mean,
            z_log_var,
        )

    return single


def _jax_jacobian_fn(encoder):
    import jax

    if isinstance(encoder, keras.Model):

        def encode(trainable, non_trainable, x1):
            outputs, _ = encoder.stateless_call(
                trainable, non_trainable, x1[None]
            )
            return outputs

        jac_fn = jax.vmap(
            jax.jacrev(_single_output(encode), argnums=2, has_aux=True),
            in_axes=(None, None, 0),
        )
    else:
        jac_fn = jax.vmap(
            jax.jacrev(
                _single_output(lambda x1: encoder(x1[None])), has_aux=True
            )
        )

    def run(*args):
        x = args[-1]
        jac, (z_mean, z_log_var) = jac_fn(*args)
        return z_mean, z_log_var, jac.reshape(x.shape[0], jac.shape[1], -1)

    return run


def _torch_jacobian(encoder, x):
    import torch

    single = _single_output(lambda x1: encoder(x1[None]))
    jac, (z_mean, z_log_var) = torch.func.vmap(
        torch.func.jacrev(single, has_aux=True)
    )(x)
    return z_mean, z_log_var, jac.reshape(x.shape[0], jac.shape[1], -1)


def _torch_jacobian_by_rows(encoder, x):
    """One batched backward pass per output row, vectorised over rows.

    For layers torch.func cannot vmap (Keras' channels-last Conv2D): the
    forward pass runs once, unbatched; only the backward is vmapped.
    """
    import torch

    x = x.detach().requires_grad_(True)
    z_mean, z_log_var = split_encoding(encoder(x))
    z = torch.cat([z_mean, z_log_var], dim=-1)  # (B, 2d)
    rows = z.shape[1]
    cotangents = torch.eye(rows, dtype=z.dtype, device=z.device)
    cotangents = cotangents[:, None, :].expand(rows, *z.shape)  # (2d, B, 2d)
    (jac,) = torch.autograd.grad(
        z, x, grad_outputs=cotangents, is_grads_batched=True
    )  # (2d, B, H, W, C)
    jac = jac.reshape(rows, x.shape[0], -1).transpose(0, 1)
    return z_mean.detach(), z_log_var.detach(), jac


# --- Backend-agnostic algebra (keras.ops). ---


def _rows_and_scales(z_log_var, jac, kind):
    """Rows R and per-row scales c with A = diag(c) R, so G = A^T A.

    Scaling the small Gram matrix (c_i c_j (R R^T)_ij) instead of the
    (B, r, D) rows saves a pass over the largest tensor.
    """
    d = z_log_var.shape[-1]
    if kind == "mean":
        return jac[:, :d, :], ops.ones_like(z_log_var)
    sigma = ops.exp(0.5 * z_log_var)  # (B, d)
    if kind == "stochastic":
        # d sigma / dx = 0.5 * sigma * d log sigma^2 / dx.
        scales = [ops.ones_like(sigma), 0.5 * sigma]
    else:
        scales = [1.0 / sigma, ops.full_like(sigma, math.sqrt(0.5))]
    return jac, ops.concatenate(scales, axis=-1)  # (B, 2d, D), (B, 2d)


def _spectrum(rows, scales, k, with_vectors=True):
    """Top-k eigenpairs of A^T A from the Gram matrix A A^T."""
    raw = ops.einsum("brD,bsD->brs", rows, rows)  # (B, r, r)
    gram = raw * scales[:, :, None] * scales[:, None, :]
    values, vectors = ops.eigh(gram)  # ascending
    values = ops.maximum(ops.flip(values, axis=-1)[:, :k], 0.0)  # (B, k)
    if not with_vectors:
        return values
    vectors = ops.flip(vectors, axis=-1)[:, :, :k]  # (B, r, k)
    lifted = ops.einsum(
        "brD,brk->bDk", rows, scales[:, :, None] * vectors
    )  # (B, D, k)
    norms = ops.sqrt(ops.sum(ops.square(lifted), axis=1, keepdims=True))
    # |A^T u| = sqrt(lambda); normalising by it directly keeps columns unit
    # even where lambda is tiny.
    return values, lifted / ops.maximum(norms, 1e-30)


def _compute(what, z_log_var, jac, kind, k):
    if what == "jacobians":
        d = z_log_var.shape[-1]
        return jac[:, :d, :], jac[:, d:, :]
    rows, scales = _rows_and_scales(z_log_var, jac, kind)
    if what == "metric":
        factor = scales[:, :, None] * rows
        return ops.einsum("brD,brE->bDE", factor, factor)
    return _spectrum(rows, scales, k, with_vectors=what == "spectrum")


def _cache_for(encoder):
    """The dict of compiled functions (and facts) kept for this encoder."""
    try:
        return _CACHE.setdefault(encoder, {})
    except TypeError:
        return _STRONG_CACHE.setdefault(id(encoder), {"ref": encoder})


def _compiled(encoder, what, kind, k):
    """A compiled x -> result function for this encoder, cached."""
    per_encoder = _cache_for(encoder)
    key = (what, kind, k)
    if key in per_encoder:
        return per_encoder[key]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def run(x):
            _, z_log_var, jac = _tf_jacobian(encoder, x)
            return _compute(what, z_log_var, jac, kind, k)

        fn = tf.function(run, reduce_retracing=True)
    elif backend == "jax":
        import jax

        jac_fn = _jax_jacobian_fn(encoder)

        def run_jax(*args):
            _, z_log_var, jac = jac_fn(*args)
            return _compute(what, z_log_var, jac, kind, k)

        jitted = jax.jit(run_jax)
        if isinstance(encoder, keras.Model):
            # Pass the weights as arguments: a trained encoder must not run
            # with the values traced at the first call.
            def fn(x):
                return jitted(
                    [v.value for v in encoder.trainable_variables],
                    [v.value for v in encoder.non_trainable_variables],
                    x,
                )
        else:
            fn = jitted
    elif backend == "torch":
        methods = [_torch_jacobian, _torch_jacobian_by_rows]

        def fn(x):
            while True:
                try:
                    _, z_log_var, jac = methods[0](encoder, x)
                    break
                except RuntimeError:
                    if len(methods) == 1:
                        raise
                    methods.pop(0)  # remember: this encoder cannot vmap
            return _compute(what, z_log_var, jac, kind, k)

    else:
        raise ValueError(
            f"The pullback metric needs the tensorflow, jax or torch backend. "
            f"Received: KERAS_BACKEND={backend!r}"
        )
    per_encoder[key] = fn
    return fn


def _run(encoder, x, what, kind="stochastic", k=None):
    encoder = _as_encoder(encoder)
    _check_kind(kind)
    _check_encoder_outputs(encoder)
    _check_inputs(encoder, x)
    if k is not None or what in ("spectrum", "values"):
        latent_dim = _latent_dim(encoder, x)
        k = _check_k(k, kind, latent_dim)
    x = ops.convert_to_tensor(x, dtype="float32")
    return _compiled(encoder, what, kind, k)(x)


def _latent_dim(encoder, x):
    outputs = getattr(encoder, "outputs", None)
    if isinstance(encoder, keras.Model) and outputs is not None:
        return int(outputs[0].shape[-1])
    # A plain callable (e.g. a SavedModel endpoint): probe it once, not on
    # every batch or attack step.
    per_encoder = _cache_for(encoder)
    if "latent_dim" not in per_encoder:
        z_mean, _ = split_encoding(encoder(ops.convert_to_tensor(x[:1])))
        per_encoder["latent_dim"] = int(z_mean.shape[-1])
    return per_encoder["latent_dim"]


def encoder_jacobians(encoder, x):
    """Per-sample Jacobians of z_mean and z_log_var w.r.t. the input.

    Args:
        encoder: Keras model (or callable) mapping x `(B, H, W, C)` to
            `[z_mean, z_log_var]`, or a vaekeras VAE (its encoder is used).
        x: float32 inputs `(B, H, W, C)`.

    Returns:
        `(j_mean, j_log_var)`, each `(B, d, D)` with D = H * W * C.

    Raises:
        ValueError: for inputs of the wrong shape or non-finite inputs, or
            an encoder that does not return `[z_mean, z_log_var]`.

    Example:

    >>> j_mean, j_log_var = encoder_jacobians(model.encoder, images[:8])
    """
    return _run(encoder, x, "jacobians")


def pullback_metric(encoder, x, kind="stochastic"):
    """The pullback metric tensor G(x) of the encoder, per sample.

    Args:
        encoder: as in `encoder_jacobians`.
        x: float32 inputs `(B, H, W, C)`.
        kind: `"mean"`, `"stochastic"` (default) or `"fisher"` (module
            docstring).

    Returns:
        `(B, D, D)` symmetric positive semi-definite tensors.

    Raises:
        ValueError: as `encoder_jacobians`, or for an unknown kind.
    """
    return _run(encoder, x, "metric", kind)


def eigenspectrum(encoder, x, kind="stochastic", k=None):
    """Top eigenpairs of the pullback metric, through the Gram matrix.

    Args:
        encoder: as in `encoder_jacobians`.
        x: float32 inputs `(B, H, W, C)`.
        kind: metric kind, see `pullback_metric`.
        k: number of pairs, in [1, rank bound]; None returns all (d for
            `"mean"`, 2d otherwise).

    Returns:
        `(eigenvalues, eigenvectors)`: `(B, k)` descending and clipped at 0,
        and `(B, D, k)` with unit-norm columns (flattened input space).

    Raises:
        ValueError: as `pullback_metric`, or for a bad k.

    Example:

    >>> values, vectors = eigenspectrum(model.encoder, images[:8], k=3)
    >>> attack_direction = vectors[:, :, 0]  # (8, 784)
    """
    return _run(encoder, x, "spectrum", kind, k)


def eigenvalues(encoder, x, kind="stochastic", k=None):
    """Only the eigenvalues of `eigenspectrum`, `(B, k)`: skips the vectors.

    Accepts the same encoders as `eigenspectrum`, and also a TensorFlow
    callable such as a loaded SavedModel's `encode` endpoint.
    """
    return _run(encoder, x, "values", kind, k)


def eigenspectrum_from_function(encode_fn, x, kind="stochastic", k=None):
    """`eigenspectrum` for any TensorFlow callable, e.g. a SavedModel's.

    Works with `tf.saved_model.load(path).encode`, which returns a dict
    `{"z_mean", "z_log_var"}`, so exported models are scored without
    vaekeras models. TensorFlow backend only.

    Args:
        encode_fn: callable x -> dict or pair `(z_mean, z_log_var)`.
        x, kind, k: as in `eigenspectrum`.

    Returns:
        As `eigenspectrum`.

    Raises:
        ValueError: as `eigenspectrum`, or when the backend is not TF.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "eigenspectrum_from_function differentiates TensorFlow callables "
            "and needs KERAS_BACKEND=tensorflow. Received: "
            f"{keras.backend.backend()!r}"
        )
    return _run(encode_fn, x, "spectrum", kind, k)


@keras.saving.register_keras_serializable(package="vaekeras")
class PullbackMetric(keras.layers.Layer):
    """Layer returning the top eigenpairs of the encoder's pullback metric.

    Args:
        encoder: Keras model `x -> [z_mean, z_log_var]`.
        kind: `"mean"`, `"stochastic"` (default) or `"fisher"`.
        k: number of eigenpairs; None for the rank bound.
        **kwargs: base `Layer` arguments.

    Call args:
        x: inputs `(B, H, W, C)`.

    Returns:
        `(eigenvalues (B, k), eigenvectors (B, D, k))`.

    Example:

    >>> layer = PullbackMetric(model.encoder, kind="fisher", k=4)
    >>> values, vectors = layer(images[:16])
    """

    def __init__(self, encoder, kind="stochastic", k=None, **kwargs):
        super().__init__(**kwargs)
        _check_kind(kind)
        _check_encoder_outputs(encoder)
        self.encoder = encoder
        self.kind = kind
        latent_dim = int(encoder.outputs[0].shape[-1])
        self.k = k
        self._k = _check_k(k, kind, latent_dim)
        # The encoder's weights are its own; this layer adds none.
        self.built = True

    def call(self, x):
        return eigenspectrum(self.encoder, x, self.kind, self._k)

    def compute_output_shape(self, input_shape):
        flat = int(np.prod(input_shape[1:]))
        return (input_shape[0], self._k), (input_shape[0], flat, self._k)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "kind": self.kind,
            "k": self.k,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"]
        )
        return cls(**config)


def input_gradient_fn(loss_fn):
    """Compiles `(x, *args) -> (losses, d sum(losses) / dx)` per backend.

    The attacks' one backend-specific need: the gradient of a per-sample
    latent objective with respect to the input. TensorFlow traces it in a
    `tf.function` (so SavedModel endpoints work too), JAX jits
    `value_and_grad` (the weights are read when it is first traced), and
    torch uses `torch.autograd.grad`.

    Args:
        loss_fn: `(x, *args) -> (B,)` per-sample objective in keras.ops.

    Returns:
        A callable `(x, *args) -> (losses (B,), gradient like x)`.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def tf_fn(x, *args):
            with tf.GradientTape() as tape:
                tape.watch(x)
                losses = loss_fn(x, *args)
                total = tf.reduce_sum(losses)
            return losses, tape.gradient(total, x)

        return tf_fn
    if backend == "jax":
        import jax

        def total(x, *args):
            losses = loss_fn(x, *args)
            return losses.sum(), losses

        grad_fn = jax.jit(jax.value_and_grad(total, has_aux=True))

        def jax_fn(x, *args):
            (_, losses), grad = grad_fn(x, *args)
            return losses, grad

        return jax_fn
    if backend == "torch":
        import torch

        def torch_fn(x, *args):
            x = torch.as_tensor(x).detach().requires_grad_(True)
            losses = loss_fn(x, *args)
            (grad,) = torch.autograd.grad(losses.sum(), x)
            return losses.detach(), grad

        return torch_fn
    raise ValueError(
        "Input gradients need the tensorflow, jax or torch backend. "
        f"Received: KERAS_BACKEND={backend!r}"
    )
