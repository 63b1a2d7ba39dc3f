"""`TrainConfig`: what a training run is, declared once, checked once.

Each value is checked when the config is made, and the defense (mixup
included) is resolved there once: `defense_options` then holds every
option of that defense, defaults filled in. `run_identity` is what a run
folder's `flags.json` records.

Pure Python: importing this module imports no backend.
"""

import dataclasses
import os

from vaekeras import backend
from vaekeras import checks
from vaekeras import choices
from vaekeras.defenses import registry

# The settings that define a run besides the defense's options, each
# with the value a run folder written before the key existed implies.
_IDENTITY = {
    **dict.fromkeys((
        "dataset", "architecture", "latent_dim", "beta", "likelihood",
        "epochs", "batch_size", "learning_rate", "seed", "keras_backend",
        "steps_per_epoch",
    )),
    "defense": "none",
}


def run_keys():
    """The keys two runs must agree on to share a folder.

    `{key: value implied when missing}`: the settings that define a run
    and every registered defense's options (a user's too, once the module
    that registers it is imported).
    """
    return {**_IDENTITY, **dict.fromkeys(registry.options())}


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (`apps/train.py`'s flags).

    Attributes:
        dataset: an offline data set (`mnist_5k`, `digits`, `dsprites`,
            `fashion_mnist`) or a tensorflow-datasets image data set.
        data_dir: folder of prepared tensorflow-datasets data.
        download: let tensorflow-datasets download the data set.
        architecture: `"mlp"`, `"conv"` or `"conv64"` (64 x 64 images).
        latent_dim: latent size.
        beta: KL weight (1: plain VAE).
        likelihood: `"bernoulli"` or `"gaussian"`.
        epochs: epochs in all (a resumed run trains the rest).
        steps_per_epoch: None: an epoch is one pass over the training
            split; else this many batches of images drawn uniformly with
            replacement. A generated data set (`dsprites`: 727,280
            training images) defaults to
            `choices.GENERATED_STEPS_PER_EPOCH` batches.
        batch_size: the global batch.
        learning_rate: Adam's.
        seed: seed of weights, shuffling and noise.
        output_dir: the run folder; None: `default_output_dir()`.
        overwrite: replace a folder that holds another configuration.
        verbose: Keras verbosity (0, 1, 2).
        monitor_geometry: log the encoder's geometry each epoch (watching
            does not change the model, so not part of a run's identity).
        distribution: `"auto"`, `"none"` or `"data_parallel"` (the same
            model on more devices: not part of a run's identity).
        defense: a registered defense (`vaekeras.defenses.names()`).
        defense_options: its options; after construction every option of
            `defense`, checked, defaults filled in.

    Raises:
        ValueError: on construction, naming the first invalid value, an
            unknown defense or an option of another defense.

    Examples:
        >>> TrainConfig(beta=2.0, defense="adversarial",
        ...             defense_options={"adv_eps": 0.5}).defense_options
        {'adv_eps': 0.5, 'adv_norm': 2, 'adv_steps': 5, ...}
    """

    dataset: str = "mnist_5k"
    data_dir: str | None = None
    download: bool = False
    architecture: str = "mlp"
    latent_dim: int = 16
    beta: float = 1.0
    likelihood: str = "bernoulli"
    epochs: int = 50
    steps_per_epoch: int | None = None
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    output_dir: str | None = None
    overwrite: bool = False
    verbose: int = 1
    monitor_geometry: bool = True
    distribution: str = "auto"
    defense: str = "none"
    defense_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        checks.non_negative("beta", self.beta)
        checks.positive("learning_rate", self.learning_rate)
        for name in ("latent_dim", "epochs", "batch_size"):
            checks.positive_int(name, getattr(self, name))
        if self.steps_per_epoch is not None:
            checks.positive_int("steps_per_epoch", self.steps_per_epoch)
        elif self.dataset in choices.GENERATED_DATASETS:
            self.steps_per_epoch = choices.GENERATED_STEPS_PER_EPOCH
        checks.choice("architecture", self.architecture, choices.ARCHITECTURES)
        checks.choice("likelihood", self.likelihood, choices.LIKELIHOODS)
        checks.choice(
            "distribution", self.distribution, choices.DISTRIBUTIONS
        )
        if not isinstance(self.defense_options, dict):
            raise checks.invalid(
                "defense_options", "a dict of option values",
                self.defense_options,
            )
        self.defense, self.defense_options = registry.resolve(
            self.defense, self.defense_options
        )

    @classmethod
    def from_settings(cls, **settings):
        """A config from flat settings, a defense's options among them.

        The form the flags and `flags.json` take: `from_settings(beta=2,
        adv_eps=0.5, defense="adversarial")`. An option set to None keeps
        its default.

        Raises:
            ValueError: as the constructor, or for an unknown setting.
        """
        fields = {f.name for f in dataclasses.fields(cls)} - {
            "defense_options"
        }
        options = {k: v for k, v in settings.items() if k not in fields}
        return cls(
            **{k: v for k, v in settings.items() if k in fields},
            defense_options=options,
        )

    def describe(self):
        """One line naming the run (figure titles)."""
        return _describe(self)

    def default_output_dir(self, root="saved_models"):
        """`root/<dataset>_<arch>[_latent<d>]_beta<beta>[_<defense>...]`.

        Every setting that defines the model and differs from its default
        is in the name, so a second configuration gets its own folder.
        """
        name = f"{self.dataset}_{self.architecture}"
        if self.latent_dim != TrainConfig.latent_dim:
            name += f"_latent{self.latent_dim}"
        name += f"_beta{self.beta:g}"
        options = dict(self.defense_options)
        defaults = registry.get(self.defense).defaults()
        if self.defense == "mixup":
            # mixup's folders name its alpha, as they always have.
            name += f"_mixup{options.pop('mixup_alpha'):g}"
        elif self.defense != "none":
            name += f"_{self.defense}"
        for option, value in options.items():
            if value != defaults[option]:
                prefix = "c" if option == "mixup_consistency" else option
                name += f"_{prefix}{_short(value)}"
        if backend.name() != backend.DEFAULT:  # as in run_identity
            name += f"_{backend.name()}"
        return os.path.join(root, name)


def _describe(config):
    """One line naming the run: data, model, its defense, seed, epochs."""
    defense = "" if config.defense == "none" else ", " + config.defense + (
        "".join(
            f" {name}={_short(value)}"
            for name, value in config.defense_options.items()
        )
    )
    return (
        f"{config.dataset}, {config.architecture} VAE, "
        f"latent {config.latent_dim}, beta {config.beta:g}{defense}, seed "
        f"{config.seed}, {config.epochs} epoch"
        + ("s" if config.epochs != 1 else "")
    )


def run_identity(config):
    """What `flags.json` records: the configuration and the Keras backend.

    Runs of the same flags on two backends are two different models, so
    the backend is part of a run's identity. The defense's options are
    recorded flat and resolved (`--mixup_alpha=0.5` is defense "mixup"),
    with their defaults filled in, so a run asked for with and without a
    default spelled out is one run; other defenses' options are None.
    """
    settings = dataclasses.asdict(config)
    options = settings.pop("defense_options")
    known = registry.options()
    return {
        **settings,
        **dict.fromkeys(known),
        **{k: known[k][1].spell(v) for k, v in options.items()},
        "keras_backend": backend.name(),
    }


def _short(value):
    return f"{value:g}" if isinstance(value, float) else str(value)
