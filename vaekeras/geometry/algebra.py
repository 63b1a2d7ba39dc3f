"""The metric's algebra in `keras.ops`: kinds, row scales, Gram spectra.

Every metric kind is G = A^T A for a stack of rows A (see the package
docstring); its nonzero eigenpairs come from the small Gram matrix A A^T.
"""

import math

import numpy as np
from keras import ops

from vaekeras import checks
from vaekeras import choices

KINDS = choices.KINDS
METHODS = choices.METHODS
# `method="auto"` builds A = (B, rows, D) float32 when it fits this budget.
AUTO_MEMORY_BYTES = 256 * 2**20


class NotConvergedError(ArithmeticError):
    """A matrix-free eigensolver stopped before reaching its tolerance."""


def check_kind(kind):
    """Raises a `ValueError` naming `kind` unless it is one of `KINDS`."""
    checks.choice("kind", kind, KINDS)


def check_method(method):
    """Raises a `ValueError` naming `method` unless it is one of `METHODS`."""
    checks.choice("method", method, METHODS)


def rank_bound(kind, latent_dim):
    """Largest possible rank of G: d for `"mean"` and `"output"`, else 2d."""
    check_kind(kind)
    return latent_dim if kind in ("mean", "output") else 2 * latent_dim


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


def row_scales(z_log_var, kind):
    """Scales c `(B, 2d)` with A = diag(c) [J_mu; J_lv] for `kind`.

    `"mean"` gives (1, 0): the log-variance rows drop out.
    """
    ones = ops.ones_like(z_log_var)
    if kind == "mean":
        return ops.concatenate([ones, ops.zeros_like(z_log_var)], axis=-1)
    sigma = ops.exp(0.5 * z_log_var)  # (B, d)
    if kind == "stochastic":
        # d sigma / dx = 0.5 * sigma * d log sigma^2 / dx.
        return ops.concatenate([ones, 0.5 * sigma], axis=-1)
    return ops.concatenate(
        [1.0 / sigma, ops.full_like(sigma, math.sqrt(0.5))], axis=-1
    )


def _rows_and_scales(z_log_var, jac, kind):
    """Rows R and per-row scales c with A = diag(c) R, so G = A^T A.

    Scaling the small Gram matrix (c_i c_j (R R^T)_ij) instead of the
    (B, r, D) rows saves a pass over the largest tensor.
    """
    if kind == "mean":
        d = z_log_var.shape[-1]
        return jac[:, :d, :], ops.ones_like(z_log_var)
    return jac, row_scales(z_log_var, kind)  # (B, 2d, D), (B, 2d)


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


def decoder_jacobian(view, z):
    """Rows d dec / d z_i at `z`, `(B, d, D_out)`: one batched JVP pass.

    The B x d tangents e_i go through the decoder as one batch of B * d
    latent points, so the cost is d forward-mode products, not D reverse
    passes.
    """
    d = z.shape[-1]
    batch = ops.shape(z)[0]
    points = ops.repeat(z, d, axis=0)  # (B * d, d)
    tangents = ops.tile(ops.eye(d, dtype=z.dtype), (batch, 1))  # (B * d, d)

    def decode_flat(z_):
        return ops.reshape(view.decode(z_), (ops.shape(z_)[0], -1))

    _, columns = view.jvp(decode_flat, points, tangents)  # (B * d, D_out)
    return ops.reshape(columns, (batch, d, -1))


def output_rows(view, z_mean, j_mean):
    """Rows A = C J_mu of the output kind, with C^T C = J_dec^T J_dec.

    Args:
        view: a `LatentModel` view with a decoder.
        z_mean: `(B, d)`.
        j_mean: `(B, d, D)`.

    Returns:
        `(B, d, D)`, so that G_out = A^T A.
    """
    j_dec = decoder_jacobian(view, z_mean)  # (B, d, D_out)
    gram = ops.einsum("biO,bjO->bij", j_dec, j_dec)  # J_dec^T J_dec (B, d, d)
    values, vectors = ops.eigh(gram)
    # C = diag(sqrt(values)) Q^T, so C^T C = Q diag(values) Q^T = gram.
    root = ops.sqrt(ops.maximum(values, 0.0))[:, :, None] * ops.transpose(
        vectors, (0, 2, 1)
    )
    return ops.einsum("bij,bjD->biD", root, j_mean)


def _compute(what, z_log_var, jac, kind, k, rows=None):
    if what == "jacobians":
        d = z_log_var.shape[-1]
        return jac[:, :d, :], jac[:, d:, :]
    if kind == "output":
        scales = ops.ones_like(z_log_var)
    else:
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
    if kind == "output":
        raise ValueError(
            "kind='output' needs the decoder: use `spectrum_in_view` or "
            "`eigenspectrum` with a VAE."
        )
    rows, scales = _rows_and_scales(z_log_var, jac, kind)
    return _spectrum(rows, scales, k, with_vectors=with_vectors)
