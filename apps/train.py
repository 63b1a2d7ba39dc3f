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
# Literal choices: flags are checked before TensorFlow is imported (tests
# check that they equal the library's).
DEFENSES = ["none", "geometry", "lipschitz", "adversarial", "tc"]
KINDS = ["mean", "stochastic", "fisher", "output"]
PENALTIES = ["trace", "spectral_radius"]
_DEFENSE = flags.DEFINE_enum(
    "defense", "none", DEFENSES,
    "Train a defended VAE (README, 'Defenses'); its options below.",
)
# Each defense's options; unset keeps the library's default, and an option
# of another defense is an error.
_DEFENSE_FLAGS = {
    "metric_weight": flags.DEFINE_float(
        "metric_weight", None, "geometry: weight of the metric penalty (1)."
    ),
    "metric_kind": flags.DEFINE_enum(
        "metric_kind", None, KINDS,
        "geometry: metric kind of the penalty (fisher).",
    ),
    "penalty": flags.DEFINE_enum(
        "penalty", None, PENALTIES,
        "geometry: what of G(x) is penalised (trace).",
    ),
    "probes": flags.DEFINE_integer(
        "probes", None, "geometry: Hutchinson probes per image (1)."
    ),
    "max_std": flags.DEFINE_float(
        "max_std", None, "lipschitz: bound on the encoder's std (1)."
    ),
    "encoder_lipschitz": flags.DEFINE_float(
        "encoder_lipschitz", None,
        "lipschitz: Lipschitz budget of the encoder mean (1).",
    ),
    "decoder_lipschitz": flags.DEFINE_float(
        "decoder_lipschitz", None,
        "lipschitz: spectral norm of the decoder's logits layer (10).",
    ),
    "adv_eps": flags.DEFINE_float(
        "adv_eps", None, "adversarial: radius of the training attack (1)."
    ),
    "adv_norm": flags.DEFINE_enum(
        "adv_norm", None, ["2", "inf"], "adversarial: its norm (2)."
    ),
    "adv_steps": flags.DEFINE_integer(
        "adv_steps", None, "adversarial: PGD steps per training step (1)."
    ),
    "adv_weight": flags.DEFINE_float(
        "adv_weight", None, "adversarial: weight of the smoothness term (1)."
    ),
    "adv_divergence": flags.DEFINE_enum(
        "adv_divergence", None, ["wasserstein", "kl"],
        "adversarial: distance of the smoothness term (wasserstein).",
    ),
    "tc_weight": flags.DEFINE_float(
        "tc_weight", None, "tc: extra weight on total correlation (5)."
    ),
}
DISTRIBUTIONS = ["auto", "none", "data_parallel"]
_DISTRIBUTION = flags.DEFINE_enum(
    "distribution", "auto", DISTRIBUTIONS,
    "auto: data parallel over every local accelerator when there are two or "
    "more; --batch_size is the global batch (README, 'Many devices').",
)
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
        defense=_DEFENSE.value,
        distribution=_DISTRIBUTION.value,
        **{name: flag.value for name, flag in _DEFENSE_FLAGS.items()},
    )
    cli.run_cli(training.train, config)


if __name__ == "__main__":
    _launch.run(main)
