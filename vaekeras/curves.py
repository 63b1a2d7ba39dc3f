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

import numpy as np

from vaekeras import attacks
from vaekeras import checks

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
CURVE_ATTACKS = ("pgd_kl", "eigen_fisher", "eigen_output", "random")
DAMAGES = ("reconstruction_damage", "latent_kl", "ssim_damage")


def check_eps_grid(eps_grid, argument="eps_grid"):
    """The grid as a tuple of floats; raises a `ValueError` unless valid.

    Valid: non-empty, every value finite and > 0, strictly increasing.
    """
    return checks.grid(eps_grid, argument)


def default_grid(norm=2):
    """`DEFAULT_L2_GRID` or `DEFAULT_LINF_GRID`."""
    return DEFAULT_L2_GRID if checks.norm(norm) == 2 else (
        DEFAULT_LINF_GRID
    )


def robustness_curve(
    model, x, attack="pgd_kl", eps_grid=None, norm=2, defense=None,
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

    Examples:
        >>> curve = robustness_curve(model, x_test[:200], "pgd_kl")
        >>> area_under_damage(curve)
    """
    if isinstance(attack, str):
        checks.choice("attack", attack, CURVE_ATTACKS)
        grid = check_eps_grid(
            default_grid(norm) if eps_grid is None else eps_grid
        )
        name = attack
        attack = attacks.make_attack(
            name, model, list(grid),
            norm, max_iter=pgd_iter, seed=seed, batch_size=batch_size,
        )
    else:
        name = type(attack).__name__
        grid = check_eps_grid(attack.eps_list, "attack.eps")
    rows, x_advs = attacks.damage_curve(
        attack, model, x, batch_size=batch_size, defense=defense,
        x_advs=x_advs,
    )
    return {
        "attack": name,
        "norm": checks.norm_name(attack.norm),
        "eps": list(grid),
        "reconstruction_damage": [
            row["reconstruction_mse"] - row["clean_reconstruction_mse"]
            for row in rows
        ],
        "latent_kl": [row["latent_kl"] for row in rows],
        "ssim_damage": [1.0 - row["ssim"] for row in rows],
        "clean_mse": rows[-1]["clean_reconstruction_mse"],
        "x_advs": x_advs,
    }


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

    Examples:
        >>> area_under_damage({"eps": [0.1, 1.0], "latent_kl": [2.0, 2.0]},
        ...                   "latent_kl")
        2.0
    """
    checks.choice("key", key, [k for k in DAMAGES if k in curve])
    eps = check_eps_grid(curve["eps"], "curve['eps']")
    return attacks.log_eps_area(eps, curve[key])


def pareto_frontier(points, reliable=None):
    """Indices of the points no other point beats on both coordinates.

    Each point is `(cost, damage)`, both to be minimised (e.g. clean MSE
    and area under damage). A point is on the frontier unless another is
    at most as large in both and smaller in one. A point with a NaN or
    infinite coordinate, or one whose evaluation is not reliable (its
    damage a lower bound of unknown quality: `evaluate_robustness`'s
    `reliable`), is never on it and beats no other.

    Args:
        points: sequence of `(cost, damage)` pairs.
        reliable: None (every point reliable) or one bool per point.

    Returns:
        The frontier's indices, sorted by cost.

    Raises:
        ValueError: when `reliable` does not give one value per point.

    Examples:
        >>> pareto_frontier([(1, 5), (2, 2), (3, 3), (4, 1)])
        [0, 1, 3]
        >>> pareto_frontier([(1, 5), (2, 2), (4, 1)], [True, False, True])
        [0, 2]
    """
    pts = [(float(a), float(b)) for a, b in points]
    if reliable is None:
        reliable = [True] * len(pts)
    if len(reliable) != len(pts):
        raise ValueError(
            "Invalid value received for argument `reliable`: expected one "
            f"bool per point ({len(pts)}). Received: {len(reliable)} values"
        )
    # NaN compares False, so such a point would beat nothing and lose to
    # nothing: it is left out like an unreliable one.
    kept = [
        bool(ok) and np.isfinite(a) and np.isfinite(b)
        for (a, b), ok in zip(pts, reliable)
    ]
    frontier = [
        i for i, (a, b) in enumerate(pts)
        if kept[i] and not any(
            (c <= a and d <= b) and (c < a or d < b)
            for (c, d), ok in zip(pts, kept) if ok
        )
    ]
    return sorted(frontier, key=lambda i: (pts[i][0], pts[i][1]))
