"""Intervals and tests of `vaekeras.significance`, against known answers."""

import numpy as np
import pytest

from vaekeras import significance


def test_welch_matches_the_textbook_value():
    # Welch's t = -9 / sqrt(1/3 + 1/3) = -11.02 with 4 degrees of
    # freedom: two-sided p = 0.000386.
    p = significance.welch([1.0, 2.0, 3.0], [10.0, 11.0, 12.0])
    assert p == pytest.approx(0.000386, rel=0.01)
    assert significance.welch([1.0], [2.0, 3.0]) is None
    assert significance.welch([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert significance.welch([1.0, 1.0], [2.0, 2.0]) == 0.0


def test_holm_steps_down():
    # Sorted: 0.01 <= 0.05 / 3; then 0.03 > 0.05 / 2 stops the rest.
    assert significance.holm([0.01, 0.04, 0.03]) == [True, False, False]
    assert significance.holm([0.01, 0.02, 0.03]) == [True, True, True]
    assert significance.holm([None, 0.001]) == [False, True]
    assert significance.holm([]) == []


def test_a_family_of_comparisons_is_decided_together():
    a, b = [1.0, 2.0, 3.0], [3.0, 4.0, 5.5]  # p = 0.07 alone
    strong = ([1.0, 2.0, 3.0], [10.0, 11.0, 12.0])
    assert not significance.differ(a, b)
    assert significance.differ(*strong)  # uncorrected, outside a family
    with significance.comparisons() as family:
        for _ in range(2):
            decisions = [
                significance.differ(*strong),
                *(significance.differ([0.0, 1.0, 2.0], [k, k + 1, k + 2])
                  for k in (1.0, 1.5, 2.0)),
            ]
            family.freeze()
    assert len(family.pvalues) == 4
    # 0.000386 * 4 = 0.0015: still a difference within the family.
    assert decisions[0] is True
    assert "over the report's 4 comparisons" in family.describe()
    # One significant alone (p 0.01 < 0.05) is not among 20.
    many = significance.Comparisons()
    shifted = ([0.0, 0.1, 0.2], [0.35, 0.45, 0.55])
    p = many.differ(*shifted)
    assert p is True and significance.welch(*shifted) < 0.05
    for k in range(19):
        many.differ([0.0, 1.0, 2.0], [k, k + 1.0, k + 2.5])
    many.freeze()
    assert many.differ(*shifted) is False


def test_the_area_interval_covers_the_area_and_narrows_with_images():
    rng = np.random.default_rng(0)
    eps = [0.5, 1.0, 2.0]

    def seeds(images):
        base = np.array([0.01, 0.03, 0.08])[:, None]
        return [
            base * rng.lognormal(0.0, 0.25, (1, images)) * (1 + 0.02 * s)
            for s in range(3)
        ]

    few = significance.area_interval(eps, seeds(50), seed=0)
    many = significance.area_interval(eps, seeds(2000), seed=0)
    for result in (few, many):
        assert result["low"] < result["area"] < result["high"]
    assert few["images"] == 50 and few["seeds"] == 3
    assert (many["high"] - many["low"]) < 0.5 * (few["high"] - few["low"])
    # The images' share shrinks as one over the root of their number.
    ratio = many["images_half_width"] / few["images_half_width"]
    assert 0.1 < ratio < 0.25  # sqrt(50 / 2000) = 0.16
    for result in (few, many):
        assert 0 < result["images_half_width"] < (
            result["high"] - result["low"]
        ) / 2
    # Identical seeds: resampling them changes nothing, so the images
    # make the whole interval.
    again = significance.area_interval(eps, seeds(50)[:1] * 2, seed=0)
    assert again["seeds"] == 2
    assert again["images_half_width"] == pytest.approx(
        (again["high"] - again["low"]) / 2
    )
    with pytest.raises(ValueError, match="worst_damage"):
        significance.area_interval(eps, [np.zeros((3, 4)), np.zeros((3, 5))])


def test_the_images_note_gives_their_share_and_its_size_at_1000():
    def found(images, half_width, low, high):
        return {"area": 0.02, "low": low, "high": high, "images": images,
                "seeds": 3, "images_half_width": half_width}

    note = significance.images_note({
        "attacked": [found(100, 0.0004, 0.019, 0.021),
                     found(100, 0.0002, 0.0195, 0.0205), None],
        "attacked through MCMC": [found(16, 0.002, 0.017, 0.023)],
        "never": [{"area": 0.02, "low": 0.01, "high": 0.03}],
    })
    assert note == (
        "Images: resampling the 100 images attacked, seeds held, moves an "
        "area by at most ±2.0% (95%, about ±0.6% on 1,000; the whole "
        "interval's median ±3.8%); resampling the 16 images attacked "
        "through MCMC, seeds held, moves an area by at most ±10.0% (95%, "
        "about ±1.3% on 1,000; the whole interval's median ±15.0%). Every "
        "model is attacked on the same images, so comparisons between "
        "models are paired over them."
    )
    assert "on 1,000" not in significance.images_note(
        {"attacked": [found(1000, 0.0004, 0.019, 0.021)]}
    )
    assert significance.images_note({"attacked": [None]}) == ""


def test_spearman_interval_over_seeds():
    # Monotone within and across configurations: rho -1 on every resample.
    groups = [[(0.1, 2.0), (0.2, 1.9)], [(0.5, 1.0)], [(0.7, 0.4), (0.8, 0.3)]]
    found = significance.spearman_interval(groups)
    assert [found[k] for k in ("rho", "low", "high")] == pytest.approx(
        [-1.0, -1.0, -1.0]
    )
    assert (found["models"], found["configurations"]) == (5, 3)
    # A U shape: no monotone relation, so the interval holds 0.
    u_shape = [
        [(k + 0.1 * s, (k - 2) ** 2 + 0.3 * s) for s in (-1, 1)]
        for k in range(5)
    ]
    found = significance.spearman_interval(u_shape)
    assert found["rho"] == pytest.approx(0.0, abs=0.1)
    assert found["low"] < 0.0 < found["high"] and found["p"] > 0.05
    assert significance.spearman_interval([[(1.0, 2.0), (1.0, 3.0)]]) is None
