import numpy as np
import pytest

from vaekeras import build_vae
from vaekeras import scores


def test_single_direction_has_zero_entropy_both_ways():
    s = scores.robustness_scores([[5.0, 0.0, 0.0, 1e-20]])
    assert s["spectral_radius"][0] == 5.0
    assert s["von_neumann_entropy_max"][0] == 0.0
    assert s["von_neumann_entropy_trace"][0] == 0.0
    assert s["condition"][0] == 1.0
    assert s["trace"][0] == pytest.approx(5.0)


@pytest.mark.parametrize("n", [2, 5, 32])
def test_flat_spectrum_has_trace_entropy_log_n(n):
    s = scores.robustness_scores(np.full((3, n), 0.7))
    np.testing.assert_allclose(s["von_neumann_entropy_trace"], np.log(n))
    # p_i = 1 for every i under max-normalisation: -sum 1 log 1 = 0.
    np.testing.assert_allclose(s["von_neumann_entropy_max"], 0.0)
    np.testing.assert_allclose(s["condition"], 1.0)


def test_known_mixed_spectrum():
    s = scores.robustness_scores([[1.0, 4.0, 0.0, -1e-9]])  # any order
    p_max = np.array([1.0, 0.25])
    p_trace = np.array([0.8, 0.2])
    assert s["spectral_radius"][0] == 4.0
    assert s["trace"][0] == pytest.approx(5.0)
    assert s["condition"][0] == pytest.approx(4.0)
    assert s["von_neumann_entropy_max"][0] == pytest.approx(
        -np.sum(p_max * np.log(p_max))
    )
    assert s["von_neumann_entropy_trace"][0] == pytest.approx(
        -np.sum(p_trace * np.log(p_trace))
    )


def test_all_zero_spectrum_and_selected_normalization():
    s = scores.robustness_scores([[0.0, 0.0]], entropy_normalization="trace")
    assert "von_neumann_entropy_max" not in s
    assert s["von_neumann_entropy_trace"][0] == 0.0
    assert s["condition"][0] == 1.0


def test_summary():
    summary = scores.summarize_scores({"a": np.array([1.0, 2.0, 6.0])})
    # Population std: sqrt(((1-3)^2 + (2-3)^2 + (6-3)^2) / 3) = sqrt(14/3).
    assert summary["a"] == {
        "mean": 3.0, "median": 2.0, "std": pytest.approx((14 / 3) ** 0.5)
    }


def test_bad_eigenvalues_are_refused():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        scores.robustness_scores([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="non-finite"):
        scores.robustness_scores([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="entropy_normalization='sum'"):
        scores.robustness_scores([[1.0]], entropy_normalization="sum")


def test_evaluate_geometry_streams_arrays_and_datasets(digits):
    import tensorflow as tf

    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,))
    images = digits[1][:70]
    from_array = scores.evaluate_geometry(
        model, images, batch_size=32, verbose=0
    )
    from_dataset = scores.evaluate_geometry(
        model, tf.data.Dataset.from_tensor_slices(images).batch(25),
        verbose=0,
    )
    assert from_array["eigenvalues"].shape == (70, 6)
    np.testing.assert_allclose(
        from_array["spectral_radius"], from_dataset["spectral_radius"],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        from_array["spectral_radius"], from_array["eigenvalues"][:, 0]
    )


def test_condition_ignores_float32_rounding_noise():
    # 1e-9 of the top eigenvalue is below float32 resolution: noise.
    s = scores.robustness_scores([[2.0, 0.5, 2e-9]])
    assert s["condition"][0] == pytest.approx(4.0)
    assert s["von_neumann_entropy_trace"][0] == pytest.approx(
        scores.robustness_scores([[2.0, 0.5]])["von_neumann_entropy_trace"][0]
    )
    # A tolerance given by the caller is used as it is.
    assert scores.robustness_scores([[2.0, 2e-9]], tol=1e-12)[
        "condition"
    ][0] == pytest.approx(1e9)
