"""Reproduces the paper's claims, or reports on your own runs.

Trains (or reuses) the preset's models, measures robustness scores, clean
reconstruction error and attack damage, and writes report.md, report.json
and PNG figures into --output_dir. Flags, then one library call
(`vaekeras.studies.run_report`).

Example:
    python apps/report.py --study=paper --dataset=mnist_5k \
        --output_dir=reports/paper
    python apps/report.py --run_dirs=saved_models/a,saved_models/b/export \
        --output_dir=reports/mine
"""

import _launch
import common_flags
from absl import flags
from absl import logging

from vaekeras.studies import registry

_launch.import_plugins()

SETTINGS = {
    "study": flags.DEFINE_enum(
        "study", "paper", list(registry.names()),
        "A registered study (the choices listed; docs: Studies), your own "
        "among them with --plugins.",
    ),
    "run_dirs": flags.DEFINE_list(
        "run_dirs", [], "Report on these run folders or SavedModels instead."
    ),
    "output_dir": flags.DEFINE_string(
        "output_dir", None,
        "Report folder (runs are kept inside); default reports/<study>, or "
        "reports/<study>_<dataset> for a data set other than the study's.",
    ),
    "quick": flags.DEFINE_bool(
        "quick", False,
        "Smoke version: fewer models, points, budgets and steps.",
    ),
    "seeds": flags.DEFINE_integer(
        "seeds", None,
        "Training seeds per configuration, from --seed on (default: 3; 1 "
        "with --quick, for paper_full and for --run_dirs). Gaps Welch's "
        "t-test (Holm-corrected) does not find are reported as not "
        "distinguishable.",
        lower_bound=1,
    ),
    "mcmc_examples": flags.DEFINE_integer(
        "mcmc_examples", None,
        "Test points attacked through test-time MCMC (defenses; default "
        "16).", lower_bound=1,
    ),
    "attack_examples": flags.DEFINE_integer(
        "attack_examples", None,
        "Test points for the attacks (default: 500 paper, 200 defenses).",
        lower_bound=1,
    ),
    **common_flags.define(
        "dataset", "data_dir", "epochs", "architecture", "latent_dim",
        "seed", "num_examples", "eps", "pgd_iter", "mcmc_steps",
        "distribution", "overwrite", "verbose", "plugins",
        epochs=(
            None, "Epochs per study model (default: paper 50, defenses 20 "
            "on mnist_5k; 10 and 3 on the 60,000-image data sets).",
        ),
        dataset=(
            None, "Data set (default: the study's; mnist_5k, dsprites for "
            "disentanglement).",
        ),
        architecture=(
            None, "Architecture (default: the study's; mlp, conv64 for "
            "disentanglement).",
        ),
        latent_dim=(
            None, "Latent size (default: the study's; 16, 10 for "
            "disentanglement).",
        ),
        num_examples=(1000, "Test points for the scores."),
        eps=(["0.5", "1", "2"], "L2 attack budgets."),
        pgd_iter=(
            None, "PGD iterations (default: 50 paper; the protocol's 100 "
            "for defenses and disentanglement, at most 50 through MCMC).",
        ),
        mcmc_steps=(20, "HMC steps of the test-time defense (defenses)."),
        distribution=(
            "auto", "Training and measurement on every local accelerator "
            "(auto: when there are two or more).",
        ),
        overwrite=(
            False,
            "Replace a report folder that holds another study or setting.",
        ),
    ),
}
# --help lists the shared flags with the app's own.
flags.adopt_module_key_flags(common_flags)

_launch.check_dataset_name()
_launch.check_positive_numbers("eps")
_launch.check_existing_paths("run_dirs")


def main(argv):
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import studies

    settings = common_flags.values(SETTINGS)
    settings.pop("plugins")

    def build():
        settings["run_dirs"] = tuple(settings["run_dirs"])
        settings["eps"] = tuple(cli.parse_float_list("eps", settings["eps"]))
        return studies.run_report(studies.ReportConfig(**settings))

    cli.run_cli(build)


if __name__ == "__main__":
    _launch.run(main)
