"""Evaluates an exported SavedModel: scores, clean error, attack damage.

Loads the model only with `tf.saved_model.load`, so it works for any model
exported by vaekeras, whoever trained it; vaekeras is used for the data and
the score and attack functions. Writes `evaluation.json` (default: beside
the SavedModel folder). Flags, then one library call
(`vaekeras.saved_model_evaluation.evaluate_saved_model`).

The Lipschitz certificate bounds each layer, which a SavedModel does not
keep: `--certify` asks for it and needs the run's `model.keras` beside
`export/`.

Example:
    python apps/evaluate.py --saved_model=saved_models/mnist_5k_mlp_beta2/export
"""

import _launch
import common_flags
from absl import flags
from absl import logging

_launch.import_plugins()

_SAVED_MODEL = flags.DEFINE_string(
    "saved_model", None, "SavedModel folder.", required=True
)
_CERTIFY = flags.DEFINE_bool(
    "certify", False,
    "Also certify (Lipschitz bound, docs: Defenses); needs the run's "
    "model.keras beside the SavedModel.",
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "JSON path; default evaluation.json beside the model."
)
SHARED = common_flags.define(
    "dataset", "data_dir", "num_examples", "eps", "norm", "kind",
    "pgd_iter", "seed", "mcmc_steps", "plugins",
    dataset=(
        None,
        "Test data; default: the run's flags.json beside it, else mnist_5k.",
    ),
    pgd_iter=(
        100, "Iterations of the attacks' (A)PGD runs, the protocol's "
        "included.",
    ),
    mcmc_steps=(
        0, "Also evaluate through this many steps of test-time MCMC (Kuzina "
        "et al. 2022): the protocol attacked through the chain, and the "
        "attacks' images purified (non-adaptive rows); 0 = off.",
    ),
)
# --help lists the shared flags with the app's own.
flags.adopt_module_key_flags(common_flags)

_launch.check_dataset_name()
_launch.check_positive_numbers("eps")
_launch.check_existing_paths("saved_model")


def main(argv):
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import saved_model_evaluation

    settings = common_flags.values(SHARED)
    settings.pop("plugins")
    cli.run_cli(
        lambda: saved_model_evaluation.evaluate_saved_model(
            _SAVED_MODEL.value,
            output_path=_OUTPUT.value,
            certify_model=_CERTIFY.value,
            verbose=1,
            **cli.attack_settings(settings),
        )
    )


if __name__ == "__main__":
    _launch.run(main)
