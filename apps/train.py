"""Trains a beta-VAE or mixup-VAE and writes a run folder.

Kept short on purpose: the logic is in `vaekeras.training`.

Example:
    python apps/train.py --beta=2
    python apps/train.py --architecture=conv --mixup_alpha=0.5 --epochs=20
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
_MIXUP_ALPHA = flags.DEFINE_float(
    "mixup_alpha", 0.0, "Mixup Beta(alpha, alpha) parameter; 0 = off.",
    lower_bound=0.0,
)
_MIXUP_CONSISTENCY = flags.DEFINE_float(
    "mixup_consistency", None,
    "Weight of mixup's latent consistency term (default: the library's).",
    lower_bound=0.0,
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
_MONITOR_GEOMETRY = flags.DEFINE_bool(
    "monitor_geometry", True,
    "Log the median spectral radius and mean entropy of 64 held-out test "
    "images each epoch (History, TensorBoard, training.png).",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # TensorFlow's SavedModel writer logs at INFO through absl; keep the
    # console for Keras' progress bars and the run summary.
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import training

    consistency = {}
    if _MIXUP_CONSISTENCY.value is not None:
        consistency["mixup_consistency"] = _MIXUP_CONSISTENCY.value
    config = training.TrainConfig(
        **consistency,
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        download=_DOWNLOAD.value,
        architecture=_ARCHITECTURE.value,
        latent_dim=_LATENT_DIM.value,
        beta=_BETA.value,
        mixup_alpha=_MIXUP_ALPHA.value,
        likelihood=_LIKELIHOOD.value,
        epochs=_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        seed=_SEED.value,
        output_dir=_OUTPUT_DIR.value,
        overwrite=_OVERWRITE.value,
        verbose=_VERBOSE.value,
        monitor_geometry=_MONITOR_GEOMETRY.value,
    )
    cli.run_cli(training.train, config)


if __name__ == "__main__":
    _launch.run(main)
