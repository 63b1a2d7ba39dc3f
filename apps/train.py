"""Trains a beta-VAE, mixup-VAE or defended VAE; writes a run folder.

Kept short on purpose: the logic is in `vaekeras.training`.

Example:
    python apps/train.py --beta=2
    python apps/train.py --architecture=conv --mixup_alpha=0.5 --epochs=20
    python apps/train.py --defense=adversarial --adv_eps=1
"""

import _launch
from absl import app
from absl import flags
from absl import logging

_DATASET = flags.DEFINE_string(
    "dataset", "mnist_5k",
    "mnist_5k (offline, default), digits (offline) or a tfds image data set.",
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Folder of prepared tensorflow-datasets data."
)
_DOWNLOAD = flags.DEFINE_bool(
    "download", False, "Let tensorflow-datasets download the data set."
)
_ARCHITECTURE = flags.DEFINE_enum(
    "architecture", "mlp", ["mlp", "conv"], "Encoder/decoder architecture."
)
_LATENT_DIM = flags.DEFINE_integer(
    "latent_dim", 16, "Latent size.", lower_bound=1
)
_BETA = flags.DEFINE_float(
    "beta", 1.0, "KL weight (1 = plain VAE).", lower_bound=0.0
)
_LIKELIHOOD = flags.DEFINE_enum(
    "likelihood", "bernoulli", ["bernoulli", "gaussian"], "Decoder likelihood."
)
_EPOCHS = flags.DEFINE_integer("epochs", 50, "Epochs.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 128, "Batch size.", lower_bound=1
)
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", 1e-3, "Adam learning rate.", lower_bound=0.0
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of weights, shuffling, noise.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Run folder; default saved_models/<dataset>_<arch>_beta<beta>"
    "[_mixup<alpha>].",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace a run folder that holds another configuration."
)
_VERBOSE = flags.DEFINE_integer("verbose", 1, "Keras verbosity (0, 1, 2).")


def define_defense_flags():
    """`--defense` and one flag per defense option, from their declarations.

    The declarations live on the defense classes, which import Keras: the
    flags are defined only when the command line names one (or asks for
    help), so other flags are still checked before TensorFlow loads.
    `--mixup_alpha` alone trains a mixup VAE; unset options keep the
    library's defaults, and an option of another defense is an error.
    """
    if "defense" in flags.FLAGS:  # defined already (a second call)
        return
    from vaekeras.defenses import registry

    flags.DEFINE_enum(
        "defense", "none", list(registry.names()),
        "Train a defended VAE (docs: Defenses); its options below.",
    )
    for name, (defense, option) in registry.options().items():
        help_text = (
            f"{defense}: {option.help} ({option.spell(option.default)})"
        )
        if option.choices is not None:
            flags.DEFINE_enum(
                name, None, [str(c) for c in option.choices], help_text
            )
        elif option.type is int:
            flags.DEFINE_integer(name, None, help_text)
        else:
            flags.DEFINE_float(name, None, help_text)


DISTRIBUTIONS = ["auto", "none", "data_parallel"]
_DISTRIBUTION = flags.DEFINE_enum(
    "distribution", "auto", DISTRIBUTIONS,
    "auto: data parallel over every local accelerator when there are two or "
    "more; --batch_size is the global batch (docs: Many devices).",
)
_MONITOR_GEOMETRY = flags.DEFINE_bool(
    "monitor_geometry", True,
    "Log the median spectral radius and mean entropy of 64 held-out test "
    "images each epoch (History, TensorBoard, training.png).",
)


def defense_settings():
    """`defense` and its options as given (none defined: none given)."""
    if "defense" not in flags.FLAGS:
        return {}
    from vaekeras.defenses import registry

    return {
        name: flags.FLAGS[name].value
        for name in ("defense", *registry.options())
    }

# Checked at parsing, before TensorFlow loads.
_launch.check_dataset_name()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # TensorFlow's SavedModel writer logs at INFO through absl; keep the
    # console for Keras' progress bars and the run summary.
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import training

    config = training.TrainConfig(
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        download=_DOWNLOAD.value,
        architecture=_ARCHITECTURE.value,
        latent_dim=_LATENT_DIM.value,
        beta=_BETA.value,
        likelihood=_LIKELIHOOD.value,
        epochs=_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        seed=_SEED.value,
        output_dir=_OUTPUT_DIR.value,
        overwrite=_OVERWRITE.value,
        verbose=_VERBOSE.value,
        monitor_geometry=_MONITOR_GEOMETRY.value,
        distribution=_DISTRIBUTION.value,
        **defense_settings(),
    )
    cli.run_cli(training.train, config)


if __name__ == "__main__":
    _launch.run(main, define_defense_flags)
