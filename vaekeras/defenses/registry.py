"""Every defense by name, and everything derived from their options.

Adding a defense: write its class in its own file of this package (a
`VAE` subclass with an `options` tuple and an `extra_loss`), then add one
line to `DEFENSE_CLASSES`. Its options then reach `build_defended_vae`,
`TrainConfig`, the train app's flags and `flags.json` by themselves.
"""

from vaekeras import architectures
from vaekeras import checks
from vaekeras.defenses import adversarial
from vaekeras.defenses import geometry_penalty
from vaekeras.defenses import lipschitz
from vaekeras.defenses import mixup
from vaekeras.defenses import tc
from vaekeras.models import VAE

DEFENSE_CLASSES = {
    "none": VAE,
    "mixup": mixup.MixupVAE,
    "geometry": geometry_penalty.GeometryRegularizedVAE,
    "lipschitz": lipschitz.LipschitzVAE,
    "adversarial": adversarial.AdversarialVAE,
    "tc": tc.TCVAE,
}
DEFENSES = tuple(DEFENSE_CLASSES)
# Option name -> (its defense, the `Option`). Names are unique across
# defenses, so a flag or config field names one option of one defense.
OPTIONS = {
    option.name: (defense, option)
    for defense, cls in DEFENSE_CLASSES.items() for option in cls.options
}
if len(OPTIONS) != sum(len(c.options) for c in DEFENSE_CLASSES.values()):
    raise ImportError(
        "Two defenses declare an option of the same name: option names must "
        "be unique (each is a flag and a TrainConfig field)."
    )
# Each defense's options and their defaults.
DEFENSE_OPTIONS = {
    defense: {option.name: option.default for option in cls.options}
    for defense, cls in DEFENSE_CLASSES.items()
}


def resolve(defense, options):
    """`(defense, its options checked, defaults filled in)`.

    Options set to None are left at their defaults. `mixup_alpha` > 0
    with `defense="none"` means mixup (the train app's `--mixup_alpha`),
    and `mixup_alpha=0` means no mixup with any defense.

    Raises:
        ValueError: for an unknown defense, an option of another defense
            (naming both) or an invalid value (naming it).
    """
    checks.choice("defense", defense, DEFENSES)
    given = {k: v for k, v in options.items() if v is not None}
    alpha = given.get("mixup_alpha")
    if alpha is not None and not isinstance(alpha, bool) and alpha == 0:
        if defense == "mixup":
            raise checks.invalid(
                "mixup_alpha", "a number > 0 with defense='mixup'", alpha
            )
        given.pop("mixup_alpha")
    elif alpha is not None and defense == "none":
        defense = "mixup"
    for name, value in given.items():
        if name not in OPTIONS:
            raise ValueError(
                f"Unknown defense option `{name}`. Options: {sorted(OPTIONS)}"
            )
        owner, option = OPTIONS[name]
        if owner != defense:
            raise ValueError(
                f"Invalid value received for argument `{name}`: it is an "
                f"option of defense={owner!r}, not of defense={defense!r}. "
                f"Received: {name}={value!r}"
            )
        given[name] = option.validate(value)
    return defense, {**DEFENSE_OPTIONS[defense], **given}


def check_defense_options(defense, options):
    """The defense's full options: its defaults, updated with `options`.

    Raises:
        ValueError: as `resolve`.
    """
    return resolve(defense, options)[1]


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
    """Builds the VAE of one defense, ready to compile.

    Weights are initialised from Keras' global seed: call
    `keras.utils.set_random_seed` first for reproducible weights; `seed`
    seeds the posterior sampler and the defense's own draws.

    Args:
        input_shape: `(H, W, C)`.
        defense: one of `DEFENSES`: `"none"` (a beta-VAE), `"mixup"`,
            `"geometry"`, `"lipschitz"`, `"adversarial"` or `"tc"`.
        latent_dim, architecture, hidden_units, conv_filters: see
            `vaekeras.architectures.build_encoder`.
        beta: KL weight >= 0.
        likelihood: `"bernoulli"` or `"gaussian"`.
        seed: int or None.
        dataset_size: training set size, for the TC estimator.
        **options: the defense's options (`DEFENSE_OPTIONS`); None keeps
            a default.

    Returns:
        A built model.

    Raises:
        ValueError: for an unknown defense, an option of another defense,
            or an invalid value (naming it).

    Examples:
        >>> model = build_defended_vae((28, 28, 1), "adversarial", adv_eps=0.5)
    """
    defense, options = resolve(defense, options)
    return DEFENSE_CLASSES[defense].make(
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
