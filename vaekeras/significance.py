"""Intervals and tests for robustness numbers measured over seeds and
images.

A study's worst-damage area varies with the training seed and with the
test images it is measured on. `area_interval` resamples both (a paired
bootstrap: the same resampled images for every seed and budget, since
every seed is attacked on the same images), and `images_note` says how
much of such an interval the images alone make; `welch` compares two
configurations' seed values by Welch's t-test and `holm` corrects a
family of such comparisons (Holm 1979), so a report that makes many
comparisons does not find differences by chance.

Plain numpy and scipy: no backend.
"""

import contextlib
import contextvars

import numpy as np

from vaekeras.attacks.damage import log_eps_area

# The bootstrap's resamples and the intervals' level.
RESAMPLES = 2000
LEVEL = 0.95
# The family-wise error rate of a report's comparisons.
ALPHA = 0.05


def area_interval(eps, worst_damage, level=LEVEL, resamples=RESAMPLES,
                  seed=0):
    """The worst-damage area's bootstrap interval over seeds and images.

    Args:
        eps: the budgets (strictly increasing).
        worst_damage: one array per seed, each `(len(eps), N)`: the
            per-image worst damage of `evaluate_robustness`, on the same N
            images for every seed.
        level: the interval's coverage.
        resamples: bootstrap resamples.
        seed: seeds the resampling.

    Returns:
        Dict `{"area", "low", "high", "images", "seeds",
        "images_half_width"}`: the area of the seeds' mean curve, its
        percentile interval, and half the width of the interval that
        resampling the images alone gives (seeds held): the images'
        share of the uncertainty (`images_note`).

    Raises:
        ValueError: for an empty list or seeds measured on different
            numbers of images or budgets.

    Examples:
        >>> area_interval([0.5, 1.0], [r["worst_damage"] for r in runs])
    """
    arrays = [np.asarray(w, "float64") for w in worst_damage]
    if not arrays or len({a.shape for a in arrays}) != 1:
        raise ValueError(
            "Invalid value received for argument `worst_damage`: expected "
            "one (budgets, images) array per seed, all of one shape. "
            f"Received shapes {[a.shape for a in arrays]}"
        )
    stacked = np.stack(arrays)  # (seeds, budgets, images)
    n_seeds, _, n_images = stacked.shape
    rng = np.random.default_rng(seed)
    both = np.empty(resamples)
    images_alone = np.empty(resamples)
    for b in range(resamples):
        seeds = rng.integers(0, n_seeds, n_seeds)
        images = rng.integers(0, n_images, n_images)
        both[b] = log_eps_area(
            eps, stacked[seeds][:, :, images].mean(axis=(0, 2))
        )
        images_alone[b] = log_eps_area(
            eps, stacked[:, :, images].mean(axis=(0, 2))
        )
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(both, [tail, 100 - tail])
    images_low, images_high = np.percentile(
        images_alone, [tail, 100 - tail]
    )
    return {
        "area": log_eps_area(eps, stacked.mean(axis=(0, 2))),
        "low": float(low), "high": float(high),
        "images": int(n_images), "seeds": int(n_seeds),
        "images_half_width": float(images_high - images_low) / 2,
    }


def images_note(groups, reference_images=1000):
    """One sentence for a report: how much of its intervals the choice of
    test images makes, and what more images would buy.

    The bootstrap's image-only half-width shrinks as one over the square
    root of the number of images, so the sentence also gives its size at
    `reference_images` images: whether attacking fewer suffices is read
    off against the differences the report calls out.

    Args:
        groups: `{how the images were attacked: [area_interval results]}`,
            e.g. `{"attacked": bare, "attacked through MCMC": chained}`;
            None and results without `images_half_width` are skipped.
        reference_images: the image count the half-width is scaled to.

    Returns:
        The sentence, or "" when no interval has an image share.

    Examples:
        >>> images_note({"attacked": [area_interval(eps, damages)]})
    """
    parts = []
    for how, intervals in groups.items():
        found = [
            f for f in intervals
            if f and f.get("images_half_width") is not None and f["area"] > 0
        ]
        if not found:
            continue
        images = min(f["images"] for f in found)
        alone = max(f["images_half_width"] / f["area"] for f in found)
        whole = float(np.median(
            [(f["high"] - f["low"]) / 2 / f["area"] for f in found]
        ))
        scaled = (
            f", about ±{100 * alone * np.sqrt(images / reference_images):.1f}"
            f"% on {reference_images:,}" if images < reference_images else ""
        )
        parts.append(
            f"resampling the {images:,} images {how}, seeds held, moves an "
            f"area by at most ±{100 * alone:.1f}% (95%{scaled}; the whole "
            f"interval's median ±{100 * whole:.1f}%)"
        )
    if not parts:
        return ""
    return (
        "Images: " + "; ".join(parts) + ". Every model is attacked on the "
        "same images, so comparisons between models are paired over them."
    )


def spearman_interval(groups, level=LEVEL, resamples=RESAMPLES, seed=0):
    """Spearman's rho between two measures of the same models, and its
    bootstrap interval over seeds.

    Each configuration contributes its seeds' models; a resample draws,
    within every configuration, as many seeds with replacement (a
    stratified bootstrap), so the interval says how much rho owes to
    which training runs happened to be drawn.

    Args:
        groups: per configuration, a list of `(x, y)` pairs, one per seed.
        level: the interval's coverage.
        resamples: bootstrap resamples.
        seed: seeds the resampling.

    Returns:
        Dict `{"rho", "low", "high", "p", "models", "configurations"}`:
        rho over every model, its percentile interval, and the p-value
        of rho = 0 (scipy's, treating models as independent); None when
        fewer than 3 models or one measure is constant.

    Examples:
        >>> spearman_interval([[(0.1, 2.0), (0.2, 2.1)], [(0.5, 1.0)],
        ...                    [(0.7, 0.4), (0.6, 0.6)]])["rho"]
        -1.0
    """
    from scipy import stats

    groups = [np.asarray(g, "float64").reshape(-1, 2) for g in groups if g]
    points = np.concatenate(groups) if groups else np.zeros((0, 2))
    if len(points) < 3 or np.ptp(points[:, 0]) == 0 or np.ptp(
        points[:, 1]
    ) == 0:
        return None
    result = stats.spearmanr(points[:, 0], points[:, 1])
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        sample = np.concatenate([
            g[rng.integers(0, len(g), len(g))] for g in groups
        ])
        if np.ptp(sample[:, 0]) > 0 and np.ptp(sample[:, 1]) > 0:
            draws.append(stats.spearmanr(sample[:, 0], sample[:, 1])[0])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return {
        "rho": float(result[0]), "low": float(low), "high": float(high),
        "p": float(result[1]), "models": int(len(points)),
        "configurations": len(groups),
    }


def welch(a, b):
    """Welch's two-sided t-test of two samples' means; the p-value.

    None when either side has fewer than 2 values (one training run
    cannot tell a gap from the noise of training); 1.0 when both sides
    are constant and equal, 0.0 when constant and different.
    """
    from scipy import stats

    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    if min(len(a), len(b)) < 2:
        return None
    if np.var(a) == 0 and np.var(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def holm(pvalues, alpha=ALPHA):
    """Holm's step-down correction: which of a family of tests reject.

    Args:
        pvalues: one p-value (or None: not testable, never rejected) per
            comparison of the family.
        alpha: the family-wise error rate.

    Returns:
        A list of bools, one per p-value.

    Examples:
        >>> holm([0.01, 0.04, 0.03])  # 0.01 < 0.05/3; 0.03 > 0.05/2
        [True, False, False]
    """
    order = sorted(
        (p, i) for i, p in enumerate(pvalues) if p is not None
    )
    rejected = [False] * len(pvalues)
    for rank, (p, i) in enumerate(order):
        if p > alpha / (len(order) - rank):
            break
        rejected[i] = True
    return rejected


class Comparisons:
    """A report's family of Welch comparisons, Holm-corrected together.

    A report's verdicts ask `differ(a, b)` as they go; the family must be
    known before any is decided, so the verdicts run twice inside
    `comparisons()`: the first pass records every comparison (answering
    uncorrected), `freeze()` decides the whole family by Holm, and the
    second pass gets those answers. A comparison first met after
    `freeze` is decided against the family grown by it.

    Examples:
        >>> with comparisons() as family:
        ...     for _ in range(2):
        ...         verdict = make_verdicts()  # they call `differ`
        ...         family.freeze()
        >>> family.describe()
    """

    def __init__(self, alpha=ALPHA):
        self.alpha = alpha
        self.pvalues = {}
        self.decided = None

    def differ(self, a, b):
        key = tuple(sorted((tuple(a), tuple(b))))
        if key not in self.pvalues:
            self.pvalues[key] = welch(a, b)
            if self.decided is not None:
                self.freeze()
        if self.decided is None:
            p = self.pvalues[key]
            return p is not None and p <= self.alpha
        return self.decided[key]

    def freeze(self):
        keys = list(self.pvalues)
        self.decided = dict(zip(
            keys, holm([self.pvalues[k] for k in keys], self.alpha)
        ))

    def describe(self, images=None):
        """A report's statistics in words: what was tested and how, and,
        given `images` (`images_note`'s groups), the images' share of the
        intervals."""
        if not any(p is not None for p in self.pvalues.values()):
            tests = (
                "No comparison had two seeds a side, so none is called a "
                "difference."
            )
        else:
            tests = (
                "Differences are Welch's t-tests over the seeds, "
                f"Holm-corrected over the report's {len(self.pvalues)} "
                f"comparisons (family-wise error rate {self.alpha:g})."
            )
        note = images_note(images) if images else ""
        return f"{tests} {note}" if note else tests


_ACTIVE = contextvars.ContextVar("vaekeras_comparisons", default=None)


@contextlib.contextmanager
def comparisons(alpha=ALPHA):
    """The family `differ` decides within, for the `with` block."""
    family = Comparisons(alpha)
    token = _ACTIVE.set(family)
    try:
        yield family
    finally:
        _ACTIVE.reset(token)


def differ(a, b):
    """Whether two samples of seed values differ: Welch's t-test, decided
    within the active `comparisons()` family (Holm), or at `ALPHA`
    uncorrected outside one."""
    family = _ACTIVE.get()
    if family is None:
        p = welch(a, b)
        return p is not None and p <= ALPHA
    return family.differ(a, b)
