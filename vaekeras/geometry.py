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
compiled once per model by `vaekeras.latent.LatentModel`; this module is
pure `keras.ops` algebra on top of it.
"""

import functools
import math

import keras
import numpy as np
from keras import ops

from vaekeras import latent
from vaekeras.latent import split_encoding  # noqa: F401  (public helper)

KINDS = ("mean", "stochastic", "fisher")


def check_kind(kind):
    """Raises a `ValueError` naming `kind` unless it is one of `KINDS`."""
    if kind not in KINDS:
        raise ValueError(
            "Invalid value received for argument `kind`: expected one of "
            f"{KINDS}. Received: kind={kind!r}"
        )


def rank_bound(kind, latent_dim):
    """Largest possible rank of G: d for `"mean"`, 2d otherwise."""
    check_kind(kind)
    return latent_dim if kind == "mean" else 2 * latent_dim


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


def spectrum_from_jacobian(z_log_var, jac, kind, k, with_vectors=True):
    """Top-k eigenpairs of G from the encoder's Jacobian, in `keras.ops`.

    For code that already holds `jac` (`LatentModel.jacobian`), e.g.
    inside a compiled attack step.

    Args:
        z_log_var: `(B, d)`.
        jac: `(B, 2d, D)`, rows of d z_mean / dx then d z_log_var / dx.
        kind: metric kind.
        k: number of pairs (an int within the rank bound).
        with_vectors: False returns the eigenvalues alone.

    Returns:
        `(values (B, k), vectors (B, D, k))`, or `values` alone.
    """
    rows, scales = _rows_and_scales(z_log_var, jac, kind)
    return _spectrum(rows, scales, k, with_vectors=with_vectors)


def _geometry(view, x, what, kind, k):
    _, z_log_var, jac = view.jacobian(x)
    return _compute(what, z_log_var, jac, kind, k)


def _run(model, x, what, kind="stochastic", k=None):
    model = latent.LatentModel.of(model)
    check_kind(kind)
    x = model.check_inputs(x)
    if k is not None or what in ("spectrum", "values"):
        k = _check_k(k, kind, model.latent_dim(x))
    fn = functools.partial(_geometry, what=what, kind=kind, k=k)
    return model.function(fn, ("geometry", what, kind, k))(x)


def encoder_jacobians(encoder, x):
    """Per-sample Jacobians of z_mean and z_log_var w.r.t. the input.

    Args:
        encoder: a vaekeras VAE, a Keras encoder `x -> [z_mean,
            z_log_var]`, a loaded SavedModel, a callable, or a
            `LatentModel` of one (see `vaekeras.latent`).
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

    Accepts the same encoders as `eigenspectrum`.
    """
    return _run(encoder, x, "values", kind, k)


def eigenspectrum_from_function(encode_fn, x, kind="stochastic", k=None):
    """`eigenspectrum` for a callable, e.g. a SavedModel's `encode`.

    Kept for old scripts: `eigenspectrum` itself accepts callables and
    loaded SavedModels now.
    """
    return eigenspectrum(encode_fn, x, kind, k)


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
        check_kind(kind)
        latent_dim = latent.LatentModel.of(encoder).latent_dim()
        self.encoder = encoder
        self.kind = kind
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
