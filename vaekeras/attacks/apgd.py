"""Auto-PGD: projected ascent with momentum and its own step schedule.

Croce & Hein (2020), "Reliable evaluation of adversarial robustness with
an ensemble of diverse parameter-free attacks", section 3: the step
starts at 2 eps; at checkpoints w_j (p_0 = 0, p_1 = 0.22,
p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) of the iterations) it
is halved, and the search restarts from the best point, for each image
whose objective rose in fewer than 75% of the steps since the last
checkpoint, or whose step and best value did not change since then.
Every step mixes the projected gradient step with the last move
(momentum 0.75).

The loop is written in `keras.ops` and compiled once per model and
iteration count. Budgets travel per image, so one call attacks every
budget of a curve at once (`tiled`): the batch holds each image once per
budget.
"""

import functools
import math

import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras.attacks import budget as ball
from vaekeras.attacks import steps

MOMENTUM = 0.75
# A step is kept where the objective rose in at least this share of the
# steps since the last checkpoint.
RHO = 0.75


def checkpoints(iterations):
    """AutoAttack's checkpoints for `iterations` steps (sorted ints > 0)."""
    fractions = [0.0, 0.22]
    while fractions[-1] < 1.0:
        gap = fractions[-1] - fractions[-2]
        fractions.append(fractions[-1] + max(gap - 0.03, 0.06))
    points = sorted({
        math.ceil(f * iterations - 1e-9) for f in fractions[1:] if f <= 1.0
    })
    return [p for p in points if 0 < p < iterations]


def _schedule(iterations):
    """Per iteration: whether it is a checkpoint, and the steps since the
    previous one (numpy, the loop's lookup tables)."""
    is_checkpoint = np.zeros(iterations + 1, "bool")
    span = np.ones(iterations + 1, "float32")
    previous = 0
    for point in checkpoints(iterations):
        is_checkpoint[point] = True
        span[point] = point - previous
        previous = point
    return is_checkpoint, span


def project(x, candidate, eps, norm, clip_min, clip_max):
    """`candidate` moved into each image's ball (eps `(B,)`) and the box."""
    if norm == 2:
        radius = ops.reshape(eps, (-1, 1))
    else:
        radius = ball.per_sample(eps, x)
    delta = ball.fit_to_budget(
        x, candidate - x, radius, norm, clip_min, clip_max
    )
    return ops.clip(x + delta, clip_min, clip_max)


def _step(view, x, i, state, loss_at, tables, eps, *, norm, clip_min,
          clip_max):
    """One APGD iteration: score x_i, update the best point and the step
    at a checkpoint, then move."""
    x_cur, x_prev, best, best_grad, best_loss, last_loss, step, rises, \
        step_mark, best_mark = state
    loss, grad = view.value_and_grad(lambda x_: loss_at(i, x_), x_cur)
    improved = loss > best_loss
    per_image = functools.partial(ball.per_sample, like=x)
    best = ops.where(per_image(improved), x_cur, best)
    best_grad = ops.where(per_image(improved), grad, best_grad)
    best_loss = ops.where(improved, loss, best_loss)
    rises = rises + ops.cast(loss > last_loss, "float32")
    is_checkpoint, span = (ops.take(t, i) for t in tables)
    stalled = ops.logical_or(
        rises < RHO * span,
        ops.logical_and(step == step_mark, best_loss == best_mark),
    )
    halve = ops.logical_and(is_checkpoint, stalled)
    step = ops.where(halve, 0.5 * step, step)
    x_cur = ops.where(per_image(halve), best, x_cur)
    x_prev = ops.where(per_image(halve), best, x_prev)
    grad = ops.where(per_image(halve), best_grad, grad)
    step_mark = ops.where(is_checkpoint, step, step_mark)
    best_mark = ops.where(is_checkpoint, best_loss, best_mark)
    rises = ops.where(is_checkpoint, 0.0, rises)
    move = project(
        x, x_cur + per_image(step) * ball.unit(grad, norm), eps, norm,
        clip_min, clip_max,
    )
    weight = ops.where(i == 0, 1.0, MOMENTUM)
    x_next = project(
        x, x_cur + weight * (move - x_cur) + (1.0 - weight) * (
            x_cur - x_prev
        ), eps, norm, clip_min, clip_max,
    )
    return (x_next, x_cur, best, best_grad, best_loss, loss, step, rises,
            step_mark, best_mark)


def apgd_loop(view, x, start, eps, loss_at, *, iterations, norm, clip_min,
              clip_max):
    """`iterations` APGD steps from `start` on the per-image objective
    `loss_at(i, x_adv)` (pass i); the best point per image.

    Args:
        view: the model view of a compiled function.
        x: clean images `(B, H, W, C)`.
        start: the first iterate, inside the budget.
        eps: each image's budget `(B,)`.
        loss_at: `(i, x_adv) -> (B,)`, ascended.
        iterations: steps (a Python int: the schedule is static).
        norm, clip_min, clip_max: the ball and the box.
    """
    tables = tuple(ops.convert_to_tensor(t) for t in _schedule(iterations))
    batch = ops.shape(x)[0]
    low = ops.full((batch,), -np.inf, "float32")
    state = (
        start, start, start, ops.zeros_like(start), low, low,
        2.0 * eps, ops.zeros((batch,), "float32"), 2.0 * eps, low,
    )
    body = functools.partial(
        _step, view, x, loss_at=loss_at, tables=tables, eps=eps, norm=norm,
        clip_min=clip_min, clip_max=clip_max,
    )
    # The last pass only scores the final iterate.
    state = ops.fori_loop(0, iterations + 1, body, state)
    return state[2]


def _objective_loop(view, x, start, eps, *args, objective, **kw):
    return apgd_loop(
        view, x, start, eps,
        lambda i, x_: steps.attack_objective(view, objective, x_, args),
        **kw,
    )


def run(adapter, x, start, eps, args, *, objective, iterations, norm,
        batch_size, clip_min=0.0, clip_max=1.0):
    """APGD on `steps.attack_objective(objective)` for numpy batches.

    Args:
        adapter: the model's `vaekeras.latent.LatentModel`.
        x: clean images (numpy, `(N, ...)`).
        start: first iterates, the shape of `x`.
        eps: per-image budgets `(N,)`.
        args: the objective's per-image arrays (each `(N, ...)`).
        objective: a name of `steps.OBJECTIVES` (ascended).
        iterations: APGD steps.
        norm: 2 or np.inf.
        batch_size: images per compiled call.

    Returns:
        The best point per image (numpy, the shape of `x`).
    """
    fn = adapter.function(
        functools.partial(
            _objective_loop, objective=objective, iterations=iterations,
            norm=norm, clip_min=clip_min, clip_max=clip_max,
        ),
        ("apgd", objective, iterations, norm, clip_min, clip_max),
    )
    eps = np.asarray(eps, "float32")
    parts = []
    for i in range(0, len(x), batch_size):
        part = slice(i, i + batch_size)
        parts.append(backend.as_numpy(fn(
            x[part], start[part], eps[part], *(a[part] for a in args)
        )))
    return np.concatenate(parts).reshape(x.shape)


def tiled(x, eps_list):
    """Each image once per budget (budget-major) and its budget."""
    tiles = np.concatenate([x] * len(eps_list))
    eps = np.repeat(np.asarray(eps_list, "float32"), len(x))
    return tiles, eps


def untiled(x_adv, n_eps):
    """`tiled`'s inverse: one array per budget."""
    return list(np.split(x_adv, n_eps))
