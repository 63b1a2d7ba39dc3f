"""Reproduces the paper's claims, or reports on your own runs.

Trains (or reuses) the preset's models, measures robustness scores, clean
reconstruction error and attack damage, and writes report.md, report.json
and PNG figures into --output_dir. The logic is in `vaekeras.studies`.

Example:
    python apps/report.py --study=paper --dataset=mnist_5k \
        --output_dir=reports/paper
    python apps/report.py --run_dirs=saved_models/a,saved_models/b/export \
        --output_dir=reports/mine
"""

import _launch
from absl import app
from absl import flags
from absl import logging

# Literal choices: flags are checked before TensorFlow is imported (tests
# check that they equal the library's).
STUDIES = ["paper", "paper_full", "defenses"]

_STUDY = flags.DEFINE_enum(
    "study", "paper", STUDIES,
    "paper: betas 0.01..8 and mixup at beta 1; paper_full: the authors' 50 "
    "betas on [0.01, 10]; defenses: every defense on one frontier.",
)
_RUN_DIRS = flags.DEFINE_list(
    "run_dirs", [], "Report on these run folders or SavedModels instead."
)
_DATASET = flags.DEFINE_string("dataset", "mnist_5k", "Data set.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data folder.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Report folder (runs are kept inside); default reports/<study>, or "
    "reports/<study>_<dataset> for a data set other than mnist_5k.",
)
_EPOCHS = flags.DEFINE_integer(
    "epochs", None,
    "Epochs per study model (default: paper 50, defenses 20 on mnist_5k; "
    "10 and 3 on the 60,000-image data sets).",
    lower_bound=1,
)
_QUICK = flags.DEFINE_bool(
    "quick", False,
    "Smoke version: fewer models, points, budgets and steps (defenses).",
)
_SEEDS = flags.DEFINE_integer(
    "seeds", None,
    "Training seeds per configuration, from --seed on (default: 3; 1 "
    "with --quick, for paper_full and for --run_dirs). Gaps the seeds' "
    "spread does not separate are reported as not distinguishable.",
    lower_bound=1,
)
_MCMC_EXAMPLES = flags.DEFINE_integer(
    "mcmc_examples", None,
    "Test points attacked through test-time MCMC (defenses; default 32).",
    lower_bound=1,
)
_MCMC_STEPS = flags.DEFINE_integer(
    "mcmc_steps", 20, "HMC steps of the test-time defense (defenses).",
    lower_bound=1,
)
_ARCHITECTURE = flags.DEFINE_enum(
    "architecture", "mlp", ["mlp", "conv"], "Preset architecture."
)
_LATENT_DIM = flags.DEFINE_integer(
    "latent_dim", 16, "Preset latent size.", lower_bound=1
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", 1000, "Test points for the scores.", lower_bound=1
)
_ATTACK_EXAMPLES = flags.DEFINE_integer(
    "attack_examples", None,
    "Test points for the attacks (default: 500 paper, 200 defenses).",
    lower_bound=1,
)
_EPS = flags.DEFINE_list("eps", ["0.5", "1", "2"], "L2 attack budgets.")
_PGD_ITER = flags.DEFINE_integer(
    "pgd_iter", None, "PGD iterations (default: 50 paper, 20 defenses).",
    lower_bound=1,
)
DISTRIBUTIONS = ["auto", "none", "data_parallel"]
_DISTRIBUTION = flags.DEFINE_enum(
    "distribution", "auto", DISTRIBUTIONS,
    "Training and measurement on every local accelerator (auto: when there "
    "are two or more).",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False,
    "Replace a report folder that holds another study or setting.",
)
_VERBOSE = flags.DEFINE_integer("verbose", 1, "0 for quiet.")

# Checked at parsing, before TensorFlow loads.
_launch.check_dataset_name()
_launch.check_positive_numbers("eps")
_launch.check_existing_paths("run_dirs")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import studies

    def build():
        config = studies.ReportConfig(
            study=_STUDY.value,
            run_dirs=tuple(_RUN_DIRS.value),
            dataset=_DATASET.value,
            data_dir=_DATA_DIR.value,
            output_dir=_OUTPUT_DIR.value or studies.default_output_dir(
                _STUDY.value, _DATASET.value
            ),
            epochs=_EPOCHS.value,
            latent_dim=_LATENT_DIM.value,
            architecture=_ARCHITECTURE.value,
            seed=_SEED.value,
            num_examples=_NUM_EXAMPLES.value,
            attack_examples=_ATTACK_EXAMPLES.value,
            eps=tuple(cli.parse_float_list("eps", _EPS.value)),
            pgd_iter=_PGD_ITER.value,
            quick=_QUICK.value,
            seeds=_SEEDS.value,
            mcmc_steps=_MCMC_STEPS.value,
            mcmc_examples=_MCMC_EXAMPLES.value,
            distribution=_DISTRIBUTION.value,
            overwrite=_OVERWRITE.value,
            verbose=_VERBOSE.value,
        )
        return studies.run_report(config)

    cli.run_cli(build)


if __name__ == "__main__":
    _launch.run(main)
