"""Attacks the test examples of a trained run and reports the damage.

Writes `attacks/<attack>.json` and `attacks/<attack>.png` into the run
folder and prints a table. The logic is in `vaekeras.evaluation`.

Example:
    python apps/attack.py --run_dir=saved_models/mnist_5k_mlp_beta2 \
        --attack=eigen --eps=0.5,1,2
"""

import _launch
from absl import app
from absl import flags
from absl import logging

from vaekeras.attacks import registry

# Literal choices: flags are checked before TensorFlow is imported (tests
# check that they equal the library's).
KINDS = ["mean", "stochastic", "fisher", "output"]

_RUN_DIR = flags.DEFINE_string(
    "run_dir", None, "Run folder written by apps/train.py.", required=True
)
_ATTACK = flags.DEFINE_enum(
    "attack", "eigen", list(registry.names()),
    "A registered attack (docs: Attacks).",
)
_EPS = flags.DEFINE_list("eps", ["0.5", "1", "2"], "Budgets (norm of delta).")
_NORM = flags.DEFINE_enum("norm", "2", ["2", "inf"], "Norm of the budget.")
_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", 500, "Test examples to attack.", lower_bound=1
)
_KIND = flags.DEFINE_enum(
    "kind", "stochastic", KINDS, "Pullback metric kind of the eigen attack."
)
_MAX_ITER = flags.DEFINE_integer(
    "max_iter", 50, "Iterations of the PGD and targeted attacks.",
    lower_bound=1,
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 128, "Images per batch.", lower_bound=1
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random draw.")
_MCMC_STEPS = flags.DEFINE_integer(
    "mcmc_steps", 0,
    "Measure the damage through this many steps of test-time MCMC "
    "(Kuzina et al. 2022; non-adaptive: the attack sees the bare model, "
    "evaluate.py attacks through the chain); 0 = off.",
    lower_bound=0,
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data folder.")

# Checked at parsing, before TensorFlow loads.
_launch.check_positive_numbers("eps")
_launch.check_existing_paths("run_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import evaluation

    cli.run_cli(
        lambda: evaluation.attack_run(
            _RUN_DIR.value,
            attack=_ATTACK.value,
            eps=cli.parse_float_list("eps", _EPS.value),
            norm=cli.parse_norm(_NORM.value),
            num_examples=_NUM_EXAMPLES.value,
            kind=_KIND.value,
            max_iter=_MAX_ITER.value,
            batch_size=_BATCH_SIZE.value,
            seed=_SEED.value,
            mcmc_steps=_MCMC_STEPS.value,
            data_dir=_DATA_DIR.value,
        )
    )


if __name__ == "__main__":
    _launch.run(main)
