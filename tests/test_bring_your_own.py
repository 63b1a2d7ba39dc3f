"""A VAE written as keras-io writes one, and a pair of functions, go
through the protocol, the attacks and the geometry unchanged."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from keras import ops

import vaekeras
from vaekeras import geometry
from vaekeras import latent

pytestmark = pytest.mark.usefixtures("tf_only")


class Sampling(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        noise = keras.random.normal(
            ops.shape(z_mean), seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * noise


class KerasIoVAE(keras.Model):
    """keras-io's VAE example, reduced to 8x8 digits."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(
                keras.losses.binary_crossentropy(data, reconstruction),
                axis=(1, 2),
            ))
            kl = -0.5 * (
                1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
            )
            loss = reconstruction_loss + ops.mean(ops.sum(kl, axis=1))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(loss)
        return {"loss": self.total_loss_tracker.result()}


def keras_io_vae(last_activation="sigmoid", latent_dim=2):
    inputs = keras.Input((8, 8, 1))
    h = layers.Dense(32, activation="relu")(layers.Flatten()(inputs))
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")
    z_in = keras.Input((latent_dim,))
    g = layers.Dense(32, activation="relu")(z_in)
    g = layers.Dense(64, activation=last_activation)(g)
    decoder = keras.Model(z_in, layers.Reshape((8, 8, 1))(g), name="decoder")
    return KerasIoVAE(encoder, decoder)


@pytest.fixture(scope="module")
def trained_keras_io(digits):
    keras.utils.set_random_seed(0)
    vae = keras_io_vae()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(digits[0], epochs=3, batch_size=128, verbose=0)
    return vae


def test_a_keras_io_vae_is_evaluated_unchanged(trained_keras_io, digits):
    x = digits[1][:12]
    vae = trained_keras_io
    result = vaekeras.evaluate_robustness(
        vae, x, [0.5, 1.0], pgd_iter=5, restarts=1, square_queries=20,
        seed=0,
    )
    assert result["worst_damage"].shape == (2, 12)
    assert np.isfinite(result["area"]) and result["area"] > 0
    # Its reconstruction is dec(z_mean): the decoder on the mean code.
    z_mean = vae.encoder(x)[0]
    np.testing.assert_allclose(
        latent.LatentModel.of(vae).reconstruct_numpy(x),
        keras.ops.convert_to_numpy(vae.decoder(z_mean)), atol=1e-6,
    )
    spectrum = geometry.eigenspectrum(vae, x, k=2)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(spectrum[0])))
    attack = vaekeras.attacks.make_attack("eigen_output", vae, eps=1.0)
    assert attack.generate(x).shape == x.shape


def test_logits_are_recognised_or_declared(digits):
    x = digits[1][:4]
    vae = keras_io_vae(last_activation=None)  # linear: logits
    z_mean = vae.encoder(x)[0]
    expected = keras.ops.convert_to_numpy(
        keras.ops.sigmoid(vae.decoder(z_mean))
    )
    for model in (vae, vaekeras.as_vae(vae, decoder_outputs="logits")):
        np.testing.assert_allclose(
            latent.LatentModel.of(model).reconstruct_numpy(x), expected,
            atol=1e-6,
        )
    unreadable = keras_io_vae(last_activation="relu")
    with pytest.raises(ValueError, match="decoder_outputs='probabilities'"):
        latent.LatentModel.of(unreadable)
    declared = vaekeras.as_vae(unreadable, decoder_outputs="probabilities")
    assert latent.LatentModel.of(declared).reconstruct_numpy(x).shape == (
        x.shape
    )


def test_a_pair_of_functions_is_a_vae(trained_keras_io, digits):
    x = digits[1][:8]
    vae = trained_keras_io
    pair = vaekeras.as_vae(
        encode=lambda images: vae.encoder(images)[:2], decode=vae.decoder
    )
    kw = dict(pgd_iter=3, restarts=1, square_queries=10, seed=0,
              sanity_checks=False)
    from_pair = vaekeras.evaluate_robustness(pair, x, [1.0], **kw)
    from_model = vaekeras.evaluate_robustness(vae, x, [1.0], **kw)
    np.testing.assert_allclose(
        from_pair["worst_damage"], from_model["worst_damage"], rtol=1e-4,
        atol=1e-7,
    )


def test_anything_else_is_told_the_interface(digits):
    with pytest.raises(ValueError, match="keras-io's VAE"):
        vaekeras.evaluate_robustness(object(), digits[1][:2], [1.0])
    encoder_only = keras_io_vae().encoder
    with pytest.raises(ValueError, match="no decoder"):
        vaekeras.evaluate_robustness(encoder_only, digits[1][:2], [1.0])
    with pytest.raises(ValueError, match="`encoder` and `decoder`"):
        vaekeras.as_vae(keras.Sequential())
