import keras
import numpy as np
import pytest
from helpers import to_numpy
from keras import ops

from vaekeras import VAE
from vaekeras import MixupVAE
from vaekeras import Sampling
from vaekeras import build_vae
from vaekeras import models
from vaekeras.layers import LOG_VAR_MAX


def test_kl_matches_closed_form():
    z_mean = np.array([[0.0, 0.0], [1.0, -2.0]], "float32")
    z_log_var = np.array([[0.0, 0.0], [np.log(4.0), 0.0]], "float32")
    kl = to_numpy(models.kl_divergence(z_mean, z_log_var))
    # 0.5 * (mu^2 + s^2 - log s^2 - 1) summed over dimensions.
    expected = [0.0, 0.5 * (1 + 4 - np.log(4) - 1) + 0.5 * (4 + 1 - 0 - 1)]
    np.testing.assert_allclose(kl, expected, rtol=1e-6)


def test_reconstruction_losses_match_closed_form():
    x = np.array([[[[1.0], [0.0]]]], "float32")  # (1, 1, 2, 1)
    logits = np.array([[[[2.0], [-1.0]]]], "float32")
    p = 1 / (1 + np.exp(-logits.ravel()))
    bce = -np.log(p[0]) - np.log(1 - p[1])
    np.testing.assert_allclose(
        to_numpy(models.reconstruction_loss(x, logits, "bernoulli")), [bce],
        rtol=1e-6,
    )
    sse = (1 - p[0]) ** 2 + p[1] ** 2
    np.testing.assert_allclose(
        to_numpy(models.reconstruction_loss(x, logits, "gaussian")), [sse],
        rtol=1e-6,
    )


def _fixed_vae(beta, cls=VAE, **kwargs):
    """A VAE whose encoder outputs known constants: mu = 1, log var = 0."""
    keras.utils.set_random_seed(0)
    model = build_vae((2, 2, 1), latent_dim=2, hidden_units=(4,), beta=beta)
    enc = model.encoder
    for layer in enc.layers:
        if layer.weights:
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    enc.get_layer("z_mean").set_weights(
        [np.zeros((4, 2), "float32"), np.ones(2, "float32")]
    )
    if cls is MixupVAE:
        model = MixupVAE(model.encoder, model.decoder, beta=beta, **kwargs)
    return model


@pytest.mark.backends
def test_loss_is_reconstruction_plus_beta_times_known_kl():
    x = np.full((3, 2, 2, 1), 0.5, "float32")
    losses = {}
    for beta in (0.0, 1.0, 3.0):
        model = _fixed_vae(beta)
        loss = float(to_numpy(model.compute_loss(x)))
        recon = float(to_numpy(model.reconstruction_loss_tracker.result()))
        kl = float(to_numpy(model.kl_loss_tracker.result()))
        np.testing.assert_allclose(kl, 2 * 0.5 * 1.0, rtol=1e-6)  # mu=1, s=1
        np.testing.assert_allclose(loss, recon + beta * kl, rtol=1e-6)
        losses[beta] = (loss, recon)
    # beta scales only the KL term: the reconstruction term is unchanged.
    assert losses[0.0][1] == pytest.approx(losses[3.0][1], rel=1e-6)
    assert losses[3.0][0] - losses[1.0][0] == pytest.approx(2.0, rel=1e-5)


def test_mixup_consistency_is_zero_when_lambda_is_one(rng):
    model = build_vae((8, 8, 1), latent_dim=3, mixup_alpha=0.5, seed=0)
    x = rng.uniform(size=(6, 8, 8, 1)).astype("float32")
    z_mean, _ = model.encode(x)
    partner = ops.convert_to_tensor([5, 4, 3, 2, 1, 0])
    nelbo, consistency = model.mixup_terms(x, z_mean, 1.0, partner)
    np.testing.assert_allclose(to_numpy(consistency), 0.0, atol=1e-10)
    _, consistency = model.mixup_terms(x, z_mean, 0.5, partner)
    assert np.all(to_numpy(consistency) > 0)  # the encoder is not linear


def test_mixup_loss_is_reported(digits):
    model = build_vae((8, 8, 1), latent_dim=2, mixup_alpha=0.5, seed=0)
    model.compile(optimizer="adam")
    history = model.fit(digits[0][:64], batch_size=32, epochs=1, verbose=0)
    assert set(history.history) >= {
        "loss", "reconstruction_loss", "kl_loss", "mixup_loss"
    }
    h = {k: v[-1] for k, v in history.history.items()}
    # loss = recon + beta * KL + mixup, epoch means of the same batches.
    assert h["loss"] == pytest.approx(
        h["reconstruction_loss"] + h["kl_loss"] + h["mixup_loss"], rel=1e-4
    )


def test_sampling_is_seeded_and_clamped():
    mean = ops.zeros((4, 3))
    log_var = ops.full((4, 3), 1000.0)
    z = to_numpy(Sampling(seed=3)([mean, log_var]))
    assert np.all(np.isfinite(z))
    assert np.abs(z).max() <= np.exp(0.5 * LOG_VAR_MAX) * 10
    again = to_numpy(Sampling(seed=3)([mean, log_var]))
    np.testing.assert_array_equal(z, again)
    np.testing.assert_array_equal(
        to_numpy(Sampling()([mean, log_var], method="mode")), 0.0
    )


@pytest.mark.backends
@pytest.mark.parametrize("architecture, shape", [
    ("mlp", (28, 28, 1)), ("conv", (28, 28, 1)), ("conv", (8, 8, 1)),
    ("conv", (10, 6, 3)), ("conv64", (64, 64, 1)),
])
def test_architectures_shapes_and_range(architecture, shape, rng):
    model = build_vae(shape, latent_dim=5, architecture=architecture)
    x = rng.uniform(size=(2, *shape)).astype("float32")
    z_mean, z_log_var = model.encode(x)
    assert tuple(z_mean.shape) == (2, 5) == tuple(z_log_var.shape)
    recon = to_numpy(model.reconstruct(x))
    assert recon.shape == (2, *shape)
    assert recon.min() >= 0 and recon.max() <= 1


@pytest.mark.backends
@pytest.mark.parametrize("mixup_alpha", [0.0, 0.5])
def test_keras_round_trip_keeps_outputs_and_training(
    mixup_alpha, digits, tmp_path
):
    keras.utils.set_random_seed(1)
    model = build_vae(
        (8, 8, 1), latent_dim=3, architecture="conv", beta=2.5,
        mixup_alpha=mixup_alpha, seed=4,
    )
    model.compile(optimizer="adam")
    model.fit(digits[0][:64], batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.beta == 2.5 and loaded.seed == 4
    if mixup_alpha:
        assert loaded.mixup_alpha == 0.5
    x = digits[1][:8]
    np.testing.assert_allclose(
        to_numpy(loaded.reconstruct(x)), to_numpy(model.reconstruct(x)),
        atol=1e-6,
    )
    before = to_numpy(loaded.reconstruct(x))
    loaded.fit(digits[0][:64], batch_size=32, epochs=1, verbose=0)
    assert not np.allclose(to_numpy(loaded.reconstruct(x)), before)


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": -1.0}, "beta=-1.0"),
    ({"mixup_alpha": -0.5}, "mixup_alpha=-0.5"),
    ({"latent_dim": 0}, "latent_dim=0"),
    ({"architecture": "resnet"}, "architecture='resnet'"),
    ({"likelihood": "poisson"}, "likelihood='poisson'"),
])
def test_bad_model_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_vae((8, 8, 1), **kwargs)


def test_bad_images_are_refused_by_encode_and_fit(rng):
    model = build_vae((8, 8, 1), latent_dim=2)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"max=255"):
        model.encode(np.full((2, 8, 8, 1), 255.0, "float32"))
    with pytest.raises(ValueError, match=r"x.shape=\(2, 64\)"):
        model.encode(np.zeros((2, 64), "float32"))
    with pytest.raises(ValueError, match="min=-1"):
        model.fit(-np.ones((4, 8, 8, 1), "float32"), epochs=1, verbose=0)
    import tensorflow as tf

    bad = tf.data.Dataset.from_tensor_slices(
        np.full((4, 8, 8, 1), 2.0, "float32")
    ).batch(2)
    with pytest.raises(ValueError, match="max=2"):
        model.fit(bad, epochs=1, verbose=0)


def test_fit_stops_at_a_bad_batch_and_never_shows_the_count(capsys):
    import tensorflow as tf

    model = build_vae((8, 8, 1), latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    good = np.full((4, 8, 8, 1), 0.5, "float32")
    history = model.fit(good, batch_size=2, epochs=1, verbose=1)
    progress = capsys.readouterr().out
    assert "reconstruction_loss" in progress
    assert "invalid_inputs" not in progress
    assert sorted(history.history) == ["kl_loss", "loss", "reconstruction_loss"]

    # The first batch passes the up-front check; the second holds one NaN.
    images = good.copy()
    images[3, 0, 0, 0] = np.nan
    data = tf.data.Dataset.from_tensor_slices(images).batch(2)
    with pytest.raises(
        models.InvalidInputError,
        match=r"training batch 1 of epoch 1 holds 1 pixel values that are "
        r"NaN, inf or outside \[0, 1\]",
    ):
        model.fit(data, epochs=3, verbose=0)
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)


def test_the_64x64_architecture_is_higgins_et_als():
    from vaekeras import architectures

    encoder = architectures.build_encoder(
        (64, 64, 1), latent_dim=10, architecture="conv64"
    )
    decoder = architectures.build_decoder(
        (64, 64, 1), latent_dim=10, architecture="conv64"
    )
    convs = [layer for layer in encoder.layers
             if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [
        (f, (4, 4), (2, 2)) for f in (32, 32, 64, 64)
    ]
    # disentanglement_lib's conv encoder at latent 10: 382,932 weights.
    assert encoder.count_params() == 382_932
    z_mean, z_log_var = encoder(np.zeros((2, 64, 64, 1), "float32"))
    assert z_mean.shape == z_log_var.shape == (2, 10)
    assert decoder(np.zeros((2, 10), "float32")).shape == (2, 64, 64, 1)
    model = build_vae((64, 64, 1), latent_dim=10,
                      architecture="conv64")
    assert model.latent_dim == 10
    with pytest.raises(ValueError, match="divisible by 16"):
        architectures.build_encoder((28, 28, 1), architecture="conv64")
