"""Jacobians, pullback metrics and eigenspectra of any model, compiled.

The public functions of `vaekeras.geometry`: each validates its input,
picks the exact (Gram) or matrix-free (Lanczos) route and runs one
function compiled once per model by `vaekeras.latent.LatentModel`.
"""

import functools

import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import latent
from vaekeras.geometry.algebra import AUTO_MEMORY_BYTES
from vaekeras.geometry.algebra import _check_k
from vaekeras.geometry.algebra import _compute
from vaekeras.geometry.algebra import _spectrum
from vaekeras.geometry.algebra import check_kind
from vaekeras.geometry.algebra import check_method
from vaekeras.geometry.algebra import output_rows
from vaekeras.geometry.algebra import rank_bound
from vaekeras.geometry.algebra import spectrum_from_jacobian
from vaekeras.geometry.lanczos import _lanczos_in_view
from vaekeras.geometry.lanczos import _matrix_free


def spectrum_in_view(view, x, kind, k, with_vectors=True, method="exact",
                     iterations=None):
    """Top-k eigenpairs of G at `x`, inside a compiled function.

    For code that runs in a `LatentModel.function` (e.g. an attack step).
    `method` is `"exact"` or `"lanczos"` (resolve `"auto"` before).

    Returns:
        `(values (B, k), vectors (B, D, k))`, or `values` alone.
    """
    if method == "lanczos":
        values, vectors, _ = _lanczos_in_view(
            view, x, kind, k, iterations, residuals=False
        )
        return (values, vectors) if with_vectors else values
    z_mean, z_log_var, jac = view.jacobian(x)
    if kind == "output":
        rows = output_rows(view, z_mean, jac[:, :z_mean.shape[-1], :])
        return _spectrum(rows, ops.ones_like(z_mean), k, with_vectors)
    return spectrum_from_jacobian(z_log_var, jac, kind, k, with_vectors)


def _geometry(view, x, what, kind, k):
    z_mean, z_log_var, jac = view.jacobian(x)
    rows = None
    if kind == "output" and what != "jacobians":
        rows = output_rows(view, z_mean, jac[:, :z_mean.shape[-1], :])
    return _compute(what, z_log_var, jac, kind, k, rows=rows)


def resolve_method(method, model, x, kind):
    """`"exact"` or `"lanczos"` for `method` (resolving `"auto"` by size)."""
    check_method(method)
    if method != "auto":
        return method
    if backend.is_symbolic(x) or None in tuple(x.shape):
        return "exact"  # traced (e.g. an export): sizes unknown
    rows = rank_bound(kind, model.latent_dim(x))
    size = 4 * int(np.prod(tuple(x.shape))) * rows
    return "exact" if size <= AUTO_MEMORY_BYTES else "lanczos"


def _run(model, x, what, kind="stochastic", k=None, method="exact",
         iterations=None, tol=1e-3):
    model = latent.LatentModel.of(model)
    check_kind(kind)
    x = model.check_inputs(x)
    if kind == "output":
        model.require_decoder()
    if k is not None or what in ("spectrum", "values"):
        k = _check_k(k, kind, model.latent_dim(x))
    if what in ("spectrum", "values") and resolve_method(
        method, model, x, kind
    ) == "lanczos":
        if backend.is_symbolic(x):
            raise ValueError(
                "method='lanczos' checks its residuals eagerly and cannot "
                "run inside a traced function; use method='exact' there."
            )
        values, vectors, _ = _matrix_free(model, x, kind, k, iterations, tol)
        return (values, vectors) if what == "spectrum" else values
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

    Examples:
        >>> j_mean, j_log_var = encoder_jacobians(model.encoder, images[:8])
    """
    return _run(encoder, x, "jacobians")


def pullback_metric(encoder, x, kind="stochastic"):
    """The pullback metric tensor G(x) of the encoder, per sample.

    Args:
        encoder: as in `encoder_jacobians`; a VAE (or anything with a
            decoder) for `kind="output"`.
        x: float32 inputs `(B, H, W, C)`.
        kind: `"mean"`, `"stochastic"` (default), `"fisher"` or
            `"output"` (module docstring).

    Returns:
        `(B, D, D)` symmetric positive semi-definite tensors.

    Raises:
        ValueError: as `encoder_jacobians`, or for an unknown kind.
    """
    return _run(encoder, x, "metric", kind)


def eigenspectrum(encoder, x, kind="stochastic", k=None, method="auto",
                  iterations=None, tol=1e-3):
    """Top eigenpairs of the pullback metric, through the Gram matrix.

    Args:
        encoder: as in `encoder_jacobians` (a VAE or a SavedModel with a
            decoder for `kind="output"`).
        x: float32 inputs `(B, H, W, C)`.
        kind: metric kind, see `pullback_metric`.
        k: number of pairs, in [1, rank bound]; None returns all (d for
            `"mean"` and `"output"`, 2d otherwise).
        method: `"exact"` (Jacobian and Gram matrix), `"lanczos"`
            (matrix-free, see `matrix_free_eigenspectrum`) or `"auto"`
            (default): exact while A, `(B, rows, D)` float32, fits
            `AUTO_MEMORY_BYTES` (256 MiB), else Lanczos.
        iterations, tol: Lanczos settings, see `matrix_free_eigenspectrum`.

    Returns:
        `(eigenvalues, eigenvectors)`: `(B, k)` descending and clipped at 0,
        and `(B, D, k)` with unit-norm columns (flattened input space).

    Raises:
        ValueError: as `pullback_metric`, or for a bad k or method.
        NotConvergedError: when Lanczos misses `tol`.

    Examples:
        >>> values, vectors = eigenspectrum(model.encoder, images[:8], k=3)
        >>> attack_direction = vectors[:, :, 0]  # (8, 784)
    """
    return _run(encoder, x, "spectrum", kind, k, method, iterations, tol)


def eigenvalues(encoder, x, kind="stochastic", k=None, method="auto",
                iterations=None, tol=1e-3):
    """Only the eigenvalues of `eigenspectrum`, `(B, k)`: skips the vectors.

    Accepts the same arguments as `eigenspectrum`.
    """
    return _run(encoder, x, "values", kind, k, method, iterations, tol)
