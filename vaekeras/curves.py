"""Robustness curves: damage over a grid of attack budgets, and its area.

One robustness number at one eps says little; a researcher comparing
defenses needs the whole curve of damage against budget, on the same
points, attacks and budgets for every model. `robustness_curve` measures
it for any model that offers `encode`/`reconstruct` (a vaekeras VAE, a
SavedModel, or a test-time defense through `defense=`), and
`area_under_damage` summarises it in one number, in the spirit of
Gondim-Ribeiro et al.'s (2018) area under the distortion curve (AUDDC).

Definitions (per eps, means over the test points):
- `reconstruction_damage`: MSE(dec(mu(x_adv)), x) - MSE(dec(mu(x)), x),
  per pixel: what the attack adds to the clean reconstruction error;
- `latent_kl`: KL(q(z|x_adv) || q(z|x));
- `ssim_damage`: 1 - SSIM(dec(mu(x_adv)), dec(mu(x))).

`area_under_damage` is the mean of the damage over log eps: the trapezoid
integral of damage against log(eps) from the smallest to the largest
budget, divided by log(eps_max / eps_min). A constant curve c has area c;
every decade of budgets weighs the same, so a log-spaced grid's points
weigh equally.
"""

import math

import numpy as np

from vaekeras import attacks

# 8 L2 budgets, log-spaced from 0.1 to 4 (28x28 images in [0, 1]): from
# invisible to clearly visible.
DEFAULT_L2_GRID = tuple(float(f"{e:.4g}") for e in np.geomspace(0.1, 4, 8))
# The Linf grid of the same range of visibility (an L2 step of 4 spread
# over 784 pixels is 0.14 per pixel).
DEFAULT_LINF_GRID = tuple(
    float(f"{e:.4g}") for e in np.geomspace(0.005, 0.2, 8)
)
# The attacks a curve can use: latent PGD on the KL, the eigen attack on
# the Fisher metric and on the output metric, and random directions.
CURVE_ATTACKS = ("pgd", "eigen_fisher", "eigen_output", "random")
DAMAGES = ("reconstruction_damage", "latent_kl", "ssim_damage")


def check_eps_grid(eps_grid, argument="eps_grid"):
    """The grid as a tuple of floats; raises a `ValueError` unless valid.

    Valid: non-empty, every value finite and > 0, strictly increasing.
    """
    try:
        grid = tuple(float(e) for e in eps_grid)
    except (TypeError, ValueError):
        grid = None
    if not grid or any(
        not math.isfinite(e) or e <= 0 for e in grid
    ) or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(
            f"Invalid value received for argument `{argument}`: expected a "
            "non-empty, strictly increasing list of budgets > 0. Received: "
            f"{argument}={eps_grid!r}"
        )
    return grid


def default_grid(norm=2):
    """`DEFAULT_L2_GRID` or `DEFAULT_LINF_GRID`."""
    return DEFAULT_L2_GRID if attacks.check_norm(norm) == 2 else (
        DEFAULT_LINF_GRID
    )


def make_curve_attack(
    name, model, eps_grid, norm=2, pgd_iter=50, seed=0, batch_size=128
):
    """The attack object of a `CURVE_ATTACKS` name, at every budget.

    Raises:
        ValueError: for an unknown name.
    """
    if name == "pgd":
        return attacks.LatentPGD(
            model, norm=norm, eps=list(eps_grid), max_iter=pgd_iter,
            seed=seed, batch_size=batch_size,
        )
    if name in ("eigen_fisher", "eigen_output"):
        return attacks.EigenAttack(
            model, eps=list(eps_grid), norm=norm, kind=name.split("_")[1],
            batch_size=batch_size,
        )
    if name == "random":
        return attacks.RandomAttack(
            eps=list(eps_grid), norm=norm, seed=seed, batch_size=batch_size
        )
    raise ValueError(
        "Invalid value received for argument `attack`: expected one of "
        f"{CURVE_ATTACKS} or an attack object. Received: attack={name!r}"
    )


def robustness_curve(
    model, x, attack="pgd", eps_grid=None, norm=2, defense=None,
    pgd_iter=50, seed=0, batch_size=128, x_advs=None,
):
    """Damage of one attack at every budget of a grid.

    Args:
        model: anything `vaekeras.latent.LatentModel` accepts that has a
            decoder (a VAE, a SavedModel).
        x: clean images `(N, H, W, C)` in [0, 1].
        attack: a `CURVE_ATTACKS` name, or an attack object (its `eps`
            list is then the grid).
        eps_grid: budgets, strictly increasing and > 0; default
            `default_grid(norm)`.
        norm: 2 or np.inf (with a name).
        defense: a test-time defense to measure the damage through (see
            `vaekeras.attacks.evaluate_attack`); the attack sees `model`.
        pgd_iter, seed, batch_size: of the attack made from a name.
        x_advs: adversarial images already made for this grid (one array
            per eps), e.g. to measure the same attack with and without a
            defense; the attack is then not run.

    Returns:
        Dict: `attack`, `norm` (2 or "inf"), `eps` (list), one list per
        `DAMAGES` entry (the mean over `x` at each eps), `clean_mse`, and
        `x_advs` (not JSON: pop it before saving).

    Raises:
        ValueError: for a bad grid, attack name or input.

    Example:

    >>> curve = robustness_curve(model, x_test[:200], "pgd")
    >>> area_under_damage(curve)
    """
    if isinstance(attack, str):
        grid = check_eps_grid(
            default_grid(norm) if eps_grid is None else eps_grid
        )
        name = attack
        if x_advs is None:
            made = make_curve_attack(
                attack, model, grid, norm, pgd_iter, seed, batch_size
            )
    else:
        made, name = attack, type(attack).__name__
        grid = check_eps_grid(attack.eps_list, "attack.eps")
        norm = attack.norm
    if x_advs is None:
        x_advs = made.generate(x)
        if len(grid) == 1 and not isinstance(x_advs, list):
            x_advs = [x_advs]
    curve = {
        "attack": name,
        "norm": 2 if norm == 2 else "inf",
        "eps": list(grid),
        **{key: [] for key in DAMAGES},
    }
    for eps, x_adv in zip(grid, x_advs):
        means = attacks.evaluate_attack(
            model, x, x_adv, batch_size, eps=eps, norm=norm, defense=defense
        )["means"]
        curve["reconstruction_damage"].append(
            means["reconstruction_mse"] - means["clean_reconstruction_mse"]
        )
        curve["latent_kl"].append(means["latent_kl"])
        curve["ssim_damage"].append(1.0 - means["ssim"])
        curve["clean_mse"] = means["clean_reconstruction_mse"]
    curve["x_advs"] = x_advs
    return curve


def area_under_damage(curve, key="reconstruction_damage"):
    """Normalised area under damage against log eps (module docstring).

    Args:
        curve: a `robustness_curve` result (or any dict with `eps` and
            `key` lists of one length).
        key: which damage, one of `DAMAGES`.

    Returns:
        A float: the damage's mean over log eps; the damage itself for a
        one-point curve.

    Raises:
        ValueError: for an unknown key or a bad grid.

    Example:

    >>> area_under_damage({"eps": [0.1, 1.0], "latent_kl": [2.0, 2.0]},
    ...                   "latent_kl")
    2.0
    """
    if key not in curve:
        raise ValueError(
            "Invalid value received for argument `key`: expected one of "
            f"{DAMAGES}. Received: key={key!r}"
        )
    eps = np.log(np.asarray(check_eps_grid(curve["eps"], "curve['eps']")))
    damage = np.asarray(curve[key], dtype="float64")
    if len(eps) == 1:
        return float(damage[0])
    integral = np.sum(0.5 * (damage[1:] + damage[:-1]) * np.diff(eps))
    return float(integral / (eps[-1] - eps[0]))


def pareto_frontier(points):
    """Indices of the points no other point beats on both coordinates.

    Each point is `(cost, damage)`, both to be minimised (e.g. clean MSE
    and area under damage). A point is on the frontier unless another is
    at most as large in both and smaller in one.

    Args:
        points: sequence of `(cost, damage)` pairs.

    Returns:
        The frontier's indices, sorted by cost.

    Example:

    >>> pareto_frontier([(1, 5), (2, 2), (3, 3), (4, 1)])
    [0, 1, 3]
    """
    pts = [(float(a), float(b)) for a, b in points]
    frontier = [
        i for i, (a, b) in enumerate(pts)
        if not any(
            (c <= a and d <= b) and (c < a or d < b) for c, d in pts
        )
    ]
    return sorted(frontier, key=lambda i: (pts[i][0], pts[i][1]))
