"""Evaluates an exported SavedModel: scores, clean error, attack damage.

Loads the model only with `tf.saved_model.load`, so it works for any model
exported by vaekeras, whoever trained it; vaekeras is used for the data and
the score and attack functions. Writes `evaluation.json` (default: beside
the SavedModel folder). The logic is in `vaekeras.evaluation`.

Example:
    python apps/evaluate.py --saved_model=saved_models/mnist_5k_mlp_beta2/export
"""

import _launch
from absl import app
from absl import flags
from absl import logging

# Literal choices: flags are checked before TensorFlow is imported (tests
# check that they equal the library's).
KINDS = ["mean", "stochastic", "fisher", "output"]

_SAVED_MODEL = flags.DEFINE_string(
    "saved_model", None, "SavedModel folder.", required=True
)
_DATASET = flags.DEFINE_string(
    "dataset", None,
    "Test data; default: the run's flags.json beside it, else mnist_5k.",
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data folder.")
_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", 1000, "Test examples used.", lower_bound=1
)
_EPS = flags.DEFINE_list("eps", ["0.5", "1"], "Attack budgets.")
_NORM = flags.DEFINE_enum("norm", "2", ["2", "inf"], "Norm of the budget.")
_KIND = flags.DEFINE_enum("kind", "stochastic", KINDS, "Pullback metric kind.")
_PGD_ITER = flags.DEFINE_integer(
    "pgd_iter", 20, "PGD iterations.", lower_bound=1
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random draw.")
_MCMC_STEPS = flags.DEFINE_integer(
    "mcmc_steps", 0,
    "Also evaluate through this many steps of test-time MCMC (Kuzina et "
    "al. 2022): the protocol attacked through the chain, and the attacks' "
    "images purified (non-adaptive rows); 0 = off.",
    lower_bound=0,
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "JSON path; default evaluation.json beside the model."
)

# Checked at parsing, before TensorFlow loads.
_launch.check_dataset_name()
_launch.check_positive_numbers("eps")
_launch.check_existing_paths("saved_model")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import evaluation

    cli.run_cli(
        lambda: evaluation.evaluate_saved_model(
            _SAVED_MODEL.value,
            dataset=_DATASET.value,
            num_examples=_NUM_EXAMPLES.value,
            eps=cli.parse_float_list("eps", _EPS.value),
            norm=cli.parse_norm(_NORM.value),
            kind=_KIND.value,
            pgd_iter=_PGD_ITER.value,
            seed=_SEED.value,
            mcmc_steps=_MCMC_STEPS.value,
            data_dir=_DATA_DIR.value,
            output_path=_OUTPUT.value,
        )
    )


if __name__ == "__main__":
    _launch.run(main)
