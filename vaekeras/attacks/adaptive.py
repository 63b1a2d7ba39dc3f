"""Attacks on a defended model: PGD through the defense, and SPSA.

`adaptive_damage_pgd` differentiates the reconstruction error through a
randomized defense's own computation (an MCMC chain), averaging each
gradient over fresh draws of the defense's randomness (EOT). `spsa` needs
no gradient at all: it estimates one from paired random perturbations of
the defended reconstruction (Uesato et al., 2018, "Adversarial risk and
the dangers of evaluating against weak attacks"), so a defense that hides
its gradient (masking) cannot hide from it.
"""

import functools

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras.attacks import budget as ball
from vaekeras.attacks import steps


def _eot_damage_loop(
    view, x, start, eps, step, passes, noise, momenta, uniforms, *,
    defense, samples, norm, clip_min, clip_max,
):
    """Projected ascent on the defended damage, EOT over `samples` draws.

    Round r = i * samples + s of the draws (batch first) feeds sample s of
    pass i, so every gradient sees fresh randomness.
    """
    def loss_at(i, x_adv):
        total = 0.0
        for s in range(samples):
            draws = tuple(
                ops.take(t, i * samples + s, axis=1)
                for t in (noise, momenta, uniforms)
            )
            z, _ = defense.attack_encode(view, x_adv, draws)
            total = total + steps.damage(view.decode(z), x)
        return total / samples

    return steps.projected_loop(
        view, x, start, eps, step, passes, loss_at, ascend=True, norm=norm,
        clip_min=clip_min, clip_max=clip_max,
    )


def adaptive_damage_pgd(
    adapter, defense, x, eps_list, norm, iterations, samples, random_init,
    seed, batch_size, clip_min=0.0, clip_max=1.0,
):
    """PGD on the reconstruction error through `defense`, one array per eps.

    Args:
        adapter: the model's `vaekeras.latent.LatentModel`.
        defense: offers `attack_key()`, `attack_draws(batch, d, rounds,
            seed_generator)` and `attack_encode(view, x, draws)`.
        x: clean images (numpy).
        eps_list: budgets.
        norm: 2 or np.inf.
        iterations: PGD steps.
        samples: EOT draws per gradient.
        random_init: start uniformly in the ball, else next to x.
        seed: seeds the start and the defense's draws.
        batch_size: images per compiled call.
        clip_min, clip_max: pixel range.

    Returns:
        A list of adversarial image arrays, one per eps.
    """
    fn = adapter.function(
        functools.partial(
            _eot_damage_loop, defense=defense, samples=samples, norm=norm,
            clip_min=clip_min, clip_max=clip_max,
        ),
        ("eot_damage_loop", defense.attack_key(), samples, norm, clip_min,
         clip_max),
    )
    generator = keras.random.SeedGenerator(seed)
    passes = iterations + 1
    out = []
    for eps in eps_list:
        eps_t = ops.convert_to_tensor(eps, "float32")
        step = ops.convert_to_tensor(2.5 * eps / iterations, "float32")
        parts = []
        for i in range(0, len(x), batch_size):
            xb = ops.convert_to_tensor(x[i:i + batch_size])
            z_mean, _ = adapter.encode(xb)
            draws = defense.attack_draws(
                ops.shape(xb)[0], ops.shape(z_mean)[1], passes * samples,
                generator,
            )
            start = ops.clip(
                xb + ball.pgd_start(xb, eps, norm, random_init, generator),
                clip_min, clip_max,
            )
            parts.append(backend.as_numpy(fn(
                xb, start, eps_t, step,
                ops.convert_to_tensor(passes, "int32"), *draws,
            )))
        out.append(np.concatenate(parts).reshape(x.shape))
    return out


def spsa(
    scorer, x, eps, norm, iterations, samples, seed, clip_min=0.0,
    clip_max=1.0, delta=0.01,
):
    """Gradient-free projected ascent on the (defended) damage.

    Each iteration draws `samples` Rademacher directions v per image,
    queries the damage at x_adv +- delta * v (through the scorer, so
    through the defense), and steps along the normalised estimate
    sum_k (f(+) - f(-)) v_k, projected onto the ball and the box; the best
    iterate per image is kept.

    Args:
        scorer: offers `damage(x_adv)` per image (`protocol.Scorer`).
        x: clean images (numpy).
        eps: the budget.
        norm: 2 or np.inf.
        iterations: steps.
        samples: direction pairs per step.
        seed: seeds the start and the directions.
        clip_min, clip_max: pixel range.
        delta: per-pixel size of the probing perturbation.

    Returns:
        Adversarial images, the shape of `x`.
    """
    rng = np.random.default_rng(seed)
    shape = x.shape
    step = 2.5 * eps / iterations

    def project(candidate):
        fitted = ball.fit_to_budget(
            ops.convert_to_tensor(x), ops.convert_to_tensor(candidate - x),
            eps, norm, clip_min, clip_max,
        )
        return np.clip(x + backend.as_numpy(fitted), clip_min, clip_max)

    start = rng.normal(size=shape).astype("float32")
    x_adv = project(x + 1e-3 * eps * start / _norms(start, norm))
    best, best_loss = x_adv, scorer.damage(x_adv)
    for _ in range(iterations):
        signs = rng.choice(
            np.array([-1.0, 1.0], "float32"), size=(samples, *shape)
        )
        probes = np.concatenate([
            np.clip(x_adv + delta * signs, clip_min, clip_max),
            np.clip(x_adv - delta * signs, clip_min, clip_max),
        ]).reshape(2 * samples * len(x), *shape[1:])
        values = _tiled_damage(scorer, probes, samples).reshape(
            2, samples, len(x)
        )
        weights = (values[0] - values[1]).reshape(
            samples, len(x), *([1] * (len(shape) - 1))
        )
        estimate = np.sum(weights * signs, axis=0)
        direction = backend.as_numpy(
            ball.unit(ops.convert_to_tensor(estimate), norm)
        )
        x_adv = project(x_adv + step * direction)
        loss = scorer.damage(x_adv)
        improved = loss > best_loss
        best = np.where(_per_image(improved, x), x_adv, best)
        best_loss = np.where(improved, loss, best_loss)
    return best.astype("float32")


def _tiled_damage(scorer, probes, copies):
    """Damage of probes laid out as `copies` blocks of the clean batch."""
    blocks = len(probes) // len(scorer.x)
    clean = np.tile(scorer.x, (blocks, *([1] * (probes.ndim - 1))))
    return scorer.error(probes, clean) - np.tile(
        scorer.clean_mse, blocks
    )


def _norms(v, norm):
    flat = v.reshape(len(v), -1)
    size = (
        np.linalg.norm(flat, axis=-1) if norm == 2
        else np.abs(flat).max(axis=-1)
    )
    return np.maximum(size, 1e-12).reshape(len(v), *([1] * (v.ndim - 1)))


def _per_image(mask, x):
    return mask.reshape(len(x), *([1] * (x.ndim - 1)))
