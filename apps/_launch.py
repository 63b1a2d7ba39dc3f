"""Starts an app: absl's `app.run`, with help that exits with status 0.

absl exits with status 1 after printing `--help`, which scripts and CI read
as a failure. This module imports only absl, so flags are checked (and
help printed) in a fraction of a second, before TensorFlow is imported.
"""

import sys

from absl import app

# absl's help flags: each prints usage and then exits with status 1.
HELP_FLAGS = ("-h", "-?", "--help", "--helpshort", "--helpfull", "--helpxml")


def run(main):
    """Runs `main` through `app.run`; a help request exits with status 0."""
    asked_for_help = any(
        arg in HELP_FLAGS or arg.split("=")[0] in HELP_FLAGS
        for arg in sys.argv[1:]
    )
    try:
        app.run(main)
    except SystemExit as exit_:
        if asked_for_help and exit_.code == 1:
            sys.exit(0)
        raise
