"""The protocol's sanity checks: is the evaluation strong and unmasked?

Each check returns `{"name", "passed", "detail"}`; a failed check means
the numbers are a lower bound on the damage of unknown quality, not that
the model is robust (Carlini et al. 2019, sections 5.2-5.5; Athalye et
al. 2018 on gradient masking):

- `finite_gradients`: the damage's input gradients (through the defense
  when the attack goes through it) are finite and non-zero for every
  image; zero gradients (rounding, thresholds, saturation) defeat every
  gradient attack and make a model look robust when it is not.
- `beats_random`: at every budget the best gradient attack does at least
  the damage of random directions.
- `monotone_in_eps`: the mean worst damage does not fall as the budget
  grows.
- `unbounded_budget`: at a budget that covers the whole pixel box, the
  damage PGD does at least the damage of replacing each image by another
  one (an attack that may change every pixel can always do that).
- `converged`: twice the PGD iterations and one more restart (another
  seed) at the middle budget raise the mean worst damage by at most the
  tolerance.
- `gradient_free_not_stronger`: the gradient-free attack never beats the
  best gradient attack's mean damage by more than the tolerance.
"""

import functools

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras.attacks import registry
from vaekeras.attacks import steps

# Absolute slack (damage units: per-pixel MSE) under every relative one,
# so checks on undamaged models do not fail on float noise.
ATOL = 1e-5
# An image whose gradient norm is below this counts as a zero gradient.
ZERO_GRADIENT = 1e-10
# Images used by the whole-box check (its baseline swaps images).
UNBOUNDED_IMAGES = 32


def run_checks(result, runner, scorer, x):
    """Every applicable check, in the module docstring's order.

    Which members a check compares comes from their registered specs:
    `needs_gradients`, and the roles `baseline`, `damage` and
    `gradient_free`.
    """
    out = [finite_gradients(runner, x)]
    members = list(result["attacks"])
    gradient = registry.gradient_members(members)
    baseline = registry.with_role("baseline", members)
    if gradient and baseline:
        out.append(beats_random(result, gradient, baseline))
    out.append(monotone_in_eps(result))
    damage_members = registry.with_role("damage", members)
    if damage_members:
        out.append(unbounded_budget(runner, scorer, x, damage_members[0]))
        out.append(converged(result, runner, scorer, x, damage_members[0]))
    free = registry.with_role("gradient_free", members)
    if gradient and free:
        out.append(gradient_free_not_stronger(result, gradient, free))
    return out


def _check(name, passed, detail):
    return {"name": name, "passed": bool(passed), "detail": detail}


def _damage_gradient(view, x_eval, x):
    return view.value_and_grad(
        lambda x_: steps.damage(view.decode(view.encode(x_)[0]), x), x_eval
    )


def _defended_damage_gradient(view, x_eval, x, *draws, defense):
    def loss(x_):
        z, _ = defense.attack_encode(view, x_, tuple(draws))
        return steps.damage(view.decode(z), x)

    return view.value_and_grad(loss, x_eval)


def input_gradients(runner, x, seed=0):
    """The damage's gradients at x plus a tiny seeded perturbation (at x
    itself a perfect reconstruction would have a zero gradient), through
    the defense when the attack goes through it; numpy `(B, ...)`."""
    rng = np.random.default_rng(seed)
    x_eval = np.clip(
        x + 1e-3 * rng.standard_normal(x.shape).astype("float32"), 0.0, 1.0
    )
    adapter = runner.adapter
    if runner.adaptive:
        defense = runner.defense
        fn = adapter.function(
            functools.partial(_defended_damage_gradient, defense=defense),
            ("defended_damage_gradient", defense.attack_key()),
        )
    else:
        fn = adapter.function(_damage_gradient, "damage_gradient")
    generator = keras.random.SeedGenerator(seed)
    grads = []
    for i in range(0, len(x), runner.batch_size):
        xb = ops.convert_to_tensor(x[i:i + runner.batch_size])
        eb = ops.convert_to_tensor(x_eval[i:i + runner.batch_size])
        if runner.adaptive:
            z_mean, _ = adapter.encode(xb)
            draws = runner.defense.attack_draws(
                ops.shape(xb)[0], ops.shape(z_mean)[1], 1, generator
            )
            draws = tuple(ops.take(t, 0, axis=1) for t in draws)
            _, grad = fn(eb, xb, *draws)
        else:
            _, grad = fn(eb, xb)
        grads.append(backend.as_numpy(grad))
    return np.concatenate(grads).reshape(x.shape)


def finite_gradients(runner, x):
    grads = input_gradients(runner, x).reshape(len(x), -1)
    finite = np.isfinite(grads).all(axis=-1)
    norms = np.linalg.norm(np.where(np.isfinite(grads), grads, 0.0), axis=-1)
    zero = norms <= ZERO_GRADIENT
    passed = finite.all() and not zero.any()
    detail = (
        f"{int((~finite).sum())} of {len(x)} images with a non-finite "
        f"gradient, {int(zero.sum())} with a zero one; median norm "
        f"{float(np.median(norms)):.3g}"
    )
    if not passed:
        detail += (
            ": gradient attacks cannot work here (gradient masking?); the "
            "damage is a weak lower bound"
        )
    return _check("finite_gradients", passed, detail)


def _best(attacks, names):
    """Each budget's largest mean damage among the members `names`."""
    return np.max([attacks[n]["damage"] for n in names], axis=0)


def beats_random(result, gradient, baseline=("random",)):
    attacks = result["attacks"]
    best = _best(attacks, gradient)
    rand = _best(attacks, baseline)
    failed = [
        f"eps {e:g}: {b:.3g} < {r:.3g}"
        for e, b, r in zip(result["eps"], best, rand) if b + ATOL < r
    ]
    detail = (
        "the best gradient attack beats random at every eps" if not failed
        else "random beats every gradient attack at " + "; ".join(failed)
    )
    return _check("beats_random", not failed, detail)


def monotone_in_eps(result):
    means = result["mean_worst_damage"]
    failed = [
        f"{means[i]:.4g} at eps {result['eps'][i]:g} after "
        f"{means[i - 1]:.4g} at {result['eps'][i - 1]:g}"
        for i in range(1, len(means))
        if means[i] + ATOL < means[i - 1] * (1.0 - 0.01)
    ]
    detail = (
        "the mean worst damage grows with eps" if not failed
        else "the damage falls: " + "; ".join(failed)
    )
    return _check("monotone_in_eps", not failed, detail)


def unbounded_budget(runner, scorer, x, member="pgd_damage"):
    x = x[:UNBOUNDED_IMAGES]
    size = int(np.prod(x.shape[1:]))
    eps = float(np.sqrt(size)) if runner.norm == 2 else 1.0
    (x_adv,) = runner.run(member, x, [eps], restarts=1)[0]
    attacked = scorer.mse(scorer.reconstruct(x_adv), x) - scorer.clean_mse[
        :len(x)
    ]
    swapped = scorer.mse(
        scorer.reconstruct(np.roll(x, 1, axis=0)), x
    ) - scorer.clean_mse[:len(x)]
    a, s = float(np.mean(attacked)), float(np.mean(swapped))
    passed = len(x) < 2 or a + ATOL >= s
    return _check(
        "unbounded_budget", passed,
        f"damage PGD at eps {eps:.3g} (the whole box): {a:.4g}; replacing "
        f"each image by another: {s:.4g}",
    )


def converged(result, runner, scorer, x, member="pgd_damage"):
    index = len(result["eps"]) // 2
    eps = result["eps"][index]
    worst = result["worst_damage"][index]
    (x_adv,) = runner.run(
        member, x, [eps], pgd_iter=2 * runner.pgd_iter, restarts=1,
        seed=runner.seed + runner.restarts,
    )[0]
    stronger = np.maximum(worst, scorer.damage(x_adv))
    before, after = float(np.mean(worst)), float(np.mean(stronger))
    tolerance = result["settings"]["tolerance"]
    gain = (after - before) / max(abs(before), ATOL)
    passed = after <= before * (1.0 + tolerance) + ATOL
    return _check(
        "converged", passed,
        f"at eps {eps:g}, {2 * runner.pgd_iter} iterations from a new "
        f"random start raise the mean worst damage from {before:.4g} to "
        f"{after:.4g} ({100 * gain:+.1f}%, tolerance "
        f"{100 * tolerance:.0f}%)",
    )


def gradient_free_not_stronger(result, gradient, free=("spsa",)):
    attacks = result["attacks"]
    tolerance = result["settings"]["tolerance"]
    best = _best(attacks, gradient)
    free = _best(attacks, free)
    failed = [
        f"eps {e:g}: SPSA {f:.3g} > {b:.3g}"
        for e, b, f in zip(result["eps"], best, free)
        if f > b * (1.0 + tolerance) + ATOL
    ]
    detail = (
        "the gradient attacks are at least as strong as SPSA at every eps"
        if not failed else
        "the gradient-free attack is stronger (gradient masking?): "
        + "; ".join(failed)
    )
    return _check("gradient_free_not_stronger", not failed, detail)
