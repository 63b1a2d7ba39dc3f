"""KerasTuner sweep over beta (and mixup alpha); resumable, distributable.

Writes sweep.json, sweep.png, TensorBoard logs per trial and the best model
(as a run folder under best/) into <directory>/<project_name>. Rerunning
the same command resumes: finished trials are not trained again. For a
distributed sweep run the same command in one chief and N workers with
KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set
(see the docs' Sweeps page). Flags, then one library call
(`vaekeras.tuning.run_sweep`).

Example:
    python apps/tune.py --betas=0.25,0.5,1,2,4,8 --epochs=5
"""

import _launch
import common_flags
from absl import flags
from absl import logging

from vaekeras import choices

_launch.import_plugins()

SETTINGS = {
    "betas": flags.DEFINE_list(
        "betas", ["0.25", "0.5", "1", "2", "4", "8"], "Betas to search."
    ),
    "mixup_alphas": flags.DEFINE_list(
        "mixup_alphas", ["0"], "Mixup alphas to search (0 = no mixup)."
    ),
    "tuner": flags.DEFINE_enum(
        "tuner", "grid", list(choices.TUNERS), "Search strategy."
    ),
    "objective": flags.DEFINE_enum(
        "objective", "tradeoff", list(choices.TUNING_OBJECTIVES),
        "Quantity minimised.",
    ),
    "tradeoff_weight": flags.DEFINE_float(
        "tradeoff_weight", 10.0,
        "w in tradeoff = val_reconstruction_loss + w * val_spectral_radius.",
        lower_bound=0.0,
    ),
    "max_trials": flags.DEFINE_integer(
        "max_trials", None, "Trial budget (default: the whole grid).",
        lower_bound=1,
    ),
    "robustness_examples": flags.DEFINE_integer(
        "robustness_examples", 256, "Held-out test examples for the scores.",
        lower_bound=1,
    ),
    "attack_eps": flags.DEFINE_float(
        "attack_eps", 1.0, "Eigen attack L2 eps.", lower_bound=0.0
    ),
    "directory": flags.DEFINE_string(
        "directory", "saved_models/sweeps", "Folder of tuner projects."
    ),
    "project_name": flags.DEFINE_string(
        "project_name", "beta_sweep", "Project."
    ),
    "worker_timeout": flags.DEFINE_float(
        "worker_timeout", 1800.0,
        "Distributed sweeps: seconds without a report (workers report every "
        "epoch) after which the chief gives a worker's trial to another.",
        lower_bound=0.0,
    ),
    **common_flags.define(
        "epochs", "batch_size", "learning_rate", "dataset", "data_dir",
        "architecture", "latent_dim", "overwrite", "seed", "verbose",
        "distribution", "plugins",
        epochs=(5, "Epochs per trial."),
        overwrite=(False, "Start the sweep afresh."),
        distribution=(
            "auto", "Each trial on every local accelerator (auto: when "
            "there are two or more); for one worker per device see the "
            "docs' 'Many devices' page.",
        ),
    ),
}
# --help lists the shared flags with the app's own.
flags.adopt_module_key_flags(common_flags)

_launch.check_dataset_name()
_launch.check_positive_numbers("betas")


def main(argv):
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import tuning

    settings = common_flags.values(SETTINGS)
    settings.pop("plugins")

    def sweep():
        settings["betas"] = tuple(
            cli.parse_float_list("betas", settings["betas"])
        )
        settings["mixup_alphas"] = tuple(
            cli.parse_float_list("mixup_alphas", settings["mixup_alphas"])
        )
        return tuning.run_sweep(tuning.SweepConfig(**settings))

    cli.run_cli(sweep)


if __name__ == "__main__":
    _launch.run(main)
