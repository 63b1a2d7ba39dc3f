"""KerasTuner sweep over beta (and mixup alpha); resumable, distributable.

Writes sweep.json, sweep.png, TensorBoard logs per trial and the best model
(as a run folder under best/) into <directory>/<project_name>. Rerunning
the same command resumes: finished trials are not trained again. For a
distributed sweep run the same command in one chief and N workers with
KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set
(see the docs' Sweeps page). The logic is in `vaekeras.tuning`.

Example:
    python apps/tune.py --betas=0.25,0.5,1,2,4,8 --epochs=5
"""

import _launch
from absl import app
from absl import flags
from absl import logging

# Literal choices: flags are checked before TensorFlow is imported (tests
# check that they equal the library's).
TUNERS = ["grid", "random", "bayesian"]
OBJECTIVES = [
    "val_loss", "val_reconstruction_loss", "val_spectral_radius", "tradeoff"
]

_BETAS = flags.DEFINE_list(
    "betas", ["0.25", "0.5", "1", "2", "4", "8"], "Betas to search."
)
_MIXUP_ALPHAS = flags.DEFINE_list(
    "mixup_alphas", ["0"], "Mixup alphas to search (0 = no mixup)."
)
_TUNER = flags.DEFINE_enum("tuner", "grid", TUNERS, "Search strategy.")
_OBJECTIVE = flags.DEFINE_enum(
    "objective", "tradeoff", OBJECTIVES, "Quantity minimised."
)
_TRADEOFF_WEIGHT = flags.DEFINE_float(
    "tradeoff_weight", 10.0,
    "w in tradeoff = val_reconstruction_loss + w * val_spectral_radius.",
)
_MAX_TRIALS = flags.DEFINE_integer(
    "max_trials", None, "Trial budget (default: the whole grid)."
)
_EPOCHS = flags.DEFINE_integer("epochs", 5, "Epochs per trial.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam rate.")
_DATASET = flags.DEFINE_string("dataset", "mnist_5k", "Data set.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data folder.")
_ARCHITECTURE = flags.DEFINE_enum(
    "architecture", "mlp", ["mlp", "conv"], "Architecture."
)
_LATENT_DIM = flags.DEFINE_integer("latent_dim", 16, "Latent size.")
_ROBUSTNESS_EXAMPLES = flags.DEFINE_integer(
    "robustness_examples", 256, "Held-out test examples for the scores."
)
_ATTACK_EPS = flags.DEFINE_float("attack_eps", 1.0, "Eigen attack L2 eps.")
_DIRECTORY = flags.DEFINE_string(
    "directory", "saved_models/sweeps", "Folder of tuner projects."
)
_PROJECT_NAME = flags.DEFINE_string("project_name", "beta_sweep", "Project.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Start the sweep afresh.")
_WORKER_TIMEOUT = flags.DEFINE_float(
    "worker_timeout", 1800.0,
    "Distributed sweeps: seconds without a report (workers report every "
    "epoch) after which the chief gives a worker's trial to another.",
)
DISTRIBUTIONS = ["auto", "none", "data_parallel"]
_DISTRIBUTION = flags.DEFINE_enum(
    "distribution", "auto", DISTRIBUTIONS,
    "Each trial on every local accelerator (auto: when there are two or "
    "more); for one worker per device see the docs' 'Many devices' page.",
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_VERBOSE = flags.DEFINE_integer("verbose", 1, "Keras verbosity.")

# Checked at parsing, before TensorFlow loads.
_launch.check_dataset_name()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import tuning

    def sweep():
        config = tuning.SweepConfig(
            betas=tuple(cli.parse_float_list("betas", _BETAS.value)),
            mixup_alphas=tuple(cli.parse_float_list(
                "mixup_alphas", _MIXUP_ALPHAS.value
            )),
            tuner=_TUNER.value,
            objective=_OBJECTIVE.value,
            tradeoff_weight=_TRADEOFF_WEIGHT.value,
            max_trials=_MAX_TRIALS.value,
            epochs=_EPOCHS.value,
            batch_size=_BATCH_SIZE.value,
            learning_rate=_LEARNING_RATE.value,
            dataset=_DATASET.value,
            data_dir=_DATA_DIR.value,
            architecture=_ARCHITECTURE.value,
            latent_dim=_LATENT_DIM.value,
            robustness_examples=_ROBUSTNESS_EXAMPLES.value,
            attack_eps=_ATTACK_EPS.value,
            directory=_DIRECTORY.value,
            project_name=_PROJECT_NAME.value,
            overwrite=_OVERWRITE.value,
            worker_timeout=_WORKER_TIMEOUT.value,
            seed=_SEED.value,
            distribution=_DISTRIBUTION.value,
            verbose=_VERBOSE.value,
        )
        return tuning.run_sweep(config)

    cli.run_cli(sweep)


if __name__ == "__main__":
    _launch.run(main)
