"""The studies `apps/report.py --study=...` runs, one module each.

A study declares its runs (`runs(config)`), what it measures on each model
(`measure`), and how it reports (`summarise`, `figures`, `markdown`);
`vaekeras.reporting.run_study` does the training, caching and writing.
"""

import importlib

# Study name -> module (the two paper studies share one).
_MODULES = {
    "paper": "paper",
    "paper_full": "paper",
    "defenses": "defenses",
}
STUDIES = tuple(_MODULES)


def study_module(name):
    """The module of study `name`.

    Raises:
        ValueError: for an unknown study.
    """
    if name not in _MODULES:
        raise ValueError(
            "Invalid value received for argument `study`: expected one of "
            f"{STUDIES}. Received: study={name!r}"
        )
    return importlib.import_module(f"vaekeras.studies.{_MODULES[name]}")
