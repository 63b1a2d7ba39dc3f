"""Starts an app: plugins, flags, help with status 0, a quiet TensorFlow.

Imports only absl and vaekeras' light modules, so flags are checked (and
help printed) in a fraction of a second, before TensorFlow is imported.
absl exits with status 1 after printing `--help`, which scripts read as a
failure: here help exits with 0 and a bad flag with 2. TensorFlow's C++
start-up banner (printed before its log level is read) is dropped;
anything else it writes while importing is kept.
"""

import os
import sys

from absl import app
from absl import flags

from vaekeras import _quiet
from vaekeras import choices
from vaekeras import registry

# absl's help flags: each prints usage and then exits with status 1.
HELP_FLAGS = ("-h", "-?", "--help", "--helpshort", "--helpfull", "--helpxml")

def import_plugins():
    """Imports the modules `--plugins` names, before any flag is defined.

    A plugin registers attacks, defenses or studies, whose names and
    options become flag choices and flags, so it is imported before the
    app defines them (absl has not parsed the command line yet).
    """
    modules = []
    for i, arg in enumerate(sys.argv[1:], start=1):
        if arg.startswith("--plugins="):
            modules += arg.split("=", 1)[1].split(",")
        elif arg == "--plugins" and i + 1 < len(sys.argv):
            modules += sys.argv[i + 1].split(",")
    try:
        registry.import_plugins([m for m in modules if m])
    except ValueError as error:
        sys.stderr.write(f"FATAL Flags parsing error: {error}\n")
        sys.exit(2)


def check_positive_numbers(name):
    """Refuses a list flag unless every entry is a number > 0, at parsing."""
    def check(values):
        try:
            parsed = [float(v) for v in values]
        except (TypeError, ValueError):
            parsed = None
        if not parsed or not all(v > 0 for v in parsed):
            shown = values if parsed is None else parsed
            raise flags.ValidationError(
                f"Invalid value received for argument `{name}`: expected a "
                f"comma-separated list of numbers > 0. Received: "
                f"{name}={shown!r}"
            )
        return True

    flags.register_validator(name, check)


def check_existing_paths(name):
    """Refuses a path flag (or list flag) naming nothing, at parsing."""
    def check(value):
        paths = [value] if isinstance(value, str) else list(value or [])
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise flags.ValidationError(
                f"Invalid value received for argument `{name}`: no such "
                f"file or folder {missing[0]!r}. Received: {name}={value!r}"
            )
        return True

    flags.register_validator(name, check)


def check_dataset_name(name="dataset"):
    """Refuses a data set name that is neither offline nor in tfds.

    tensorflow-datasets lists its builders without importing TensorFlow,
    so a typo stops before TensorFlow loads, with the nearest names.
    """
    def check(value):
        if value is None or value in choices.OFFLINE_DATASETS:
            return True
        import difflib

        import tensorflow_datasets as tfds

        known = (*choices.OFFLINE_DATASETS, *tfds.list_builders(
            with_community_datasets=False
        ))
        if value in known:
            return True
        near = difflib.get_close_matches(value, known, n=3)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise flags.ValidationError(
            f"Invalid value received for argument `{name}`: not an offline "
            f"data set {choices.OFFLINE_DATASETS} nor a tensorflow-datasets "
            f"name.{hint} Received: {name}={value!r}"
        )

    flags.register_validator(name, check)


def run(main):
    """Runs `main` through `app.run`; help exits with 0, a bad flag with 2.

    TensorFlow is imported (quietly) only once the flags are valid.
    """
    # Before Keras imports torch (see vaekeras/__init__.py for why).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    asked_for_help = any(
        arg.split("=")[0] in HELP_FLAGS for arg in sys.argv[1:]
    )
    if not asked_for_help:
        try:
            flags.FLAGS(sys.argv)
        except flags.Error as error:
            sys.stderr.write(
                f"FATAL Flags parsing error: {error}\n"
                "Pass --helpshort or --helpfull to see help on flags.\n"
            )
            sys.exit(2)

    def main_after_tensorflow(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
        _quiet.import_tensorflow_quietly()
        return main(argv)

    try:
        app.run(main_after_tensorflow)
    except SystemExit as exit_:
        if asked_for_help and exit_.code == 1:
            sys.exit(0)
        raise
