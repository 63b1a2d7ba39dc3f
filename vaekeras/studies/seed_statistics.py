"""Numbers over training seeds: summaries, their comparison, Spearman's
rho over a grid, and the names that group a configuration's seeds."""

import itertools
import re

import numpy as np

from vaekeras import significance


def seed_summary(values):
    """Mean, sample standard deviation, extremes and count over seeds.

    None values (a measurement a model does not have) are left out; all
    None gives None.
    """
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "n": len(values),
        "values": values,
    }


_SEED_SUFFIX = re.compile(r" \[seed (-?\d+)\]$")


def base_name(name):
    """A run's configuration name, without its seed."""
    return _SEED_SUFFIX.sub("", name)


def seed_means(rows, spread_keys):
    """One row per configuration: the mean over its seeds of every number
    (element-wise for lists; lists of names are merged), `seeds`, and
    `spread`, the seed summaries (`seed_summary`) of `spread_keys`, of
    `protocol_area` and of every `eigen_excess_mse*` value, for
    comparisons (`compare`)."""
    groups = {}
    for row in rows:
        groups.setdefault(base_name(row["name"]), []).append(row)
    out = []
    for name, members in groups.items():
        merged = {"name": name, "seeds": len(members)}
        for key, value in members[0].items():
            if key == "name":
                continue
            values = [m[key] for m in members]
            if isinstance(value, list) and value and isinstance(
                value[0], (int, float)
            ):
                merged[key] = np.mean(values, axis=0).tolist()
            elif isinstance(value, (int, float)) and not isinstance(
                value, bool
            ) and value is not None:
                merged[key] = float(np.mean(values))
            elif isinstance(value, list):
                merged[key] = sorted({v for m in values for v in m})
            else:
                merged[key] = value
        merged["spread"] = {
            key: seed_summary([m[key] for m in members])
            for key in (*spread_keys, "protocol_area", *[
                k for k in members[0] if k.startswith("eigen_excess_mse")
            ])
        }
        out.append(merged)
    return out


def compare(a, b, key):
    """`"smaller"`, `"larger"` or `"not distinguishable"`: a's seed mean
    of `key` against b's, by Welch's t-test (`separated`)."""
    sa, sb = a["spread"].get(key), b["spread"].get(key)
    if sa is None or sb is None or not separated(sa, sb):
        return "not distinguishable"
    return "smaller" if sa["mean"] < sb["mean"] else "larger"


def separated(a, b):
    """Whether two seed summaries differ beyond the noise of training:
    Welch's t-test over their seed values, within the report's family of
    comparisons (`vaekeras.significance.differ`: Holm-corrected). With one
    seed on either side nothing is separated: one training run cannot
    tell a gap from the noise of training."""
    if a is None or b is None or min(a["n"], b["n"]) < 2:
        return False
    return significance.differ(a["values"], b["values"])


# Up to this many points the Spearman p-value is exact.
EXACT_SPEARMAN_MAX_N = 8


def spearman(betas, values):
    """`(rho, p)`: Spearman's rho and its two-sided p-value.

    For n <= `EXACT_SPEARMAN_MAX_N` the p-value is exact (the share of all
    n! orderings whose |rho| is at least the observed one), so |rho| = 1
    with n = 3 gives p = 1/3, not the asymptotic 0; larger n uses scipy's
    t approximation.

    Returns:
        `(rho, p)`, or None for fewer than 3 distinct betas.
    """
    from scipy import stats

    if len(set(betas)) < 3:
        return None
    rho = float(stats.spearmanr(betas, values).statistic)
    n = len(betas)
    if n > EXACT_SPEARMAN_MAX_N:
        return rho, float(stats.spearmanr(betas, values).pvalue)
    x = stats.rankdata(betas)
    y = stats.rankdata(values)
    orders = np.array(list(itertools.permutations(y)))  # (n!, n)
    xc, yc = x - x.mean(), orders - orders.mean(axis=1, keepdims=True)
    all_rho = (yc @ xc) / (
        np.linalg.norm(xc) * np.linalg.norm(yc, axis=1) + 1e-300
    )
    p = float(np.mean(np.abs(all_rho) >= abs(rho) - 1e-12))
    return rho, p


def quartiles(values):
    """Mean, median, quartiles and std of a sample, as floats."""
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return {
        "mean": float(np.mean(values)), "median": float(q50),
        "q25": float(q25), "q75": float(q75), "std": float(np.std(values)),
    }
