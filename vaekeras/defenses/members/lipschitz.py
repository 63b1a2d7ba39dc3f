"""Lipschitz VAEs: every layer's Lipschitz constant bounded, certifiably.

Barrett, Camuto, Willetts, Rainforth, "Certifiably robust variational
autoencoders" (AISTATS 2022). The certificate itself is in
`vaekeras.defenses.certificates`.
"""

import keras

from vaekeras import architectures
from vaekeras import checks
from vaekeras.defenses import certificates
from vaekeras.defenses import registry
from vaekeras.defenses.options import Option
from vaekeras.layers import BoundedLogVariance
from vaekeras.models import VAE

# Declared at module level, before the class, so the registry reads
# them (the train app's flags) without importing a backend.
OPTIONS = (
    Option("max_std", 1.0, "bound on the encoder's std.", checks.positive),
    Option(
        "encoder_lipschitz", 1.0,
        "Lipschitz budget of the encoder mean.", checks.positive,
    ),
    Option(
        "decoder_lipschitz", 10.0,
        "spectral norm of the decoder's logits layer.", checks.positive,
    ),
)


@registry.register("lipschitz", marker="D")
class LipschitzVAE(VAE):
    """A VAE whose encoder and decoder have known Lipschitz constants.

    Barrett, Camuto, Willetts, Rainforth, "Certifiably robust variational
    autoencoders" (AISTATS 2022): constrain every layer's Lipschitz
    constant and bound the encoder's standard deviation, and the smallest
    perturbation that can change the reconstruction by r has a certified
    lower bound (`certified_radius`). Here every Dense and convolution is
    spectrally normalised (`vaekeras.layers.SpectralNorm`), activations
    are ReLU, and sigma = max_std * sigmoid(h) (`BoundedLogVariance`).
    The mean head's spectral norm is `encoder_lipschitz` and the decoder's
    logits layer's `decoder_lipschitz`, every other layer's 1, so for the
    MLP: L_mu <= encoder_lipschitz, L_sigma <= max_std / 4 and L_dec <=
    decoder_lipschitz / 4 (the output sigmoid's slope is at most 1/4; with
    the defaults 1, 0.25 and 2.5). The loss is the beta-VAE's; build one with
    `build_lipschitz_vae`. The model checks at construction that its
    encoder and decoder are built that way.

    Args:
        encoder, decoder: built with `spectral_norm=True` (the encoder
            also with `max_std`).
        Other args: as in `VAE`.

    Raises:
        ValueError: for an encoder or decoder with an unnormalised Dense
            or convolution, or an encoder without a bounded std head.

    Examples:
        >>> model = build_lipschitz_vae((28, 28, 1), latent_dim=16)
        >>> model.compile(optimizer="adam")
        >>> model.fit(images, epochs=5)
        >>> certified_radius(model, images[:100], r=1.0)
    """

    options = OPTIONS

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        for part in (encoder, decoder):
            for layer in part.layers:
                if isinstance(layer, (
                    keras.layers.Dense, keras.layers.Conv2D,
                    keras.layers.Conv2DTranspose,
                )):
                    raise ValueError(
                        "Invalid value received for argument "
                        f"`{part.name}`: layer {layer.name!r} is not "
                        "spectrally normalised; build it with "
                        "spectral_norm=True (see build_lipschitz_vae)."
                    )
        head, _ = certificates.parent(encoder.outputs[1])
        if not isinstance(head, BoundedLogVariance):
            raise ValueError(
                "Invalid value received for argument `encoder`: its "
                "log-variance head must be a BoundedLogVariance layer "
                "(build_encoder(..., max_std=...))."
            )
        # The bound the encoder was built with, whatever was passed.
        self.max_std = head.max_std

    @classmethod
    def networks(cls, input_shape, layout, kwargs):
        # The options shape the networks: spectrally normalised layers
        # within the budgets, a bounded std head.
        for option in cls.options:
            kwargs[option.name] = option.validate(
                kwargs.get(option.name, option.default)
            )
        common = dict(layout, spectral_norm=True)
        encoder = architectures.build_encoder(
            input_shape, max_std=kwargs["max_std"],
            output_lipschitz=kwargs["encoder_lipschitz"], **common,
        )
        decoder = architectures.build_decoder(
            input_shape, output_lipschitz=kwargs["decoder_lipschitz"],
            **common,
        )
        return encoder, decoder


def build_lipschitz_vae(input_shape, **kwargs):
    """Builds a `LipschitzVAE`, ready to compile (`LipschitzVAE.make`).

    The Lipschitz budgets are the knobs of Barrett et al.'s trade-off:
    the certified radius at r is about r / (L_mu L_dec), so smaller
    budgets certify more and reconstruct worse.

    Args:
        input_shape: `(H, W, C)`.
        **kwargs: `latent_dim`, `architecture`, `hidden_units`,
            `conv_filters` (see `vaekeras.architectures.build_encoder`),
            the options `max_std` (bound on the encoder's standard
            deviation), `encoder_lipschitz` (spectral norm of the
            encoder's output layers; for the MLP the bound on L_mu) and
            `decoder_lipschitz` (spectral norm of the decoder's logits
            layer; for the MLP L_dec <= decoder_lipschitz / 4), and `VAE`
            arguments.

    Returns:
        A built `LipschitzVAE`.
    """
    return LipschitzVAE.make(input_shape, **kwargs)
