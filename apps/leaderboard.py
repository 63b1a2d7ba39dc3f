"""Writes the docs' leaderboard from every committed report.

Reads `<reports_dir>/*/report.json` (no model is loaded) and writes one
table of every model measured with the current protocol. Flags, then one
library call (`vaekeras.studies.leaderboard.markdown`).

Example:
    python apps/leaderboard.py
"""

import os

import _launch
from absl import app
from absl import flags

from vaekeras.studies import leaderboard

REPORTS_DIR = flags.DEFINE_string(
    "reports_dir", "reports", "The folder of the reports (one per folder)."
)
OUTPUT = flags.DEFINE_string(
    "output", "docs/leaderboard.md", "The page to write."
)


def main(argv):
    del argv
    if not os.path.isdir(REPORTS_DIR.value):
        raise app.UsageError(
            f"--reports_dir={REPORTS_DIR.value!r} is not a folder."
        )
    text = leaderboard.markdown(REPORTS_DIR.value)
    with open(OUTPUT.value, "w") as f:
        f.write(text)
    print(f"Wrote {OUTPUT.value}")


if __name__ == "__main__":
    _launch.run(main)
