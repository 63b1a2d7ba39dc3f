import keras
import numpy as np
import pytest
from helpers import to_numpy

from vaekeras import architectures
from vaekeras import build_vae
from vaekeras import defenses
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
    trace = to_numpy(defenses.metric_penalty(
        model.encoder, x, kind, "trace", probes=512, seed=1
    ))
    np.testing.assert_allclose(trace, exact.sum(axis=1), rtol=0.05)
    assert np.all(exact[:, 0] > 1.1 * exact[:, 1])  # a gap power can use
    radius = to_numpy(defenses.metric_penalty(
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


# --- Adversarially smooth encoders. ---


@pytest.mark.parametrize("objective", ["kl", "w2"])
def test_worst_case_inputs_is_latent_pgd_inside_a_trace(digits, objective):
    from vaekeras import attacks

    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,))
    x = digits[1][:8]
    z_mean, z_log_var = model.encoder(x)
    inside = attacks.worst_case_inputs(
        model.encoder, x, z_mean, z_log_var, eps=0.5, steps=5,
        seed=keras.random.SeedGenerator(3), objective=objective,
    )
    reference = attacks.LatentPGD(
        model.encoder, eps=0.5, max_iter=5, seed=3, objective=objective,
    ).generate(x)
    np.testing.assert_allclose(to_numpy(inside), reference, atol=1e-5)


@pytest.mark.backends
def test_adversarial_vae_trains_and_round_trips(digits, tmp_path):
    from vaekeras.defenses import AdversarialVAE
    from vaekeras.defenses import build_defended_vae

    keras.utils.set_random_seed(0)
    model = build_defended_vae(
        (8, 8, 1), "adversarial", latent_dim=3, hidden_units=(16,), seed=0,
        adv_eps=0.5, adv_steps=2, adv_weight=2.0, adv_norm=np.inf,
        adv_divergence="kl",
    )
    assert isinstance(model, AdversarialVAE)
    model.compile(optimizer="adam")
    history = model.fit(digits[0][:128], epochs=2, batch_size=64, verbose=0)
    divergence = history.history["adversarial_divergence"]
    assert np.all(np.isfinite(divergence)) and divergence[0] > 0
    path = str(tmp_path / "adv.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    config = loaded.get_config()
    assert (config["adv_eps"], config["adv_norm"], config["adv_steps"],
            config["adv_weight"], config["adv_divergence"],
            config["adv_inner"]) == (0.5, "inf", 2, 2.0, "kl", "divergence")
    x = digits[1][:4]
    np.testing.assert_allclose(
        to_numpy(loaded.reconstruct(x)), to_numpy(model.reconstruct(x)),
        atol=1e-6,
    )


@pytest.mark.parametrize("defense, kwargs, match", [
    ("none", {"adv_eps": 1.0}, "adv_eps.*defense='adversarial'"),
    ("tc", {"metric_weight": 1.0}, "metric_weight.*defense='geometry'"),
    ("armor", {}, "defense='armor'"),
    ("adversarial", {"adv_eps": 0.0}, "adv_eps=0.0"),
    ("adversarial", {"adv_eps": float("inf")}, "adv_eps=inf"),
    ("adversarial", {"adv_steps": 0}, "adv_steps=0"),
    ("adversarial", {"adv_weight": -1.0}, "adv_weight=-1.0"),
    ("adversarial", {"adv_norm": 3}, "norm"),
    ("adversarial", {"adv_divergence": "js"}, "adv_divergence='js'"),
    ("lipschitz", {"max_std": 0.0}, "max_std=0.0"),
    ("lipschitz", {"decoder_lipschitz": -2.0}, "lipschitz=-2.0"),
    ("tc", {"tc_weight": float("nan")}, "tc_weight=nan"),
])
def test_bad_defense_options_name_themselves(defense, kwargs, match):
    from vaekeras.defenses import build_defended_vae

    with pytest.raises(ValueError, match=match):
        build_defended_vae(
            (8, 8, 1), defense, latent_dim=3, hidden_units=(16,), **kwargs
        )


def test_gaussian_w2_known_answer():
    from vaekeras.defenses import gaussian_w2

    mean_a, mean_b = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    log_var_a = np.log(np.array([[4.0, 1.0]]))
    log_var_b = np.zeros((1, 2))
    # ||(1, 2)||^2 + ||(2 - 1, 1 - 1)||^2 = 5 + 1.
    np.testing.assert_allclose(
        to_numpy(gaussian_w2(mean_a, log_var_a, mean_b, log_var_b)), [6.0],
        rtol=1e-6,
    )


# --- Test-time MCMC. ---


@pytest.mark.backends
def test_mcmc_chain_is_seeded_and_moves(digits):
    from vaekeras import attacks
    from vaekeras.defenses import MCMCReconstruction

    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,), seed=0)
    x = digits[1][:6]
    runs = [
        to_numpy(MCMCReconstruction(model, steps=4, seed=seed).encode(x)[0])
        for seed in (0, 0, 1)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    defense = MCMCReconstruction(model, steps=4, method="mala", seed=0)
    z, log_var = defense.encode(x)
    assert 0.0 < defense.acceptance_rate <= 1.0
    np.testing.assert_allclose(
        to_numpy(log_var), to_numpy(model.encode(x)[1]), atol=1e-6
    )
    assert to_numpy(defense.reconstruct(x)).shape == x.shape
    damage = attacks.evaluate_attack(model, x, x, defense=defense)["means"]
    assert damage["reconstruction_mse"] > 0


def test_mcmc_step_size_adapts_toward_the_target_acceptance(digits):
    from vaekeras.defenses import MCMCReconstruction

    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,), seed=0)
    model.compile(optimizer="adam")
    model.fit(digits[0][:256], epochs=3, batch_size=64, verbose=0)
    x = digits[1][:64]

    def acceptance(**kwargs):
        defense = MCMCReconstruction(
            model, steps=30, step_size=3.0, seed=0, **kwargs
        )
        z = to_numpy(defense.encode(x)[0])
        return defense.acceptance_rate, z

    fixed, z_fixed = acceptance(target_acceptance=None)
    still, z_still = acceptance(adaptation_rate=0.0)
    adapted, _ = acceptance(adaptation_rate=0.3)
    # Rate 0 is the fixed chain; a step far too large is rejected often,
    # and adaptation shrinks it until most proposals are accepted.
    np.testing.assert_array_equal(z_fixed, z_still)
    assert fixed < 0.6
    assert adapted > fixed + 0.2


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps=0"),
    ({"step_size": 0.0}, "step_size=0.0"),
    ({"method": "nuts"}, "method='nuts'"),
    ({"leapfrog_steps": 0}, "leapfrog_steps=0"),
    ({"target_acceptance": 1.5}, "target_acceptance=1.5"),
    ({"adaptation_rate": -1.0}, "adaptation_rate=-1.0"),
])
def test_bad_mcmc_arguments_name_themselves(kwargs, match):
    from vaekeras.defenses import MCMCReconstruction

    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,))
    with pytest.raises(ValueError, match=match):
        MCMCReconstruction(model, **kwargs)


@pytest.mark.slow
def test_mcmc_lowers_the_damage_of_the_eigen_attack():
    from vaekeras import attacks
    from vaekeras import data
    from vaekeras.defenses import MCMCReconstruction

    train, _ = data.load_arrays("mnist_5k", "train")
    test, _ = data.load_arrays("mnist_5k", "test")
    keras.utils.set_random_seed(0)
    model = build_vae((28, 28, 1), latent_dim=16, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(train, epochs=20, batch_size=128, verbose=0)
    x = test[:200]
    x_adv = attacks.EigenAttack(model, eps=1.0, kind="fisher").generate(x)
    plain = attacks.evaluate_attack(model, x, x_adv)["means"]
    defended = attacks.evaluate_attack(
        model, x, x_adv, defense=MCMCReconstruction(model, seed=0)
    )["means"]
    # Measured: 0.0349 without, 0.0292 with 20 HMC steps.
    assert defended["reconstruction_mse"] < 0.9 * plain["reconstruction_mse"]

