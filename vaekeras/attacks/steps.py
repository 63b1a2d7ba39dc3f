"""The compiled steps every attack runs, in `keras.ops` on a model view.

Each takes a `vaekeras.latent` view (the model on the weights passed at
call time) and tensors, so one trace serves every budget and step size:
the per-sample objectives, one projected gradient step and the loop of
them, one step along an eigenvector of the pullback metric, and the
random baseline's fit. `worst_case_inputs` runs the same loop inside a
training step (the adversarial VAE's inner maximisation).
"""

import numpy as np
from keras import ops

from vaekeras import geometry
from vaekeras import latent
from vaekeras.attacks import budget as ball

OBJECTIVES = ("kl", "w2", "mean", "reconstruction", "damage")


def damage(decoded, x):
    """Per-sample squared error of a reconstruction against the clean x."""
    return ops.sum(ops.square(ball.flat(decoded - x)), axis=-1)


def attack_objective(view, name, x_adv, args):
    """Per-sample objective of the attack called `name`: one of
    `OBJECTIVES`, `"approach"` (minus the symmetric KL to the target
    posterior in `args`: APGD's latent warm start) or `"targeted"`."""
    mean, log_var = view.encode(x_adv)
    if name == "damage":
        (x,) = args
        return damage(view.decode(mean), x)
    if name == "mean":
        z_mean, _ = args
        return ops.sum(ops.square(mean - z_mean), axis=-1)
    if name == "reconstruction":
        z_mean, _ = args
        change = view.decode(mean) - view.decode(z_mean)
        return ops.sum(ops.square(ball.flat(change)), axis=-1)
    if name == "kl":
        return ball.gaussian_kl(mean, log_var, *args)
    if name == "w2":
        return ball.gaussian_w2(mean, log_var, *args)
    if name == "approach":
        # Ascended: the posterior moves toward the target's.
        return -ball.symmetric_kl(mean, log_var, *args)
    x, target_mean, target_log_var, reg = args  # "targeted"
    distance = ball.symmetric_kl(mean, log_var, target_mean, target_log_var)
    # Smoothed at 0, where the gradient of the norm is undefined.
    penalty = ops.sqrt(
        ops.sum(ops.square(ball.flat(x_adv - x)), axis=-1) + 1e-12
    )
    return distance + reg * penalty


def gradient_step(
    view, x, x_adv, best, best_loss, eps, step, loss_fn, *, norm, ascend,
    clip_min, clip_max,
):
    """One projected step on the per-sample `loss_fn`; keeps the best
    iterate seen per sample."""
    loss, grad = view.value_and_grad(loss_fn, x_adv)
    improved = loss > best_loss if ascend else loss < best_loss
    best = ops.where(ball.per_sample(improved, x), x_adv, best)
    best_loss = ops.where(improved, loss, best_loss)
    sign = 1.0 if ascend else -1.0
    delta = ball.fit_to_budget(
        x, x_adv - x + sign * step * ball.unit(grad, norm), eps, norm,
        clip_min, clip_max,
    )
    return ops.clip(x + delta, clip_min, clip_max), best, best_loss


def projected_loop(
    view, x, start, eps, step, passes, loss_at, *, ascend, **kw
):
    """`passes` projected steps from `start` on `loss_at(i, x_adv)` (the
    per-sample loss of pass i); the best iterate.

    The last pass only scores the final iterate.
    """
    worst = -np.inf if ascend else np.inf
    best_loss = ops.full((ops.shape(x)[0],), worst, "float32")

    def body(i, state):
        x_adv, best, best_loss = state
        return gradient_step(
            view, x, x_adv, best, best_loss, eps, step,
            lambda x_: loss_at(i, x_), ascend=ascend, **kw,
        )

    _, best, _ = ops.fori_loop(0, passes, body, (start, start, best_loss))
    return best


def gradient_loop(
    view, x, start, eps, step, passes, *args, objective, ascend, **kw
):
    """`projected_loop` on the objective called `objective`."""
    return projected_loop(
        view, x, start, eps, step, passes,
        lambda i, x_: attack_objective(view, objective, x_, args),
        ascend=ascend, **kw,
    )


def eigen_step(
    view, x, x_adv, z_mean, z_log_var, radius, step, *, kind, direction,
    norm, objective, clip_min, clip_max, method, lanczos_iterations,
):
    """Moves along the `direction`-th eigenvector, more damaging sign."""
    _, vectors = geometry.spectrum_in_view(
        view, x_adv, kind, direction, method=method,
        iterations=lanczos_iterations,
    )
    u = step * ball.unit(ops.reshape(vectors[:, :, -1], ops.shape(x)), norm)
    # The sign is chosen on the two steps clipped into the box; only the
    # chosen one is then fitted to the ball.
    args = (x,) if objective == "damage" else (z_mean, z_log_var)
    plus, minus = (
        attack_objective(
            view, objective, ops.clip(x_adv + s * u, clip_min, clip_max),
            args,
        )
        for s in (1.0, -1.0)
    )
    sign = ops.where(ball.per_sample(plus >= minus, x), 1.0, -1.0)
    return ops.clip(x + ball.fit_to_budget(
        x, x_adv - x + sign * u, radius, norm, clip_min, clip_max, grow=True
    ), clip_min, clip_max)


def random_fit(x, delta, eps, norm, clip_min, clip_max):
    return ops.clip(
        x + ball.fit_to_budget(
            x, delta, eps, norm, clip_min, clip_max, grow=True
        ),
        clip_min, clip_max,
    )


def worst_case_inputs(
    encoder, x, z_mean, z_log_var, eps, norm=2, steps=1, seed=None,
    clip_min=0.0, clip_max=1.0, objective="kl",
):
    """`LatentPGD` as a traceable function for training steps.

    The same projected steps as `LatentPGD` (`steps` of them, step size
    2.5 * eps / steps, best iterate kept) on the latent divergence
    `objective` (`"kl"` or `"w2"`) from the clean encoding, written to
    run inside a compiled `train_step` on every backend: on the live
    weights, with no compilation of its own. The result carries no
    gradient.

    Args:
        encoder: Keras model `x -> [z_mean, z_log_var]`.
        x: images `(B, H, W, C)`.
        z_mean, z_log_var: the clean encoding of `x`, each `(B, d)`.
        eps: L2 or Linf budget (a Python number > 0).
        norm: 2 or np.inf.
        steps: PGD steps >= 1.
        seed: a `keras.random.SeedGenerator` (or int) for the start.
        clip_min, clip_max: pixel range.
        objective: `"kl"` (KL(q(z|x_adv) || q(z|x))) or `"w2"` (the
            squared 2-Wasserstein distance of the two posteriors).

    Returns:
        `x_adv` `(B, H, W, C)`, within eps of `x`, with the divergence as
        large as the steps found.

    Examples:
        >>> x_adv = worst_case_inputs(encoder, x, *encoder(x), eps=1.0)
    """
    view = latent.LatentModel.of(encoder).live_view()
    start = ops.clip(
        x + ball.pgd_start(x, eps, norm, False, seed), clip_min, clip_max
    )
    x_adv = gradient_loop(
        view, x, start, eps, 2.5 * eps / steps, steps + 1,
        ops.stop_gradient(z_mean), ops.stop_gradient(z_log_var),
        objective=objective, norm=norm, ascend=True, clip_min=clip_min,
        clip_max=clip_max,
    )
    return ops.stop_gradient(x_adv)
