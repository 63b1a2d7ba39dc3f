"""What vaekeras takes as a VAE, and how to declare one it cannot read.

`vaekeras.latent.LatentModel` reads a vaekeras VAE, a Keras VAE shaped
like keras-io's example (an `encoder` returning [z_mean, z_log_var] or
[z_mean, z_log_var, z], a `decoder` giving probabilities or logits), a
Keras encoder alone and a SavedModel; `as_vae` declares the rest.
"""

import keras
from keras import ops

from vaekeras import checks

INTERFACE = (
    "vaekeras takes a vaekeras VAE; a Keras model with an `encoder` "
    "returning [z_mean, z_log_var] or [z_mean, z_log_var, z] (keras-io's "
    "VAE) and a `decoder` (or `decode(z)`) giving images; a Keras encoder "
    "alone; a SavedModel with `encode` (and `decode`) endpoints; or "
    "`vaekeras.as_vae(encode=..., decode=...)`, a pair of functions"
)


def equal_shapes(outputs):
    """Whether a Keras encoder's 2 or 3 outputs share one shape."""
    return len(outputs) in (2, 3) and len(
        {tuple(o.shape) for o in outputs}
    ) == 1


DECODER_OUTPUTS = ("auto", "probabilities", "logits")


def _last_activation(decoder):
    """The name of a Keras decoder's last activation, or None."""
    layers = [
        layer for layer in getattr(decoder, "layers", [])
        if getattr(layer, "activation", None) is not None
    ]
    if not layers:
        return None
    return getattr(layers[-1].activation, "__name__", None)


def decoder_function(decoder, decoder_outputs="auto"):
    """`z -> pixel means` from a decoder giving probabilities or logits.

    Args:
        decoder: a Keras model or a callable `z -> images`.
        decoder_outputs: `"probabilities"` (e.g. a sigmoid output),
            `"logits"` (a sigmoid is applied) or `"auto"`: read from a
            Keras decoder's last activation (sigmoid or softmax:
            probabilities; linear: logits).

    Raises:
        ValueError: for an unknown `decoder_outputs`, or `"auto"` on a
            decoder whose output cannot be told.
    """
    checks.choice("decoder_outputs", decoder_outputs, DECODER_OUTPUTS)
    if decoder_outputs == "auto":
        activation = _last_activation(decoder)
        if activation in ("sigmoid", "softmax"):
            decoder_outputs = "probabilities"
        elif activation == "linear":
            decoder_outputs = "logits"
        else:
            raise ValueError(
                "Invalid value received for argument `decoder_outputs`: "
                "the decoder's output kind cannot be read from its last "
                f"activation ({activation!r}); declare it: "
                "decoder_outputs='probabilities' or 'logits'. Received: "
                "decoder_outputs='auto'"
            )
    if decoder_outputs == "logits":
        return lambda z: ops.sigmoid(decoder(z))
    return decoder


class DeclaredVAE:
    """A model vaekeras could not read by itself, declared: an encoder
    and a decoder (see `as_vae`)."""

    def __init__(self, encode, decode):
        self.encode = encode
        self.decode = decode


def as_vae(model=None, *, encode=None, decode=None, decoder_outputs="auto"):
    """Declares a VAE that vaekeras cannot read by itself.

    Every function that takes a model (`evaluate_robustness`, the
    attacks, the geometry) reads a vaekeras VAE and a Keras VAE shaped
    like keras-io's example unaided; `as_vae` declares the rest: a Keras
    VAE whose decoder's output kind cannot be read, or a pair of
    functions.

    Args:
        model: a Keras model with `encoder` (returning [z_mean,
            z_log_var] or [z_mean, z_log_var, z]) and `decoder`; or None
            with `encode` given.
        encode: `x -> [z_mean, z_log_var]` (or three outputs), a Keras
            model or a function, when `model` is None.
        decode: `z -> images` (optional: the geometry needs no decoder).
        decoder_outputs: what the decoder gives: `"probabilities"`
            (pixel means in [0, 1]), `"logits"` (a sigmoid is applied) or
            `"auto"` (read from a Keras decoder's last activation; a
            plain function is taken to give probabilities).

    Returns:
        A `DeclaredVAE`, accepted wherever a model is.

    Raises:
        ValueError: for a model without `encoder` and `decoder`, or
            neither `model` nor `encode`.

    Examples:
        >>> vae = as_vae(my_vae, decoder_outputs="logits")
        >>> vaekeras.evaluate_robustness(vae, x, [0.5, 1.0])
        >>> pair = as_vae(encode=my_encode, decode=my_decode)
    """
    if model is not None:
        encode = getattr(model, "encoder", None)
        decode = getattr(model, "decoder", None)
        if encode is None or decode is None:
            raise ValueError(
                "Invalid value received for argument `model`: expected a "
                "model with `encoder` and `decoder` attributes. " + INTERFACE
                + f". Received: model={type(model).__name__}"
            )
    if encode is None or not callable(encode):
        raise ValueError(
            "Invalid value received for argument `encode`: expected a "
            f"function x -> [z_mean, z_log_var]. Received: encode={encode!r}"
        )
    if decode is not None:
        if decoder_outputs == "auto" and not isinstance(decode, keras.Model):
            decoder_outputs = "probabilities"
        decode = decoder_function(decode, decoder_outputs)
    return DeclaredVAE(encode, decode)


def decoder_of(model):
    """A Keras VAE's decoder: its `decode(z)`, else its `decoder` model
    (probabilities or logits, as `decoder_function` reads them), else
    None."""
    if callable(getattr(model, "decode", None)):
        return model.decode
    decoder = getattr(model, "decoder", None)
    if decoder is None:
        return None
    return decoder_function(decoder)


