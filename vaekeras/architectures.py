"""Encoder and decoder builders (functional Keras models).

Every encoder maps images `(B, H, W, C)` to `[z_mean, z_log_var]`, each
`(B, latent_dim)`; every decoder maps `(B, latent_dim)` to logits
`(B, H, W, C)` (the models turn them into pixel means with a sigmoid).
"""

import math

import keras

from vaekeras import checks
from vaekeras import choices
from vaekeras.layers import BoundedLogVariance
from vaekeras.layers import LogVarianceClip
from vaekeras.layers import SpectralNorm

ARCHITECTURES = choices.ARCHITECTURES
DEFAULT_HIDDEN_UNITS = (512, 256)
DEFAULT_CONV_FILTERS = (32, 64)


# "conv64": four 4x4 stride-2 convolutions and a dense layer (Higgins et
# al. 2017; disentanglement_lib's conv_encoder and deconv_decoder).
CONV64_FILTERS = (32, 32, 64, 64)
CONV64_UNITS = 256


def _check_conv64(shape):
    if shape[0] % 16 or shape[1] % 16:
        raise ValueError(
            "Invalid value received for argument `architecture`: 'conv64' "
            "halves the image four times and needs a height and width "
            f"divisible by 16 (64 x 64 images). Received a {shape[0]} x "
            f"{shape[1]} image"
        )


def _conv64_decoder(z, output_shape, make, make_output):
    """Dense 256, dense to a 4 x 4 x 64 map (for 64 x 64 images), then
    4x4 stride-2 transposed convolutions 64-32-32-channels."""
    height, width, channels = output_shape
    h0, w0 = height // 16, width // 16
    z = make(keras.layers.Dense(
        CONV64_UNITS, activation="relu", name="dense_0"
    ))(z)
    z = make(keras.layers.Dense(
        h0 * w0 * CONV64_FILTERS[-1], activation="relu", name="project"
    ))(z)
    z = keras.layers.Reshape((h0, w0, CONV64_FILTERS[-1]))(z)
    for i, n in enumerate(reversed(CONV64_FILTERS[:-1])):
        z = make(keras.layers.Conv2DTranspose(
            n, 4, strides=2, padding="same", activation="relu",
            name=f"deconv_{i}",
        ))(z)
    return make_output(keras.layers.Conv2DTranspose(
        channels, 4, strides=2, padding="same", name="logits"
    ))(z)


def _downsampling(x, filters, kernel, make):
    """One stride-2 ReLU convolution per entry of `filters`, flattened."""
    for i, n in enumerate(filters):
        x = make(keras.layers.Conv2D(
            n, kernel, strides=2, padding="same", activation="relu",
            name=f"conv_{i}",
        ))(x)
    return keras.layers.Flatten()(x)


def _check_args(input_shape, latent_dim, architecture):
    checks.choice("architecture", architecture, ARCHITECTURES)
    checks.positive_int("latent_dim", latent_dim)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(
        isinstance(n, int) and n > 0 for n in input_shape
    ):
        raise ValueError(
            "Invalid value received for argument `input_shape`: expected "
            f"(height, width, channels). Received: input_shape={input_shape!r}"
        )
    return input_shape


def _maker(spectral_norm, lipschitz=1.0):
    """`make(layer)`: the layer, spectrally normalised when asked."""
    if spectral_norm:
        return lambda layer: SpectralNorm(
            layer, lipschitz=lipschitz, name=f"{layer.name}_sn"
        )
    return lambda layer: layer


def build_encoder(
    input_shape,
    latent_dim=16,
    architecture="mlp",
    hidden_units=DEFAULT_HIDDEN_UNITS,
    conv_filters=DEFAULT_CONV_FILTERS,
    spectral_norm=False,
    max_std=None,
    output_lipschitz=1.0,
):
    """Builds an encoder `x -> [z_mean, z_log_var]`.

    Args:
        input_shape: `(H, W, C)` of one image.
        latent_dim: latent size d >= 1.
        architecture: `"mlp"` (dense ReLU layers of `hidden_units`),
            `"conv"` (one stride-2 3x3 ReLU Conv2D per `conv_filters`) or
            `"conv64"` (Higgins et al.'s 64 x 64 encoder: 4x4 stride-2
            convolutions 32-32-64-64 and a dense layer of 256; it ignores
            `hidden_units` and `conv_filters`).
        hidden_units: dense layer sizes (the conv encoder uses the first one
            after flattening).
        conv_filters: filters of the stride-2 convolutions.
        spectral_norm: wrap every Dense and convolution in
            `vaekeras.layers.SpectralNorm` (Lipschitz VAEs).
        max_std: None (default) for a free log-variance head, or a bound
            on the standard deviation (`vaekeras.layers.BoundedLogVariance`).
        output_lipschitz: with `spectral_norm`, the spectral norm of the
            output layers (the other layers get 1), so the whole map's
            Lipschitz bound is this number times the activations' slopes.

    Returns:
        A `keras.Model` named `"encoder"`; its log-variance is clamped.

    Raises:
        ValueError: for a bad shape, latent size or architecture.

    Examples:
        >>> encoder = build_encoder((28, 28, 1), latent_dim=8)
        >>> [t.shape for t in encoder(np.zeros((2, 28, 28, 1)))]
        [TensorShape([2, 8]), TensorShape([2, 8])]
    """
    input_shape = _check_args(input_shape, latent_dim, architecture)
    make = _maker(spectral_norm)
    x = inputs = keras.Input(input_shape, name="image")
    if architecture == "conv64":
        _check_conv64(input_shape)
        x = _downsampling(x, CONV64_FILTERS, 4, make)
        units = (CONV64_UNITS,)
    elif architecture == "conv":
        x = _downsampling(x, conv_filters, 3, make)
        units = tuple(hidden_units)[:1]
    else:
        x = keras.layers.Flatten()(x)
        units = tuple(hidden_units)
    for i, n in enumerate(units):
        x = make(
            keras.layers.Dense(n, activation="relu", name=f"dense_{i}")
        )(x)
    make_head = _maker(spectral_norm, output_lipschitz)
    z_mean = make_head(keras.layers.Dense(latent_dim, name="z_mean"))(x)
    z_log_var = make_head(
        keras.layers.Dense(latent_dim, name="z_log_var_raw")
    )(x)
    if max_std is None:
        z_log_var = LogVarianceClip(name="z_log_var")(z_log_var)
    else:
        z_log_var = BoundedLogVariance(max_std, name="z_log_var")(z_log_var)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_decoder(
    output_shape,
    latent_dim=16,
    architecture="mlp",
    hidden_units=DEFAULT_HIDDEN_UNITS,
    conv_filters=DEFAULT_CONV_FILTERS,
    spectral_norm=False,
    output_lipschitz=1.0,
):
    """Builds a decoder `z -> logits`, the mirror of `build_encoder`.

    The conv decoder starts from the encoder's last feature map (spatial
    size `ceil(H / 2**n)`), doubles it with each Conv2DTranspose and crops
    to `(H, W)`, so any image size works (8x8 and 28x28 need no crop).

    Args:
        output_shape: `(H, W, C)` of one image.
        latent_dim: as in `build_encoder`, as are `architecture`,
            `hidden_units`, `conv_filters`, `spectral_norm` and
            `output_lipschitz`.

    Returns:
        A `keras.Model` named `"decoder"` that outputs logits `(B, H, W, C)`.

    Raises:
        ValueError: for a bad shape, latent size or architecture.
    """
    output_shape = _check_args(output_shape, latent_dim, architecture)
    height, width, channels = output_shape
    make = _maker(spectral_norm)
    z = inputs = keras.Input((latent_dim,), name="z")
    if architecture == "conv64":
        _check_conv64(output_shape)
        z = _conv64_decoder(z, output_shape, make, _maker(
            spectral_norm, output_lipschitz
        ))
    elif architecture == "conv":
        filters = tuple(conv_filters)
        scale = 2 ** len(filters)
        h0, w0 = math.ceil(height / scale), math.ceil(width / scale)
        for i, n in enumerate(tuple(hidden_units)[:1]):
            z = make(keras.layers.Dense(
                n, activation="relu", name=f"dense_{i}"
            ))(z)
        z = make(keras.layers.Dense(
            h0 * w0 * filters[-1], activation="relu", name="project"
        ))(z)
        z = keras.layers.Reshape((h0, w0, filters[-1]))(z)
        for i, n in enumerate(reversed(filters)):
            z = make(keras.layers.Conv2DTranspose(
                n, 3, strides=2, padding="same", activation="relu",
                name=f"deconv_{i}",
            ))(z)
        z = _maker(spectral_norm, output_lipschitz)(
            keras.layers.Conv2D(channels, 3, padding="same", name="logits")
        )(z)
        crop_h, crop_w = h0 * scale - height, w0 * scale - width
        if crop_h or crop_w:
            z = keras.layers.Cropping2D(((0, crop_h), (0, crop_w)))(z)
    else:
        for i, n in enumerate(reversed(tuple(hidden_units))):
            z = make(keras.layers.Dense(
                n, activation="relu", name=f"dense_{i}"
            ))(z)
        z = _maker(spectral_norm, output_lipschitz)(
            keras.layers.Dense(height * width * channels, name="logits")
        )(z)
        z = keras.layers.Reshape(output_shape)(z)
    return keras.Model(inputs, z, name="decoder")
