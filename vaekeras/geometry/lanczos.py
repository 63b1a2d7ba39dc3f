"""Matrix-free spectra: Lanczos on G v = A^T (A v), A never formed.

Each product is one forward-mode and one reverse-mode pass; this pays off
when A (2d x D per sample) is large, e.g. conv encoders on 64x64x3
images.
"""

import functools

import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import checks
from vaekeras import latent
from vaekeras.geometry.algebra import NotConvergedError
from vaekeras.geometry.algebra import _check_k
from vaekeras.geometry.algebra import check_kind
from vaekeras.geometry.algebra import rank_bound
from vaekeras.geometry.algebra import row_scales


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
    checks.positive("tol", tol)
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

    Examples:
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
