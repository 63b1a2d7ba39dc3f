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
- `"output"`:     A = C J_mu with C^T C = J_dec^T J_dec          (d x D)
  the pullback through the reconstruction map f(x) = dec(mu(x)), G =
  J_f^T J_f: |f(x + delta) - f(x)|^2 = delta^T G delta + O(|delta|^3), so
  its top eigenvector is the first-order optimal attack on reconstruction
  damage. Needs a decoder. J_dec (D x d, at z = mu(x)) takes one batched
  forward-mode pass over d tangents.

The nonzero eigenvalues of G are those of the small Gram matrix A A^T, and
the eigenvectors are v = A^T u / |A^T u|, so the spectrum never needs the
D x D matrix. Jacobians are reverse mode (d passes, not D), batched and
compiled once per model by `vaekeras.latent.LatentModel`; this module is
pure `keras.ops` algebra on top of it.

`method="lanczos"` never forms A: it runs Lanczos on products
G v = A^T (A v), one forward-mode and one reverse-mode pass each (see
`matrix_free_eigenspectrum`), which pays off when A (2d x D per sample) is
large, e.g. conv encoders on 64x64x3 images.
"""

import functools
import math

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import latent

KINDS = ("mean", "stochastic", "fisher", "output")
METHODS = ("exact", "lanczos", "auto")
# `method="auto"` builds A = (B, rows, D) float32 when it fits this budget.
AUTO_MEMORY_BYTES = 256 * 2**20


class NotConvergedError(ArithmeticError):
    """A matrix-free eigensolver stopped before reaching its tolerance."""


def check_kind(kind):
    """Raises a `ValueError` naming `kind` unless it is one of `KINDS`."""
    if kind not in KINDS:
        raise ValueError(
            "Invalid value received for argument `kind`: expected one of "
            f"{KINDS}. Received: kind={kind!r}"
        )


def check_method(method):
    """Raises a `ValueError` naming `method` unless it is one of `METHODS`."""
    if method not in METHODS:
        raise ValueError(
            "Invalid value received for argument `method`: expected one of "
            f"{METHODS}. Received: method={method!r}"
        )


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


# --- Backend-agnostic algebra (keras.ops). ---


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


# --- Matrix-free: Lanczos on G v = A^T (A v). ---


def _operator(view, x, kind):
    """`v (B, D) -> G v (B, D)` at `x`: one JVP and one VJP per product."""
    batch = ops.shape(x)[0]
    if kind == "output":
        def f(x_):
            z_mean, _ = view.encode(x_)
            return ops.reshape(view.decode(z_mean), (batch, -1))

        weights = None
    else:
        def f(x_):
            return ops.concatenate(view.encode(x_), axis=-1)  # (B, 2d)

        _, z_log_var = view.encode(x)
        weights = ops.square(row_scales(z_log_var, kind))  # A = diag(c) J

    def matvec(v):
        product = view.metric_product(
            f, x, ops.reshape(v, ops.shape(x)), weights
        )
        return ops.reshape(product, (batch, -1))

    def range_vector():
        # A^T (c * u) for a fixed dense u: inside G's range for one
        # reverse pass (G = A^T A and A^T have the same range).
        out = f(x)
        pattern = ops.cast(ops.arange(ops.shape(out)[-1]) % 5, "float32")
        u = ops.ones_like(out) + 0.1 * pattern[None, :]
        if weights is not None:
            u = u * weights
        return ops.reshape(view.vjp(f, x, u), (batch, -1))

    def quadratic(v):
        # v^T G v = |A v|^2: one forward-mode pass, no reverse pass.
        _, product = view.jvp(f, x, ops.reshape(v, ops.shape(x)))
        squared = ops.square(product)
        if weights is not None:
            squared = squared * weights
        return ops.sum(squared, axis=-1)

    matvec.range_vector = range_vector
    matvec.quadratic = quadratic
    return matvec


def _lanczos_in_view(view, x, kind, k, iterations, residuals=True,
                     start=None):
    """Lanczos with full reorthogonalisation, batched over samples.

    G has rank at most r (the rank bound); the start vector is A^T u for
    a fixed dense u, so the Krylov space lies in G's range and
    `iterations = r` is exact in exact arithmetic. Fewer iterations give
    the top eigenpairs first, which is why Lanczos beats block power
    iteration here: its top Ritz value converges at a rate set by the gap
    relative to the whole spectrum's spread (Chebyshev), power iteration's
    only by the ratio of the first two eigenvalues, and the top of an
    encoder's spectrum is often tightly spaced. Full reorthogonalisation
    keeps float32 Ritz pairs free of ghost copies.
    """
    batch = ops.shape(x)[0]
    size = int(np.prod(x.shape[1:]))
    m = iterations
    matvec = _operator(view, x, kind)
    if start is None:
        # Inside G's range, so r iterations span all of it (the null space
        # adds nothing to the top eigenpairs).
        start = matvec.range_vector()
    q = start / ops.maximum(ops.norm(start, axis=-1, keepdims=True), 1e-30)
    basis = ops.zeros((batch, m, size))
    basis = basis + ops.one_hot(0, m)[None, :, None] * q[:, None, :]
    zeros = ops.zeros((batch, m))

    def body(j, state):
        basis, alphas, betas, q_prev, q, beta_prev, scale = state
        w = matvec(q)
        alpha = ops.sum(w * q, axis=-1)
        scale = ops.maximum(scale, ops.abs(alpha))
        w = w - alpha[:, None] * q - beta_prev[:, None] * q_prev
        for _ in range(2):  # twice is enough (Kahan-Parlett)
            coeff = ops.einsum("bmD,bD->bm", basis, w)
            w = w - ops.einsum("bm,bmD->bD", coeff, basis)
        beta = ops.norm(w, axis=-1)
        # Once the Krylov space is invariant (G's range is exhausted), w is
        # rounding noise: stop there (zero vectors add zero Ritz values)
        # instead of normalising noise into garbage directions.
        beta = ops.where(beta > 1e-5 * scale, beta, 0.0)
        q_next = w * ops.where(beta > 0.0, 1.0 / ops.maximum(beta, 1e-30),
                               0.0)[:, None]
        alphas = alphas + ops.one_hot(j, m)[None, :] * alpha[:, None]
        betas = betas + ops.one_hot(j, m)[None, :] * beta[:, None]
        basis = basis + (
            ops.one_hot(j + 1, m)[None, :, None] * q_next[:, None, :]
        )
        return basis, alphas, betas, q, q_next, beta, scale

    basis, alphas, betas, _, q_last, _, _ = ops.fori_loop(
        0, m - 1, body,
        (basis, zeros, zeros, ops.zeros_like(q), q, ops.zeros((batch,)),
         ops.zeros((batch,))),
    )
    # The last Lanczos vector needs only its Rayleigh quotient, not G q:
    # one forward-mode pass instead of a full product.
    alphas = alphas + ops.one_hot(m - 1, m)[None, :] * matvec.quadratic(
        q_last
    )[:, None]
    eye = ops.eye(m)
    upper = betas[:, :, None] * ops.eye(m, k=1)
    tridiagonal = alphas[:, :, None] * eye + upper + ops.transpose(
        upper, (0, 2, 1)
    )
    theta, ritz = ops.eigh(tridiagonal)  # ascending
    values = ops.maximum(ops.flip(theta, axis=-1)[:, :k], 0.0)  # (B, k)
    ritz = ops.flip(ritz, axis=-1)[:, :, :k]  # (B, m, k)
    vectors = ops.einsum("bmD,bmk->bDk", basis, ritz)
    vectors = vectors / ops.maximum(
        ops.norm(vectors, axis=1, keepdims=True), 1e-30
    )
    if not residuals:
        return values, vectors, None
    # The true residual |G v - lambda v| of every pair, one batched product
    # at x repeated k times.
    tiled = ops.reshape(ops.transpose(vectors, (0, 2, 1)), (-1, size))
    products = _operator(view, ops.repeat(x, k, axis=0), kind)(tiled)
    gap = products - ops.reshape(values, (-1, 1)) * tiled
    residual = ops.reshape(ops.norm(gap, axis=-1), (batch, k))
    return values, vectors, residual


def _iteration_schedule(iterations, k, rank, size):
    """Krylov dimensions to try: the given one, or a doubling schedule."""
    if iterations is None:
        # Start small (a dominant top eigenvalue, the common case for
        # trained encoders, converges in a few), double until converged,
        # end at the rank bound plus a margin (exact up to rounding).
        last = min(size, rank + 8)
        schedule = []
        m = min(last, max(6, 2 * k + 4))
        while m < last:
            schedule.append(m)
            m *= 2
        return schedule + [last]
    if isinstance(iterations, bool) or not isinstance(
        iterations, (int, np.integer)
    ) or not k <= iterations <= size:
        raise ValueError(
            "Invalid value received for argument `iterations`: expected an "
            f"integer in [k={k}, {size}] (the input size). Received: "
            f"iterations={iterations!r}"
        )
    return [int(iterations)]


def _matrix_free(model, x, kind, k, iterations, tol):
    latent_dim = model.latent_dim(x)
    size = int(np.prod(ops.shape(x)[1:]))
    schedule = _iteration_schedule(
        iterations, k, rank_bound(kind, latent_dim), size
    )
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(
            "Invalid value received for argument `tol`: expected a positive "
            f"number. Received: tol={tol!r}"
        )
    for m in schedule:
        fn = functools.partial(
            _lanczos_in_view, kind=kind, k=k, iterations=m
        )
        values, vectors, residual = model.function(
            fn, ("lanczos", kind, k, m)
        )(x)
        top = backend.as_numpy(values)[:, :1]
        relative = backend.as_numpy(residual) / np.maximum(top, 1e-30)
        relative = np.where(top > 1e-20, relative, 0.0)
        if relative.max() <= tol:
            return values, vectors, residual
    worst = int(np.argmax(relative.max(axis=1)))
    raise NotConvergedError(
        "Lanczos did not converge: the largest relative residual "
        f"|G v - lambda v| / lambda_1 is {relative.max():.3g} > "
        f"tol={tol:g} (sample {worst}) after {m} iterations. Pass more "
        f"`iterations` (the rank bound {rank_bound(kind, latent_dim)} plus "
        "a few is exact up to rounding) or method='exact'."
    )


def matrix_free_eigenspectrum(
    model, x, kind="stochastic", k=1, iterations=None, tol=1e-3
):
    """Top-k eigenpairs of G without forming A, with their residuals.

    Lanczos (full reorthogonalisation) on products G v = A^T (A v), each
    one batched forward-mode and one reverse-mode pass of the encoder
    (and decoder for `kind="output"`): memory O(B * iterations * D)
    instead of the Jacobian's O(B * 2d * D) plus its autodiff buffers.

    Args:
        model: as in `eigenspectrum` (a decoder for `kind="output"`).
        x: float32 inputs `(B, H, W, C)`.
        kind: metric kind.
        k: number of pairs, in [1, rank bound].
        iterations: Krylov dimension, in [k, D]. The default (None)
            tries `max(6, 2k + 4)` and doubles it until every residual
            meets `tol`, ending at the rank bound plus 8 (the rank bound is
            exact in exact arithmetic; in float32 a tightly clustered
            spectrum needs a few more). Each size is compiled once.
        tol: largest accepted residual |G v - lambda v| / lambda_1.

    Returns:
        `(values (B, k), vectors (B, D, k), residuals (B, k))`: values
        descending, clipped at 0; unit vectors; true residual norms.

    Raises:
        ValueError: for a bad kind, k, iterations or tol, naming it, or
            `kind="output"` without a decoder.
        NotConvergedError: when a residual exceeds `tol * lambda_1`; the
            message names the residual and what to change.

    Example:

    >>> values, vectors, residuals = matrix_free_eigenspectrum(
    ...     model, images[:16], kind="fisher", k=1)
    """
    model = latent.LatentModel.of(model)
    check_kind(kind)
    x = model.check_inputs(x)
    if kind == "output":
        model.require_decoder()
    k = _check_k(k, kind, model.latent_dim(x))
    return _matrix_free(model, x, kind, k, iterations, tol)


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

    Example:

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
        encoder: Keras model `x -> [z_mean, z_log_var]`, or a vaekeras VAE
            (needed for `kind="output"`, which uses the decoder).
        kind: `"mean"`, `"stochastic"` (default), `"fisher"` or
            `"output"`.
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
