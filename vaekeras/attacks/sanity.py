"""The protocol's sanity checks: is the evaluation strong and unmasked?

Each check returns `{"name", "passed", "detail"}`; a failed check means
the numbers are a lower bound on the damage of unknown quality, not that
the model is robust (Carlini et al. 2019, sections 5.2-5.5; Athalye et
al. 2018 on gradient masking):

- `finite_gradients`: the damage's input gradients (through the defense
  when the attack goes through it) are finite and non-zero for every
  image; zero gradients (rounding, thresholds, saturation) defeat every
  gradient attack and make a model look robust when it is not.
- `gradients_match_finite_differences`: along random directions the
  derivative the gradient gives matches central finite differences of
  the damage itself; a gradient that is shattered (an honest forward
  pass with a misleading backward one) or noisy fails it.
- `beats_random`: at every budget the best gradient attack does at least
  the damage of the best of several random directions per image.
- `monotone_in_eps`: the mean worst damage does not fall as the budget
  grows.
- `unbounded_budget`: at a budget that covers the whole pixel box, the
  damage attack does at least the damage of replacing each image by
  another one (an attack that may change every pixel can always do that).
- `converged`: at every budget, another optimiser (plain PGD with twice
  the iterations, two runs of another seed; one run through a randomized
  defense, where each iteration costs a chain) raises the mean worst
  damage by at most the tolerance.
- `gradient_free_not_stronger`: at every budget, the black-box attack
  (queries only) never beats the best gradient attack's mean damage by
  more than the tolerance.

`reliability` turns them into the protocol's verdict: reliable only when
every check passed.
"""

import functools
import time

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
# Random directions per image, the finite-difference steps (L2, in pixel
# units; smaller ones tried only while the gap stays too wide) and the
# largest median relative gap between the two derivatives of the
# finite-difference check.
DIRECTIONS = 4
FD_STEPS = (1e-2, 1e-3, 3e-4)
FD_TOLERANCE = 0.2
# Raised when a check's verdict on the same evaluation can change; a
# study whose cached verdicts it changes records it with its settings.
CHECKS_VERSION = 2
# The checks that judge the model's gradients alone, not the result: an
# adaptive round that adds attack runs keeps them instead of rerunning.
MODEL_CHECKS = (
    "finite_gradients", "gradients_match_finite_differences",
    "unbounded_budget",
)


def run_checks(result, runner, scorer, x, previous=()):
    """Every applicable check, in the module docstring's order.

    Which members a check compares comes from their registered specs:
    `needs_gradients`, and the roles `baseline`, `damage` and
    `gradient_free`.

    Args:
        result, runner, scorer, x: the evaluation being checked.
        previous: the checks of an earlier round on the same model and
            images; its `MODEL_CHECKS` are kept, not rerun.

    Returns:
        A list of `{"name", "passed", "detail", "seconds"}` (a kept
        check keeps the seconds of the round that ran it).
    """
    kept = {c["name"]: c for c in previous if c["name"] in MODEL_CHECKS}
    return [
        kept[name] if name in kept else _timed(run)
        for name, run in _planned(result, runner, scorer, x)
    ]


def _planned(result, runner, scorer, x):
    """`(name, run)` for every check that applies to `result`, in order."""
    planned = [
        ("finite_gradients", lambda: finite_gradients(runner, x)),
        (
            "gradients_match_finite_differences",
            lambda: gradients_match_finite_differences(runner, x),
        ),
    ]
    members = list(result["attacks"])
    gradient = registry.gradient_members(members)
    baseline = registry.with_role("baseline", members)
    if gradient and baseline:
        planned.append(("beats_random", lambda: beats_random(
            result, gradient, baseline
        )))
    planned.append(("monotone_in_eps", lambda: monotone_in_eps(result)))
    damage_members = registry.with_role("damage", members)
    if damage_members:
        planned.append(("unbounded_budget", lambda: unbounded_budget(
            runner, scorer, x, damage_members[0]
        )))
        planned.append(("converged", lambda: converged(
            result, runner, scorer, x, _other_optimiser(damage_members)
        )))
    free = registry.with_role("gradient_free", members)
    if gradient and free:
        planned.append(("gradient_free_not_stronger", lambda: (
            gradient_free_not_stronger(result, gradient, free)
        )))
    return planned


def _timed(run):
    """The check `run()` returns, with the `seconds` it took."""
    start = time.perf_counter()
    found = run()
    found["seconds"] = round(time.perf_counter() - start, 3)
    return found


def _other_optimiser(damage_members):
    """A damage attack that is not a member, to judge convergence by
    another optimiser (the first member when every one is)."""
    others = [
        n for n in registry.with_role("damage", registry.names())
        if n not in damage_members
    ]
    return (others or damage_members)[0]


def reliability(checks):
    """`(reliable, reason)`: every check passed, or which did not."""
    failed = [c["name"] for c in checks if not c["passed"]]
    if not failed:
        return True, "every check passed"
    return False, "failed: " + ", ".join(failed)


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


def _gradient_function(runner):
    """The compiled `(x_eval, x, *draws) -> (loss, grad)` of the damage
    the gradient attacks ascend (through the defense when they go
    through it)."""
    adapter = runner.adapter
    if runner.adaptive:
        defense = runner.defense
        return adapter.function(
            functools.partial(_defended_damage_gradient, defense=defense),
            ("defended_damage_gradient", defense.attack_key()),
        )
    return adapter.function(_damage_gradient, "damage_gradient")


def _batches(runner, x, x_eval, seed):
    """`(x_eval, x, *draws)` per batch; the defense's draws fixed by
    `seed`, so every call on a batch sees one deterministic function."""
    generator = keras.random.SeedGenerator(seed)
    for i in range(0, len(x), runner.batch_size):
        xb = ops.convert_to_tensor(x[i:i + runner.batch_size])
        eb = ops.convert_to_tensor(x_eval[i:i + runner.batch_size])
        draws = ()
        if runner.adaptive:
            z_mean, _ = runner.adapter.encode(xb)
            draws = runner.defense.attack_draws(
                ops.shape(xb)[0], ops.shape(z_mean)[1], 1, generator
            )
            draws = tuple(ops.take(t, 0, axis=1) for t in draws)
        yield slice(i, i + runner.batch_size), eb, xb, draws


def _near(x, seed):
    """x plus a tiny seeded perturbation (at x itself a perfect
    reconstruction would have a zero gradient)."""
    rng = np.random.default_rng(seed)
    return np.clip(
        x + 1e-3 * rng.standard_normal(x.shape).astype("float32"), 0.0, 1.0
    )


def input_gradients(runner, x, seed=0):
    """The damage's gradients next to x (`_near`), through the defense
    when the attack goes through it; numpy `(B, ...)`."""
    fn = _gradient_function(runner)
    grads = [
        backend.as_numpy(fn(eb, xb, *draws)[1])
        for _, eb, xb, draws in _batches(runner, x, _near(x, seed), seed)
    ]
    return np.concatenate(grads).reshape(x.shape)


def directional_derivatives(runner, x, directions=DIRECTIONS, step=FD_STEPS[0],
                            seed=0):
    """Each image's derivative along random unit directions, twice: from
    the gradient the attacks follow, and by finite differences of the
    damage itself.

    Of the central, forward and backward differences, the one nearest the
    gradient's derivative is kept: a jump of the damage within one step
    of the point (a Markov chain's accept-or-reject flipping) spoils the
    central and one one-sided difference, never both sides, while a
    shattered gradient is far from all three.

    Returns:
        `(analytic, finite)`, each `(B, directions)` (float64).
    """
    fn = _gradient_function(runner)
    rng = np.random.default_rng(seed + 1)
    # Far enough inside the box that x_eval +- step v (|v_i| <= 1) stays
    # in it: a model may refuse pixels outside [0, 1].
    x_eval = np.clip(_near(x, seed), step, 1.0 - step)
    analytic = np.zeros((len(x), directions))
    finite = np.zeros((len(x), directions))
    for part, eb, xb, draws in _batches(runner, x, x_eval, seed):
        here, grad = fn(eb, xb, *draws)
        here = backend.as_numpy(here).astype("float64")
        grad = backend.as_numpy(grad).reshape(len(xb), -1).astype("float64")
        for k in range(directions):
            v = rng.standard_normal(grad.shape)
            v /= np.linalg.norm(v, axis=-1, keepdims=True)
            shift = (step * v).reshape(tuple(ops.shape(eb))).astype("float32")
            plus = backend.as_numpy(fn(eb + shift, xb, *draws)[0])
            minus = backend.as_numpy(fn(eb - shift, xb, *draws)[0])
            analytic[part, k] = np.sum(grad * v, axis=-1)
            finite[part, k] = _nearest(analytic[part, k], np.stack([
                (plus.astype("float64") - minus) / (2 * step),
                (plus - here) / step,
                (here - minus) / step,
            ]))
    return analytic, finite


def _nearest(target, candidates):
    """Per column, the row of `candidates` `(K, B)` nearest `target`."""
    best = np.argmin(np.abs(candidates - target), axis=0)
    return np.take_along_axis(candidates, best[None], axis=0)[0]


def gradients_match_finite_differences(runner, x):
    """Shattered gradients (a forward pass that is honest, a gradient
    that is not) show as derivatives the damage itself does not have.

    A derivative is the limit of finite differences: a damage that is
    rough at the first step (a Markov chain's accept-or-reject through a
    test-time defense, chaotic over its steps) is honest when a smaller
    step (`FD_STEPS`) closes the gap; a shattered gradient matches at no
    step. A jump within one step of the point is stepped around
    (`directional_derivatives`): a piecewise smooth damage's gradient is
    its derivative wherever it has one.
    """
    gaps = []
    for step in FD_STEPS:
        analytic, finite = directional_derivatives(runner, x, step=step)
        scale = np.maximum(
            np.linalg.norm(analytic, axis=-1),
            np.linalg.norm(finite, axis=-1),
        )
        error = np.linalg.norm(analytic - finite, axis=-1) / np.maximum(
            scale, 1e-12
        )
        gaps.append((float(np.median(error)), step))
        if gaps[-1][0] <= FD_TOLERANCE:
            break
    median, step = min(gaps)
    passed = median <= FD_TOLERANCE
    detail = (
        f"median relative gap between the gradient's and finite "
        f"differences' derivatives along {analytic.shape[1]} random "
        f"directions: {median:.3g} at step {step:g} (tolerance "
        f"{FD_TOLERANCE:g}"
        + (f"; steps tried {', '.join(f'{s:g}' for _, s in gaps)})"
           if len(gaps) > 1 else ")")
    )
    if not passed:
        detail += (
            ": the gradient the attacks follow is not the damage's "
            "(shattered or stochastic gradients?)"
        )
    return _check("gradients_match_finite_differences", passed, detail)


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
    attacked = scorer.error(x_adv, x) - scorer.clean_mse[:len(x)]
    swapped = scorer.error(np.roll(x, 1, axis=0), x) - scorer.clean_mse[
        :len(x)
    ]
    a, s = float(np.mean(attacked)), float(np.mean(swapped))
    passed = len(x) < 2 or a + ATOL >= s
    return _check(
        "unbounded_budget", passed,
        f"damage PGD at eps {eps:.3g} (the whole box): {a:.4g}; replacing "
        f"each image by another: {s:.4g}",
    )


def converged(result, runner, scorer, x, member="pgd_damage"):
    """At every budget, another optimiser (`member`, twice the iterations,
    two runs of another seed: from next to x and from a random point)
    must not find more than the tolerance above the ensemble's mean worst
    damage.

    Through a randomized defense (`runner.adaptive`) the challenger runs
    once, from next to x: every iteration there costs a Markov chain,
    and the protocol's adaptive rounds double the iterations of both the
    attack and this check until it passes.
    """
    eps_list = result["eps"]
    n_runs = 1 if runner.adaptive else 2
    runs = runner.run(
        member, x, eps_list, pgd_iter=2 * runner.pgd_iter, restarts=n_runs,
        seed=runner.seed + 104729,
    )
    tolerance = result["settings"]["tolerance"]
    failed, gains = [], []
    for e, eps in enumerate(eps_list):
        worst = result["worst_damage"][e]
        before = float(np.mean(worst))
        other = np.max([scorer.damage(run[e]) for run in runs], axis=0)
        after = float(np.mean(np.maximum(worst, other)))
        gains.append(100 * (after - before) / max(abs(before), ATOL))
        if after > before * (1.0 + tolerance) + ATOL:
            failed.append(f"eps {eps:g}: {before:.4g} -> {after:.4g}")
    detail = (
        f"{member} with {2 * runner.pgd_iter} iterations "
        f"({'one run' if n_runs == 1 else 'two runs'}) raises "
        f"the mean worst damage by at most "
        f"{max(gains):+.1f}% (tolerance {100 * tolerance:.0f}%)"
    )
    if failed:
        detail += ": not converged at " + "; ".join(failed)
    return _check("converged", not failed, detail)


def gradient_free_not_stronger(result, gradient, free=("square",)):
    """At every budget, no attack without gradients beats the best
    gradient attack's mean damage by more than the tolerance: where it
    does, the gradients mislead (shattered, stochastic or masked)."""
    attacks = result["attacks"]
    tolerance = result["settings"]["tolerance"]
    best = _best(attacks, gradient)
    name = max(free, key=lambda n: np.sum(attacks[n]["damage"]))
    free = _best(attacks, free)
    failed = [
        f"eps {e:g}: {f:.3g} > {b:.3g}"
        for e, b, f in zip(result["eps"], best, free)
        if f > b * (1.0 + tolerance) + ATOL
    ]
    detail = (
        "the gradient attacks are at least as strong as the gradient-free "
        "ones at every eps" if not failed else
        f"the gradient-free attack ({name}) is stronger (gradient "
        "masking?): " + "; ".join(failed)
    )
    return _check("gradient_free_not_stronger", not failed, detail)
