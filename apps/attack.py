"""Attacks the test examples of a trained run and reports the damage.

Writes `attacks/<attack>.json` and `attacks/<attack>.png` into the run
folder and prints a table. Flags, then one library call
(`vaekeras.evaluation.attack_run`).

Example:
    python apps/attack.py --run_dir=saved_models/mnist_5k_mlp_beta2 \
        --attack=eigen --eps=0.5,1,2
    python apps/attack.py --plugins=my_attacks --attack=my_shift --run_dir=...
"""

import _launch
import common_flags
from absl import flags
from absl import logging

from vaekeras.attacks import registry

_launch.import_plugins()

_RUN_DIR = flags.DEFINE_string(
    "run_dir", None, "Run folder written by apps/train.py.", required=True
)
_ATTACK = flags.DEFINE_enum(
    "attack", "eigen", list(registry.names()),
    "A registered attack (docs: Attacks).",
)
_MAX_ITER = flags.DEFINE_integer(
    "max_iter", 50, "Iterations of the PGD and targeted attacks.",
    lower_bound=1,
)
SHARED = common_flags.define(
    "eps", "norm", "num_examples", "kind", "batch_size", "seed",
    "mcmc_steps", "data_dir", "plugins",
    eps=["0.5", "1", "2"], num_examples=500,
    kind=("stochastic", "Pullback metric kind of the eigen attack."),
    mcmc_steps=(
        0, "Measure the damage through this many steps of test-time MCMC "
        "(Kuzina et al. 2022; non-adaptive: the attack sees the bare "
        "model, evaluate.py attacks through the chain); 0 = off.",
    ),
)
# --help lists the shared flags with the app's own.
flags.adopt_module_key_flags(common_flags)

_launch.check_positive_numbers("eps")
_launch.check_existing_paths("run_dir")


def main(argv):
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import evaluation

    settings = common_flags.values(SHARED)
    settings.pop("plugins")
    cli.run_cli(
        lambda: evaluation.attack_run(
            _RUN_DIR.value,
            attack=_ATTACK.value,
            max_iter=_MAX_ITER.value,
            verbose=1,
            **cli.attack_settings(settings),
        )
    )


if __name__ == "__main__":
    _launch.run(main)
