"""Lipschitz VAEs: their layer bounds, spectral norms and certificates."""

import keras
import numpy as np
import pytest
from helpers import to_numpy

from vaekeras import build_vae
from vaekeras import defenses


def lipschitz_model(digits, epochs=5, **kwargs):
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



@pytest.mark.backends
def test_lipschitz_vae_trains_and_round_trips(digits, tmp_path):
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


def test_the_empirical_margin_never_undercuts_the_certified_radius(digits):
    """No attack reaches r inside the certified radius: the smallest
    budget at which APGD does is at least the radius (soundness), and on
    a plain VAE it is reached at all, inside the bisection's bracket."""
    from vaekeras import defenses
    from vaekeras.attacks import margin as margin_module

    keras.utils.set_random_seed(0)
    model = defenses.build_lipschitz_vae(
        (8, 8, 1), latent_dim=3, hidden_units=(32,), seed=0,
        decoder_lipschitz=8.0,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(digits[0][:512], epochs=3, batch_size=64, verbose=0)
    x = digits[1][:8]
    radius = defenses.certified_radius(model, x, r=0.5)
    margin = margin_module.empirical_margin(model, x, 0.5, iterations=10)
    assert margin.shape == (8,)
    assert np.all(margin >= radius)
    finite = margin[np.isfinite(margin)]
    assert len(finite) > 0
    assert np.all((finite > margin_module.LOW) & (finite <= 16.0))
    # Bisection, not a coarse grid: the images' margins differ.
    assert len(finite) < 2 or len(set(finite)) > 1


def test_a_certified_radius_below_one_pixel_step_is_vacuous():
    from vaekeras.attacks.margin import non_vacuous

    assert not non_vacuous(0.00102)  # beta 1's radius, 1/255 = 0.0039
    assert not non_vacuous(None)
    assert non_vacuous(0.386)
