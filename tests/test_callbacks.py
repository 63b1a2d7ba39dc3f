import keras
import numpy as np
import pytest

from vaekeras import build_vae
from vaekeras import scores
from vaekeras.callbacks import GeometryMonitor


@pytest.mark.backends
def test_monitor_logs_what_scores_computes(digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,), seed=0)
    model.compile(optimizer="adam")
    x_val = digits[1][:24]
    monitor = GeometryMonitor(x_val, kind="fisher", every=2)
    history = model.fit(
        digits[0][:256], epochs=4, batch_size=64, verbose=0,
        callbacks=[monitor],
    )
    assert monitor.history["epoch"] == [2, 4]
    # The History holds the two monitored values.
    assert len(history.history["geometry_spectral_radius"]) == 2
    want = scores.summarize_scores(
        scores.evaluate_geometry(model, x_val, kind="fisher", verbose=0)
    )
    np.testing.assert_allclose(
        history.history["geometry_spectral_radius"][-1],
        want["spectral_radius"]["median"], rtol=1e-5,
    )
    np.testing.assert_allclose(
        monitor.history["geometry_entropy"][-1],
        want["von_neumann_entropy_max"]["mean"], rtol=1e-5,
    )


def test_monitor_refuses_bad_arguments(digits):
    with pytest.raises(ValueError, match="x_val.shape=\\(0, 8, 8, 1\\)"):
        GeometryMonitor(digits[1][:0])
    with pytest.raises(ValueError, match="every=0"):
        GeometryMonitor(digits[1][:4], every=0)
    with pytest.raises(ValueError, match="kind='flat'"):
        GeometryMonitor(digits[1][:4], kind="flat")


def test_monitor_reports_nan_for_a_diverged_model(digits):
    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,), seed=0)
    weights = model.get_weights()
    weights[0] = weights[0] * np.nan
    model.set_weights(weights)
    monitor = GeometryMonitor(digits[1][:8])
    monitor.set_model(model)
    measured = monitor.measure()
    assert np.isnan(measured["geometry_spectral_radius"])
    assert np.isnan(measured["geometry_entropy"])
