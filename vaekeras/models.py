"""The beta-VAE, the base of every model vaekeras trains.

`VAE` owns the encoder, decoder and the negative ELBO; the KL term is
weighted by `beta` (beta = 1 is the plain VAE). The defenses
(`vaekeras.defenses`, mixup among them) subclass it, declare their options
(`options`) and add a loss term through the `extra_loss` hook. The loss
lives in `compute_loss`, so Keras' stock `train_step` trains on every
backend.
"""

import typing

import keras
import numpy as np
from keras import ops

from vaekeras import architectures
from vaekeras import backend
from vaekeras import checks
from vaekeras import choices
from vaekeras.layers import Sampling
from vaekeras.layers import clip_log_var
from vaekeras.layers import load_seed_state
from vaekeras.layers import save_seed_state

LIKELIHOODS = choices.LIKELIHOODS


def kl_divergence(z_mean, z_log_var):
    """KL(N(mu, diag sigma^2) || N(0, I)) per sample.

    KL = 0.5 * sum_i (mu_i^2 + sigma_i^2 - log sigma_i^2 - 1).

    Args:
        z_mean: `(B, d)`.
        z_log_var: `(B, d)`, log sigma^2.

    Returns:
        `(B,)` tensor.
    """
    z_log_var = clip_log_var(z_log_var)
    return 0.5 * ops.sum(
        ops.square(z_mean) + ops.exp(z_log_var) - z_log_var - 1.0, axis=-1
    )


def reconstruction_loss(x, logits, likelihood="bernoulli"):
    """Negative log-likelihood of images under the decoder, per sample.

    - `"bernoulli"`: binary cross-entropy of `x` against `sigmoid(logits)`,
      summed over pixels (the exact Bernoulli NLL for x in {0, 1}).
    - `"gaussian"`: sum of squared errors between `x` and
      `sigmoid(logits)`, the Gaussian NLL with fixed variance 1/2 up to an
      additive constant.

    Args:
        x: images `(B, H, W, C)` in [0, 1].
        logits: decoder outputs `(B, H, W, C)`.
        likelihood: `"bernoulli"` or `"gaussian"`.

    Returns:
        `(B,)` tensor.
    """
    x = ops.reshape(x, (ops.shape(x)[0], -1))
    logits = ops.reshape(logits, (ops.shape(logits)[0], -1))
    if likelihood == "bernoulli":
        # Stable form of -x log s(l) - (1 - x) log(1 - s(l)).
        per_pixel = (
            ops.relu(logits) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
        )
    else:
        per_pixel = ops.square(x - ops.sigmoid(logits))
    return ops.sum(per_pixel, axis=-1)


def check_images(x, image_shape, argument="x"):
    """Raises a `ValueError` unless `x` is a batch of images in [0, 1].

    The rank and per-image shape are checked for any tensor; the value range
    only for concrete numpy arrays (symbolic tensors have no values).
    """
    checks.batch_shape(x, image_shape, argument)
    checks.pixel_range(x, argument)


class Encoding(typing.NamedTuple):
    """What the encoder gave for a batch: the posterior and one sample."""

    z_mean: typing.Any  # (B, d)
    z_log_var: typing.Any  # (B, d)
    z: typing.Any  # (B, d), drawn by the model's seeded sampler


INVALID_INPUTS = "invalid_inputs"


def screen_batch(x):
    """`(x with bad values zeroed, number of bad values)` for a batch.

    Bad values are NaN, inf or outside [0, 1]. Runs inside the compiled
    train and test steps on every batch (a few elementwise ops), so a bad
    batch anywhere in a data set is counted and cannot corrupt the weights.
    """
    # NaN fails both comparisons and inf one of them: two compares suffice.
    good = ops.logical_and(ops.greater_equal(x, 0.0), ops.less_equal(x, 1.0))
    bad = ops.sum(1.0 - ops.cast(good, "float32"))
    return ops.where(good, x, 0.0), bad


def track(tracker, batch_mean, x):
    """Adds a batch's mean to a `keras.metrics.Mean`, weighted by the
    batch's images as Keras weighs `loss`, so a short last batch counts
    for its images in the epoch's mean."""
    tracker.update_state(
        batch_mean, sample_weight=ops.cast(ops.shape(x)[0], "float32")
    )


class InvalidInputError(ValueError):
    """Training data held NaN, inf or pixel values outside [0, 1]."""


class InvalidInputGuard(keras.callbacks.Callback):
    """Stops `fit` at the first batch with NaN, inf or out-of-range pixels.

    Reads the count `screen_batch` keeps (the `invalid_inputs` entry of the
    batch logs) and takes it out of the logs, so progress bars, History and
    TensorBoard show only the losses. `VAE.fit` adds one unless the
    callbacks already hold one; `problem` then says where the first bad
    batch was, or is None.
    """

    problem = None
    epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, where, batch, logs):
        count = (logs or {}).pop(INVALID_INPUTS, 0)
        if count and self.problem is None:
            self.problem = (
                f"{where} batch {batch} of epoch {self.epoch + 1} holds "
                f"{int(count)} pixel values that are NaN, inf or outside "
                "[0, 1]"
            )
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._check("training", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._check("validation", batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for name in (INVALID_INPUTS, "val_" + INVALID_INPUTS):
            (logs or {}).pop(name, None)

    on_test_end = on_epoch_end


@keras.saving.register_keras_serializable(package="vaekeras")
class VAE(keras.Model):
    """Beta-VAE with a diagonal Gaussian posterior and a N(0, I) prior.

    Loss per sample: `reconstruction_loss + beta * kl_loss`, both summed
    over pixels and latent dimensions; the reported losses are averages
    over the batch. The metrics `loss`, `reconstruction_loss` and
    `kl_loss` show in `fit` and `evaluate`. Pixel values that are NaN, inf
    or outside [0, 1] are zeroed before use and counted; `fit` stops at the
    first batch that holds any and raises `InvalidInputError` (see
    `InvalidInputGuard`).

    Args:
        encoder: Keras model `x (B, H, W, C) -> [z_mean, z_log_var]`.
        decoder: Keras model `z (B, d) -> logits (B, H, W, C)`.
        beta: weight of the KL term, >= 0. Defaults to 1 (plain VAE).
        likelihood: `"bernoulli"` (default) or `"gaussian"`; see
            `reconstruction_loss`.
        seed: int or None, seed of the posterior sampler.
        **kwargs: a subclass's `options` (each set as an attribute, after
            its check; defaults filled in), then base `keras.Model`
            arguments.

    Raises:
        ValueError: for a negative beta or an unknown likelihood.

    Examples:
        >>> model = build_vae((28, 28, 1), latent_dim=8, beta=4.0)
        >>> model.compile(optimizer="adam")
        >>> model.fit(images, epochs=1)
        >>> z_mean, z_log_var = model.encode(images[:4])
    """

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        likelihood="bernoulli",
        seed=None,
        **kwargs,
    ):
        declared = {option.name for option in self.options}
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in declared}
        super().__init__(**kwargs)
        checks.choice("likelihood", likelihood, LIKELIHOODS)
        # === Layers ===
        self.encoder = encoder
        self.decoder = decoder
        self.sampler = Sampling(seed=seed, name="sampling")
        # === Metrics (reset by Keras each epoch) ===
        self.reconstruction_loss_tracker = keras.metrics.Mean(
            name="reconstruction_loss"
        )
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        # Bad input values seen this epoch (see `screen_batch`); training
        # stops at the first batch that has any.
        self.invalid_inputs_tracker = keras.metrics.Sum(name=INVALID_INPUTS)
        # === Config ===
        self.beta = checks.non_negative("beta", beta)
        self.likelihood = likelihood
        self.seed = seed
        for option in self.options:
            setattr(self, option.name, option.validate(
                given.get(option.name, option.default)
            ))

    # A subclass's own `keras.random.SeedGenerator` attributes, by name,
    # and the key each state is saved under: saved with the weights, so a
    # resumed or reloaded model continues the same random stream.
    seed_states = {}
    # A defense's options (`vaekeras.defenses.options.Option`), declared
    # once; the beta-VAE has none.
    options = ()
    # Added to `seed` for a defense's own random draws (`stream_seed`), so
    # they never repeat the posterior sampler's; set per defense by
    # `vaekeras.defenses.register`.
    seed_stream = 0
    # Whether the constructor takes the training set size (`make`).
    needs_dataset_size = False

    def stream_seed(self):
        """The seed of this model's own draws: `seed + seed_stream`."""
        return None if self.seed is None else self.seed + self.seed_stream

    @classmethod
    def make(
        cls, input_shape, latent_dim=16, architecture="mlp",
        hidden_units=architectures.DEFAULT_HIDDEN_UNITS,
        conv_filters=architectures.DEFAULT_CONV_FILTERS,
        dataset_size=None, **kwargs,
    ):
        """Builds the encoder and decoder, then a built model of `cls`.

        Args:
            input_shape: `(H, W, C)`.
            latent_dim, architecture, hidden_units, conv_filters: see
                `vaekeras.architectures.build_encoder`.
            dataset_size: the training set size, passed on to classes
                whose loss needs it (`needs_dataset_size`).
            **kwargs: the constructor's other arguments.

        Returns:
            The model, called once on zeros so that it is built.
        """
        layout = dict(
            latent_dim=latent_dim, architecture=architecture,
            hidden_units=hidden_units, conv_filters=conv_filters,
        )
        if cls.needs_dataset_size:
            kwargs["dataset_size"] = dataset_size
        encoder, decoder = cls.networks(input_shape, layout, kwargs)
        model = cls(encoder, decoder, **kwargs)
        model(ops.zeros((1, *tuple(input_shape))))
        return model

    @classmethod
    def networks(cls, input_shape, layout, kwargs):
        """`(encoder, decoder)` for `make`; a subclass may build others.

        Args:
            input_shape: `(H, W, C)`.
            layout: `latent_dim`, `architecture`, `hidden_units`,
                `conv_filters`.
            kwargs: the constructor's arguments (a subclass may read its
                options there, and fill in their defaults).
        """
        return (
            architectures.build_encoder(input_shape, **layout),
            architectures.build_decoder(input_shape, **layout),
        )

    def build(self, input_shape=None):
        # The encoder and decoder arrive built; nothing else has weights.
        self.built = True

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for name, key in self.seed_states.items():
            save_seed_state(getattr(self, name), store, key)

    def load_own_variables(self, store):
        keys = set(self.seed_states.values())
        for name, key in self.seed_states.items():
            load_seed_state(getattr(self, name), store, key)
        super().load_own_variables({
            key: store[key] for key in store.keys() if key not in keys
        })

    @property
    def image_shape(self):
        """`(H, W, C)` of the images the encoder takes."""
        return tuple(self.encoder.inputs[0].shape[1:])

    @property
    def latent_dim(self):
        return int(self.encoder.outputs[0].shape[-1])

    def encode(self, x):
        """Returns `(z_mean, z_log_var)`, each `(B, d)`, for images `x`."""
        check_images(x, self.image_shape)
        z_mean, z_log_var = self.encoder(x)
        return z_mean, z_log_var

    def decode(self, z):
        """Returns pixel means `(B, H, W, C)` in [0, 1] for latents `z`."""
        return ops.sigmoid(self.decoder(z))

    def reconstruct(self, x):
        """Deterministic reconstruction: `decode(z_mean(x))`."""
        z_mean, _ = self.encode(x)
        return self.decode(z_mean)

    def call(self, x, training=False):
        z_mean, _ = self.encoder(x, training=training)
        return ops.sigmoid(self.decoder(z_mean, training=training))

    def regularizer(self, kl):
        """The weighted KL term; beta-VAE's only change to the ELBO."""
        return self.beta * kl

    def elbo_terms(self, x, training=False):
        """Per-sample `(reconstruction_loss, kl_loss, encoding)`.

        Uses one posterior sample per input, drawn by the seeded sampler;
        `encoding` is an `Encoding` of the batch.
        """
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampler([z_mean, z_log_var])
        logits = self.decoder(z, training=training)
        recon = reconstruction_loss(x, logits, self.likelihood)  # (B,)
        kl = kl_divergence(z_mean, z_log_var)  # (B,)
        return recon, kl, Encoding(z_mean, z_log_var, z)

    def extra_loss(self, x, encoding, training=False):
        """Scalar added to the loss by subclasses; 0 for the beta-VAE.

        Args:
            x: the (screened) batch `(B, H, W, C)`.
            encoding: the `Encoding` the ELBO used, so a defense never
                runs the encoder a second time.
            training: forwarded to the encoder and decoder.
        """
        return 0.0

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        x, invalid = screen_batch(x)
        self.invalid_inputs_tracker.update_state(invalid)
        recon, kl, encoding = self.elbo_terms(x, training=training)
        recon, kl = ops.mean(recon), ops.mean(kl)
        track(self.reconstruction_loss_tracker, recon, x)
        track(self.kl_loss_tracker, kl, x)
        loss = recon + self.regularizer(kl)
        loss = loss + self.extra_loss(x, encoding, training=training)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return backend.scale_for_replicas(loss)

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, after checking the images' shape and range.

        A `tf.data.Dataset` is read in its own order (`shuffle` defaults to
        False for it: Keras cannot shuffle a dataset and warns when asked
        to; `vaekeras.data.load_dataset` already shuffles every epoch).

        Raises:
            InvalidInputError: a batch held NaN, inf or pixel values
                outside [0, 1]; training stopped after that batch (its bad
                values were zeroed, so the weights stay finite).
        """
        if hasattr(x, "element_spec") and not args:
            kwargs.setdefault("shuffle", False)
        self._check_training_data(x, "x")
        validation = kwargs.get("validation_data")
        if validation is not None:
            self._check_training_data(validation, "validation_data")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        guard = next(
            (c for c in callbacks if isinstance(c, InvalidInputGuard)), None
        )
        if guard is None:
            # First, so every later callback sees logs without the count.
            guard = InvalidInputGuard()
            callbacks.insert(0, guard)
        history = super().fit(x, y, *args, callbacks=callbacks, **kwargs)
        if guard.problem is not None:
            raise InvalidInputError(f"Invalid training data: {guard.problem}.")
        return history

    def _check_training_data(self, data, argument):
        if hasattr(data, "element_spec"):  # tf.data.Dataset
            for batch in data.take(1):
                batch = batch[0] if isinstance(batch, tuple) else batch
                check_images(np.asarray(batch), self.image_shape, argument)
        elif data is not None and hasattr(data, "shape"):
            check_images(data, self.image_shape, argument)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "likelihood": self.likelihood,
            "seed": self.seed,
            **{
                option.name: option.spell(getattr(self, option.name))
                for option in self.options
            },
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
