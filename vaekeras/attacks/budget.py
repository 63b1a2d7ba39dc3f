"""Attack budgets: eps-balls, the pixel box and projections onto both.

Pure `keras.ops`, traceable inside any compiled function: the norms of a
perturbation, the steepest-ascent unit step, the exact projection onto
the intersection of an L2 or Linf ball and the pixel box
(`fit_to_budget`), and PGD's starting point.
"""

import keras
import numpy as np
from keras import ops

from vaekeras import checks
from vaekeras.layers import clip_log_var

NORMS = checks.NORMS
# Rounds of the L2 ball-and-box fit. Each round adds the coordinates that
# saturate before the next iterate; on MNIST at eps 0.05-5 it is exact
# after 3 (benchmarks/bench_attacks.py), and every iterate is feasible
# whatever the count.
_FIT_ROUNDS = 6


def symmetric_kl(mean_a, log_var_a, mean_b, log_var_b):
    """KL(a || b) + KL(b || a) of diagonal Gaussians, per sample."""
    return gaussian_kl(mean_a, log_var_a, mean_b, log_var_b) + gaussian_kl(
        mean_b, log_var_b, mean_a, log_var_a
    )


def check_eps(eps):
    """`(list of floats, was_scalar)` or a `ValueError` naming `eps`."""
    return checks.budgets(eps)


def check_norm(norm):
    """2 or np.inf, from those or from "2", "l2", "inf", "linf"."""
    return checks.norm(norm)


def gaussian_kl(mean_a, log_var_a, mean_b, log_var_b):
    """KL(N(a) || N(b)) of diagonal Gaussians, summed over the last axis."""
    log_var_a, log_var_b = clip_log_var(log_var_a), clip_log_var(log_var_b)
    return 0.5 * ops.sum(
        log_var_b - log_var_a
        + (ops.exp(log_var_a) + ops.square(mean_a - mean_b))
        / ops.exp(log_var_b)
        - 1.0,
        axis=-1,
    )


def gaussian_w2(mean_a, log_var_a, mean_b, log_var_b):
    """Squared 2-Wasserstein distance of two diagonal Gaussians, per sample.

    W2^2 = ||mu_a - mu_b||^2 + ||sigma_a - sigma_b||^2. Unlike the KL it
    does not divide by the variances, so it stays bounded as posteriors
    sharpen.
    """
    sigma_a = ops.exp(0.5 * clip_log_var(log_var_a))
    sigma_b = ops.exp(0.5 * clip_log_var(log_var_b))
    return ops.sum(
        ops.square(mean_a - mean_b) + ops.square(sigma_a - sigma_b), axis=-1
    )


def flat(v):
    """`(B, ...)` to `(B, D)`."""
    return ops.reshape(v, (ops.shape(v)[0], -1))


def flat_norm(delta, norm):
    rows = flat(delta)
    if norm == 2:
        return ops.sqrt(ops.sum(ops.square(rows), axis=-1))
    return ops.max(ops.abs(rows), axis=-1)


def per_sample(v, like):
    """Reshapes `(B,)` to broadcast against `like` `(B, H, W, C)`."""
    return ops.reshape(v, (-1,) + (1,) * (len(like.shape) - 1))


def unit(direction, norm):
    """Steepest-ascent step of unit `norm` for a gradient `direction`."""
    if norm == np.inf:
        return ops.sign(direction)
    n = ops.maximum(flat_norm(direction, 2), 1e-12)
    return direction / per_sample(n, direction)


def fit_to_budget(x, delta, eps, norm, clip_min, clip_max, grow=False):
    """Moves `x + delta` into the box and the eps-ball of `norm` around `x`.

    Linf: clips delta to [-eps, eps], then `x + delta` to the box (the exact
    projection). L2: returns `clip(x + t * delta) - x` for the largest
    t in (0, 1] (the exact Euclidean projection onto the ball-box
    intersection: coordinate-wise the KKT solution is a clipped scaling of
    delta) or, with `grow`, the largest t >= 0, which stretches the
    direction until the clipped perturbation has norm eps wherever the box
    allows. t comes from a monotone fixed-point iteration on the set of
    saturated coordinates (every iterate feasible; exact once that set
    stops growing, in a few rounds).

    Args:
        x: clean images `(B, H, W, C)` inside the box.
        delta: perturbations of the same shape.
        eps: scalar budget (a tensor keeps one trace for every value).
        norm: 2 or np.inf.
        clip_min, clip_max: the box.
        grow: stretch L2 perturbations to the full budget.

    Returns:
        The new perturbation, `x + result` inside the box and the ball.
    """
    if norm == np.inf:
        # minimum/maximum, not clip: eps may be a tensor per image.
        delta = ops.minimum(ops.maximum(delta, -eps), eps)
        return ops.clip(x + delta, clip_min, clip_max) - x
    y, xf = flat(delta), flat(x)
    room_up, room_down = clip_max - xf, xf - clip_min  # >= 0
    room = ops.where(y > 0, room_up, room_down)  # (B, D)
    size = ops.abs(y)
    size2, room2 = ops.square(size), ops.square(room)
    length = ops.sqrt(ops.sum(size2, axis=-1, keepdims=True))
    # Never clipped beyond t = eps / |y|: a feasible start.
    t = eps / ops.maximum(length, 1e-30)
    if grow:
        # Every coordinate saturates at t = room / size.
        t_high = ops.max(
            ops.where(size > 0, room / ops.maximum(size, 1e-30), 0.0),
            axis=-1, keepdims=True,
        )
    else:
        t_high = ops.ones_like(t)
    t = ops.minimum(t, t_high)
    for _ in range(_FIT_ROUNDS):
        # With the coordinates saturated at t held saturated, |clip(x + s y)
        # - x|^2 <= R + s^2 S for s >= t; solving R + s^2 S = eps^2 gives a
        # feasible s >= t. The sequence only grows and is exact once the
        # saturated set stops growing.
        saturated = t * size >= room
        fixed = ops.sum(ops.where(saturated, room2, 0.0), -1, keepdims=True)
        free = ops.sum(ops.where(saturated, 0.0, size2), -1, keepdims=True)
        t_next = ops.sqrt(
            ops.maximum(eps**2 - fixed, 0.0) / ops.maximum(free, 1e-30)
        )
        t = ops.where(
            free > 0, ops.maximum(t, ops.minimum(t_next, t_high)), t_high
        )
    t = ops.where(length > 0, t, 0.0)
    moved = ops.clip(xf + t * y, clip_min, clip_max) - xf
    return ops.reshape(moved, ops.shape(x))


def pgd_start(x, eps, norm, random_init, seed):
    """PGD's starting perturbation: tiny, or uniform in the ball."""
    shape = ops.shape(x)
    if norm == np.inf:
        scale = eps if random_init else 1e-3 * eps
        return keras.random.uniform(shape, -scale, scale, seed=seed)
    direction = unit(keras.random.normal(shape, seed=seed), 2)
    if not random_init:
        return 1e-3 * eps * direction
    # Uniform in the L2 ball: radius ~ eps * U^(1/D).
    dim = int(np.prod(shape[1:]))
    radius = eps * keras.random.uniform((shape[0],), seed=seed) ** (
        1.0 / dim
    )
    return direction * per_sample(radius, x)
