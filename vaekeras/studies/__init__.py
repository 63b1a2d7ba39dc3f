"""The studies `apps/report.py --study=...` runs, one registered class each.

A study (`base.Study`) declares its runs, what it measures on each model,
what the measurements claim and how the report is drawn; `run_report`
trains or reuses the runs, measures each model once (cached) and writes
`report.md`, `report.json` and the figures. Studies are registered by
name (`registry`; built-ins in `members/`; a user's with `register`).

Names are imported on first use: importing this package imports no
backend.
"""

from vaekeras import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "ReportConfig": "base",
    "Study": "base",
    "load_entry": "base",
    "run_study": "base",
    "spearman": "seed_statistics",
    "StudySpec": "registry",
    "names": "registry",
    "register": "registry",
    "default_output_dir": "base",
    "get_study": "report",
    "run_report": "report",
}, submodules=(
    "base", "defenses", "disentanglement", "members", "paper",
    "paper_claims", "protocol_summaries", "registry", "report",
    "seed_statistics",
))
