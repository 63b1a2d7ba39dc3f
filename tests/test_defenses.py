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


# --- Lipschitz VAEs and certificates. ---


def lipschitz_model(digits, epochs=5, **kwargs):
    from vaekeras import defenses

    keras.utils.set_random_seed(0)
    model = defenses.build_lipschitz_vae(
        (8, 8, 1), latent_dim=3, hidden_units=(32,), seed=0,
        decoder_lipschitz=4.0, **kwargs,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(digits[0][:512], epochs=epochs, batch_size=64, verbose=0)
    return model


@pytest.mark.backends
def test_a_trained_conv_lipschitz_vae_keeps_its_budgets(digits):
    """SpectralNorm normalises the convolution operator itself, so the
    certified constants of a conv Lipschitz VAE match its budgets."""
    from vaekeras import defenses
    from vaekeras.layers import SpectralNorm
    from vaekeras.layers import linear_part

    model = lipschitz_model(
        digits, epochs=3, architecture="conv", conv_filters=(8, 16),
        encoder_lipschitz=1.0,
    )
    for part in (model.encoder, model.decoder):
        for layer in part.layers:
            if not isinstance(layer, SpectralNorm) or isinstance(
                layer.layer, keras.layers.Dense
            ):
                continue
            kernel, _ = layer.normalized_kernel()
            shape = tuple(layer.input.shape[1:])
            matrix = linear_map_matrix(
                lambda e, layer=layer, kernel=kernel: linear_part(
                    layer.layer, e, kernel
                ), shape,
            )
            # The operator's exact norm is the layer's budget, to within
            # what 5 power steps per training call track.
            np.testing.assert_allclose(
                np.linalg.norm(matrix.astype("float64"), 2),
                layer.lipschitz, rtol=0.05,
            )
    constants = defenses.lipschitz_constants(model)
    # Products of per-layer bounds (each at most 11% above its norm).
    assert 0.5 < constants["encoder_mean"] <= 1.0 * 1.11 ** 3
    assert 0.5 < constants["decoder"] <= 4.0 / 4 * 1.11 ** 3


def linear_map_matrix(apply, shape):
    """The matrix of a linear map of `shape` inputs, column by column."""
    columns = []
    for i in range(int(np.prod(shape))):
        e = np.zeros((1, *shape), "float32")
        e.flat[i] = 1.0
        columns.append(to_numpy(apply(e)).ravel())
    return np.stack(columns, axis=1)


def test_layer_norms_are_upper_bounds_close_to_the_singular_values():
    from vaekeras import defenses
    from vaekeras.layers import linear_part

    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(50)
    dense.build((None, 30))
    exact = np.linalg.norm(to_numpy(dense.kernel).astype("float64"), 2)
    bound = defenses.operator_norm(dense, (None, 30))
    assert exact <= bound <= exact * (1 + 1e-8)
    for layer, shape in (
        (keras.layers.Conv2D(4, 3, strides=2, padding="same"), (8, 8, 2)),
        (keras.layers.Conv2D(3, 3, padding="valid"), (7, 6, 2)),
        (keras.layers.Conv2D(5, 4, padding="same"), (6, 6, 3)),
        (keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
         (4, 4, 2)),
        (keras.layers.Conv2DTranspose(2, 4, strides=2, padding="valid"),
         (3, 5, 3)),
    ):
        layer.build((None, *shape))
        matrix = linear_map_matrix(
            lambda e, layer=layer: linear_part(layer, e, layer.kernel), shape
        )
        exact = np.linalg.norm(matrix.astype("float64"), 2)
        bound = defenses.operator_norm(layer, (None, *shape))
        estimate = defenses.operator_norm(layer, (None, *shape), bound=False)
        # The bound is above the operator's norm (float32 matrix entries:
        # 1e-6 slack), never far above; power iteration is close below.
        assert bound >= exact * (1 - 1e-6), (layer.name, bound, exact)
        assert bound <= 1.5 * exact, (layer.name, bound, exact)
        np.testing.assert_allclose(estimate, exact, rtol=1e-4)


def test_power_iteration_warns_at_its_cap(monkeypatch):
    from vaekeras.defenses import certificates

    monkeypatch.setattr(certificates, "_POWER_MAX_ITERATIONS", 2)
    layer = keras.layers.Dense(40)
    layer.build((None, 40))
    with pytest.warns(RuntimeWarning, match="cap of 2 steps"):
        certificates.operator_norm(layer, (None, 40), bound=False)


def test_activations_multiply_into_the_layer_constants():
    from vaekeras import defenses

    keras.utils.set_random_seed(0)
    # Activations multiply in: sigmoid's slope is at most 1/4.
    sig = keras.layers.Dense(50, activation="sigmoid")
    sig.build((None, 30))
    np.testing.assert_allclose(
        defenses.layer_lipschitz(sig, (None, 30)),
        0.25 * np.linalg.norm(to_numpy(sig.kernel), 2), rtol=1e-6,
    )
    with pytest.raises(ValueError, match="gelu"):
        gelu = keras.layers.Dense(5, activation="gelu")
        gelu.build((None, 3))
        defenses.layer_lipschitz(gelu, (None, 3))


@pytest.mark.backends
def test_spectral_norm_keeps_the_kernel_normalised_while_training(tmp_path):
    from vaekeras.layers import SpectralNorm

    keras.utils.set_random_seed(0)
    inputs = keras.Input((20,))
    wrapped = SpectralNorm(keras.layers.Dense(30), lipschitz=2.0)
    model = keras.Model(inputs, keras.layers.Dense(1)(wrapped(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = np.random.default_rng(0).random((256, 20)).astype("float32")
    model.fit(x, x[:, :1] * 3.0, epochs=3, batch_size=32, verbose=0)
    kernel, _ = wrapped.normalized_kernel()
    # The kernel the layer computes with has norm `lipschitz`, on every
    # backend (Keras' SpectralNormalization loses this on JAX).
    np.testing.assert_allclose(
        np.linalg.norm(to_numpy(kernel), 2), 2.0, rtol=1e-2
    )
    path = str(tmp_path / "sn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(loaded(x[:4])), to_numpy(model(x[:4])), atol=1e-6
    )
    with pytest.raises(ValueError, match="lipschitz=0"):
        SpectralNorm(keras.layers.Dense(3), lipschitz=0)
    with pytest.raises(ValueError, match="layer"):
        SpectralNorm(keras.layers.Flatten())


def test_certified_radius_is_sound_against_reconstruction_pgd(digits):
    from vaekeras import attacks
    from vaekeras import defenses

    model = lipschitz_model(digits)
    constants = defenses.lipschitz_constants(model)
    # Built to be Lipschitz: each constant is its budget, up to the power
    # vector's lag.
    np.testing.assert_allclose(
        [constants["encoder_mean"], constants["encoder_std"],
         constants["decoder"]], [1.0, 0.25, 1.0], rtol=0.05,
    )
    x, r = digits[1][:32], 0.5
    radius = defenses.certified_radius(model, x, r)
    assert radius.shape == (32,)
    np.testing.assert_allclose(
        radius, r / (constants["decoder"] * constants["encoder_mean"])
    )

    def largest_change(eps):
        x_adv = attacks.LatentPGD(
            model, eps=eps, objective="reconstruction", max_iter=50, seed=0
        ).generate(x)
        change = to_numpy(model.reconstruct(x_adv)) - to_numpy(
            model.reconstruct(x)
        )
        return np.linalg.norm(change.reshape(len(x), -1), axis=1).max()

    # No attack inside the certified radius moves the reconstruction by r;
    # the same attack at 5x the radius does, so the check has teeth.
    assert largest_change(float(radius[0])) <= r
    assert largest_change(5 * float(radius[0])) > r


def test_probabilistic_certificate_holds_with_its_probability(digits):
    from statistics import NormalDist

    from vaekeras import attacks
    from vaekeras import defenses

    model = lipschitz_model(digits)
    constants = defenses.lipschitz_constants(model)
    x, r, p = digits[1][:16], 0.5, 0.9
    radius = defenses.certified_radius(model, x, r, probability=p)
    t = NormalDist().inv_cdf((1 + p ** (1 / 3)) / 2)
    np.testing.assert_allclose(radius, r / (constants["decoder"] * (
        constants["encoder_mean"] + t * constants["encoder_std"]
    )))
    assert radius[0] < defenses.certified_radius(model, x, r)[0]
    # Monte Carlo: the coupled stochastic reconstructions of x and of a
    # reconstruction attack at the radius stay within r for >= p of draws.
    x_adv = attacks.LatentPGD(
        model, eps=float(radius[0]), objective="reconstruction", seed=0
    ).generate(x)
    (mean, log_var), (mean_a, log_var_a) = (
        [to_numpy(t) for t in model.encode(v)] for v in (x, x_adv)
    )
    noise = np.random.default_rng(0).normal(size=(200, *mean.shape))
    inside = []
    for e in noise.astype("float32"):
        a = to_numpy(model.decode(mean + np.exp(0.5 * log_var) * e))
        b = to_numpy(model.decode(mean_a + np.exp(0.5 * log_var_a) * e))
        inside.append(
            np.linalg.norm((a - b).reshape(len(x), -1), axis=1) <= r
        )
    assert np.mean(inside) >= p


@pytest.mark.parametrize("kwargs, match", [
    ({"r": 0.0}, "r=0.0"),
    ({"r": float("nan")}, "r=nan"),
    ({"r": 1.0, "probability": 1.0}, "probability=1.0"),
    ({"r": 1.0, "x": np.full((2, 8, 8, 1), 2.0, "float32")}, "max=2"),
])
def test_certified_radius_rejects_bad_input(kwargs, match, digits):
    from vaekeras import defenses

    model = defenses.build_lipschitz_vae(
        (8, 8, 1), latent_dim=3, hidden_units=(16,)
    )
    kwargs.setdefault("x", digits[1][:2])
    with pytest.raises(ValueError, match=match):
        defenses.certified_radius(model, **kwargs)


def test_lipschitz_vae_requires_lipschitz_parts():
    from vaekeras.defenses import LipschitzVAE

    plain = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,))
    with pytest.raises(ValueError, match="not spectrally normalised"):
        LipschitzVAE(plain.encoder, plain.decoder)


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


@pytest.mark.backends
def test_lipschitz_vae_trains_and_round_trips(digits, tmp_path):
    from vaekeras import defenses

    model = lipschitz_model(digits, epochs=1, max_std=0.5)
    path = str(tmp_path / "lip.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, defenses.LipschitzVAE)
    assert loaded.max_std == 0.5
    x = digits[1][:4]
    np.testing.assert_allclose(
        to_numpy(loaded.reconstruct(x)), to_numpy(model.reconstruct(x)),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        defenses.certified_radius(loaded, x, 1.0),
        defenses.certified_radius(model, x, 1.0), rtol=1e-5,
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
