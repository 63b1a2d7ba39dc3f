"""Building a defense's model by name, with its options checked."""

from vaekeras import architectures
from vaekeras import checks
from vaekeras.defenses import registry


def build_defended_vae(
    input_shape,
    defense="none",
    latent_dim=16,
    architecture="mlp",
    beta=1.0,
    likelihood="bernoulli",
    seed=None,
    dataset_size=None,
    hidden_units=architectures.DEFAULT_HIDDEN_UNITS,
    conv_filters=architectures.DEFAULT_CONV_FILTERS,
    **options,
):
    """Builds the VAE of one registered defense, ready to compile.

    Weights are initialised from Keras' global seed: call
    `keras.utils.set_random_seed` first for reproducible weights; `seed`
    seeds the posterior sampler and the defense's own draws.

    Args:
        input_shape: `(H, W, C)`.
        defense: a registered defense (`vaekeras.defenses.names()`):
            `"none"` (a beta-VAE), `"mixup"`, `"geometry"`, `"lipschitz"`,
            `"adversarial"`, `"tc"` or a user's.
        latent_dim, architecture, hidden_units, conv_filters: see
            `vaekeras.architectures.build_encoder`.
        beta: KL weight >= 0.
        likelihood: `"bernoulli"` or `"gaussian"`.
        seed: int or None.
        dataset_size: training set size, for the TC estimator.
        **options: the defense's options; None keeps a default.

    Returns:
        A built model.

    Raises:
        ValueError: for an unknown defense, an option of another defense,
            or an invalid value (naming it).

    Examples:
        >>> model = build_defended_vae((28, 28, 1), "adversarial", adv_eps=0.5)
    """
    defense, options = registry.resolve(defense, options)
    return registry.get(defense).cls.make(
        input_shape, latent_dim=latent_dim, architecture=architecture,
        hidden_units=hidden_units, conv_filters=conv_filters,
        dataset_size=dataset_size, beta=beta, likelihood=likelihood,
        seed=seed, **options,
    )


def build_vae(
    input_shape,
    latent_dim=16,
    architecture="mlp",
    beta=1.0,
    mixup_alpha=0.0,
    likelihood="bernoulli",
    seed=None,
    hidden_units=architectures.DEFAULT_HIDDEN_UNITS,
    conv_filters=architectures.DEFAULT_CONV_FILTERS,
    mixup_consistency=None,
):
    """Builds a VAE (or a MixupVAE when `mixup_alpha > 0`), ready to compile.

    Weights are initialised from Keras' global seed: call
    `keras.utils.set_random_seed` first for reproducible weights; `seed`
    seeds the posterior sampler and the mixup draws.

    Args:
        input_shape: `(H, W, C)`.
        latent_dim: latent size d >= 1.
        architecture: `"mlp"` or `"conv"`.
        beta: KL weight >= 0.
        mixup_alpha: 0 (default) for a beta-VAE, > 0 for a MixupVAE.
        likelihood: `"bernoulli"` or `"gaussian"`.
        seed: int or None.
        hidden_units, conv_filters: see `architectures.build_encoder`.
        mixup_consistency: see `MixupVAE`; None for its default.

    Returns:
        A built `VAE` or `MixupVAE`.

    Raises:
        ValueError: for any invalid argument, naming it.

    Examples:
        >>> model = build_vae((28, 28, 1), latent_dim=16, beta=2.0)
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    """
    if mixup_alpha == 0 and mixup_consistency is not None:
        mixup_consistency = None  # no mixup: nothing to weigh
    return build_defended_vae(
        input_shape, "none", latent_dim=latent_dim,
        architecture=architecture, beta=beta, likelihood=likelihood,
        seed=seed, hidden_units=hidden_units, conv_filters=conv_filters,
        mixup_alpha=checks.non_negative("mixup_alpha", mixup_alpha),
        mixup_consistency=mixup_consistency,
    )
