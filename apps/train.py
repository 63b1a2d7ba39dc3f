"""Trains a beta-VAE, mixup-VAE or defended VAE; writes a run folder.

Flags, then one library call (`vaekeras.training.train`).

Example:
    python apps/train.py --beta=2
    python apps/train.py --architecture=conv --mixup_alpha=0.5 --epochs=20
    python apps/train.py --defense=adversarial --adv_eps=1
    python apps/train.py --plugins=my_defenses --defense=smooth
"""

import _launch
import common_flags
from absl import flags
from absl import logging

from vaekeras.defenses import registry

_launch.import_plugins()

SETTINGS = common_flags.define(
    "dataset", "data_dir", "download", "architecture", "latent_dim", "beta",
    "likelihood", "epochs", "steps_per_epoch", "batch_size",
    "learning_rate", "seed",
    "overwrite", "verbose", "distribution", "plugins",
)
SETTINGS["output_dir"] = flags.DEFINE_string(
    "output_dir", None,
    "Run folder; default saved_models/<dataset>_<arch>_beta<beta>"
    "[_<defense>...].",
)
SETTINGS["monitor_geometry"] = flags.DEFINE_bool(
    "monitor_geometry", True,
    "Log the median spectral radius and mean entropy of 64 held-out test "
    "images each epoch (History, TensorBoard, training.png).",
)
SETTINGS["defense"] = flags.DEFINE_enum(
    "defense", "none", list(registry.names()),
    "Train a defended VAE (docs: Defenses); its options below. "
    "--mixup_alpha alone trains a mixup VAE.",
)
# --help lists the shared flags with the app's own.
flags.adopt_module_key_flags(common_flags)


def define_option_flags():
    """One flag per defense option, from the defenses' own declarations.

    Unset options keep their defaults; an option of another defense than
    `--defense` is an error.
    """
    holders = {}
    for name, (defense, option) in registry.options().items():
        text = f"{defense}: {option.help} ({option.spell(option.default)})"
        if option.choices is not None:
            holders[name] = flags.DEFINE_enum(
                name, None, [str(c) for c in option.choices], text
            )
        elif option.type is int:
            holders[name] = flags.DEFINE_integer(name, None, text)
        else:
            holders[name] = flags.DEFINE_float(name, None, text)
        flags.register_validator(name, _option_check(option))
    return holders


def _option_check(option):
    """An absl validator from an option's own check (before TensorFlow)."""
    def check(value):
        if value is not None:
            try:
                option.validate(value)
            except ValueError as error:
                raise flags.ValidationError(str(error)) from None
        return True

    return check


SETTINGS.update(define_option_flags())
_launch.check_dataset_name()


def main(argv):
    # TensorFlow's SavedModel writer logs at INFO through absl; keep the
    # console for Keras' progress bars and the run summary.
    logging.set_verbosity(logging.WARNING)
    from vaekeras import cli
    from vaekeras import training

    settings = common_flags.values(SETTINGS)
    settings.pop("plugins")
    result = cli.run_cli(
        lambda: training.train(training.TrainConfig.from_settings(**settings))
    )
    if not settings["verbose"]:
        # The library is quiet at verbose 0; the app still says, in one
        # line, what happened.
        print(
            f"{'Reused' if result['reused'] else 'Saved'} "
            f"{result['output_dir']}: test loss "
            f"{result['metrics']['test']['loss']:.2f}"
        )


if __name__ == "__main__":
    _launch.run(main)
