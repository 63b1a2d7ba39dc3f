import keras
import numpy as np
import pytest
from helpers import to_numpy

from vaekeras import architectures
from vaekeras import build_vae
from vaekeras import geometry
from vaekeras.defenses import GeometryRegularizedVAE


def regularized(shape=(8, 8, 1), **kwargs):
    keras.utils.set_random_seed(0)
    encoder = architectures.build_encoder(
        shape, latent_dim=3, hidden_units=(16,)
    )
    decoder = architectures.build_decoder(
        shape, latent_dim=3, hidden_units=(16,)
    )
    model = GeometryRegularizedVAE(encoder, decoder, seed=0, **kwargs)
    model(np.zeros((1, *shape), "float32"))
    return model


@pytest.mark.parametrize("kind", ["fisher", "stochastic"])
def test_hutchinson_trace_and_power_radius_match_the_exact_spectrum(
    kind, digits
):
    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), latent_dim=4, hidden_units=(32,), seed=0)
    x = digits[1][:6]
    exact = to_numpy(geometry.eigenvalues(model, x, kind, method="exact"))
    trace = to_numpy(geometry.metric_penalty(
        model.encoder, x, kind, "trace", probes=512, seed=1
    ))
    np.testing.assert_allclose(trace, exact.sum(axis=1), rtol=0.05)
    assert np.all(exact[:, 0] > 1.1 * exact[:, 1])  # a gap power can use
    radius = to_numpy(geometry.metric_penalty(
        model.encoder, x, kind, "spectral_radius", power_iterations=30
    ))
    np.testing.assert_allclose(radius, exact[:, 0], rtol=0.01)


@pytest.mark.backends
@pytest.mark.parametrize("penalty", ["trace", "spectral_radius"])
def test_geometry_regularized_vae_trains_and_penalises(penalty, digits):
    model = regularized(metric_weight=5.0, penalty=penalty)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = digits[0][:128]
    before = to_numpy(geometry.eigenvalues(model, x[:32], "fisher"))[:, 0]
    history = model.fit(x, epochs=3, batch_size=64, verbose=0)
    penalties = history.history["metric_penalty"]
    assert np.all(np.isfinite(penalties)) and penalties[0] > 0
    after = to_numpy(geometry.eigenvalues(model, x[:32], "fisher"))[:, 0]
    # The penalty is the only force on the radius this early: it falls.
    assert np.median(after) < np.median(before), (before, after)


def test_geometry_regularized_vae_round_trips(tmp_path, digits):
    model = regularized(
        metric_weight=2.0, metric_kind="stochastic",
        penalty="spectral_radius", probes=2, power_iterations=4,
    )
    model.compile(optimizer="adam")
    model.fit(digits[0][:64], epochs=1, batch_size=32, verbose=0)
    path = str(tmp_path / "geo.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, GeometryRegularizedVAE)
    config = loaded.get_config()
    assert config["metric_weight"] == 2.0
    assert config["metric_kind"] == "stochastic"
    assert config["penalty"] == "spectral_radius"
    assert config["probes"] == 2 and config["power_iterations"] == 4
    x = digits[1][:4]
    np.testing.assert_allclose(
        to_numpy(loaded.reconstruct(x)), to_numpy(model.reconstruct(x)),
        atol=1e-6,
    )


def test_geometry_regularized_vae_exports(tf_only, tmp_path, digits):
    import tensorflow as tf

    from vaekeras import export

    model = regularized()
    path = export.export_saved_model(model, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(path)  # kept: its functions need it
    served = loaded.reconstruct(digits[1][:3])["x_mean"]
    np.testing.assert_allclose(
        served.numpy(), to_numpy(model.reconstruct(digits[1][:3])),
        atol=1e-5,
    )


@pytest.mark.parametrize("kwargs, match", [
    ({"metric_weight": -1.0}, "metric_weight=-1.0"),
    ({"metric_weight": float("nan")}, "metric_weight=nan"),
    ({"metric_kind": "flat"}, "kind='flat'"),
    ({"penalty": "norm"}, "penalty='norm'"),
    ({"probes": 0}, "probes=0"),
    ({"power_iterations": 0}, "power_iterations=0"),
])
def test_bad_defense_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        regularized(**kwargs)


def test_total_correlation_known_answers():
    from vaekeras.defenses import kl_decomposition

    rng = np.random.default_rng(0)
    m, d = 1024, 3
    log_var = np.full((m, d), np.log(0.05), "float32")
    independent = rng.normal(size=(m, d)).astype("float32")
    shared = rng.normal(size=(m, 1)).astype("float32")
    correlated = np.repeat(shared, d, axis=1) + 0.05 * rng.normal(
        size=(m, d)
    ).astype("float32")
    tc = {}
    for name, mean in (("independent", independent),
                       ("correlated", correlated)):
        z = mean + np.sqrt(0.05) * rng.normal(size=(m, d)).astype("float32")
        terms = [to_numpy(t) for t in kl_decomposition(z, mean, log_var)]
        tc[name] = float(np.mean(terms[1]))
        # The three parts add up to the single-sample KL estimate.
        log_q = -0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2
                        / np.exp(log_var)).sum(-1)
        log_p = -0.5 * (np.log(2 * np.pi) + z**2).sum(-1)
        np.testing.assert_allclose(
            sum(terms), log_q - log_p, rtol=1e-4, atol=1e-3
        )
    # Gaussian truth: TC = -log det(R) / 2 for the correlation matrix R;
    # 0 for independent dimensions, 2.46 here (rho = 1 / 1.0525). The
    # batch estimate carries a kernel-density bias of about 0.1.
    rho = 1.0 / (1.0 + 0.05**2 + 0.05)
    corr = np.full((d, d), rho) + (1 - rho) * np.eye(d)
    truth = -0.5 * np.log(np.linalg.det(corr))
    assert abs(tc["independent"]) < 0.25, tc
    assert abs(tc["correlated"] - truth) < 0.15 * truth, (tc, truth)


@pytest.mark.backends
def test_tcvae_trains_reports_its_terms_and_round_trips(digits, tmp_path):
    from vaekeras.defenses import TCVAE

    keras.utils.set_random_seed(0)
    model = TCVAE(
        architectures.build_encoder((8, 8, 1), latent_dim=3,
                                    hidden_units=(16,)),
        architectures.build_decoder((8, 8, 1), latent_dim=3,
                                    hidden_units=(16,)),
        tc_weight=4.0, dataset_size=1438, seed=0,
    )
    model.compile(optimizer="adam")
    history = model.fit(digits[0][:128], epochs=2, batch_size=64, verbose=0)
    for name in ("mutual_information", "total_correlation",
                 "dimensionwise_kl"):
        assert np.all(np.isfinite(history.history[name])), name
    path = str(tmp_path / "tc.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["tc_weight"] == 4.0
    assert loaded.get_config()["dataset_size"] == 1438
    x = digits[1][:4]
    np.testing.assert_allclose(
        to_numpy(loaded.reconstruct(x)), to_numpy(model.reconstruct(x)),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="tc_weight=-1"):
        TCVAE(model.encoder, model.decoder, tc_weight=-1)
    with pytest.raises(ValueError, match="dataset_size=0"):
        TCVAE(model.encoder, model.decoder, dataset_size=0)
