"""The studies `apps/report.py --study=...` runs, one class each.

A study (`base.Study`) declares its runs, what it measures on each model,
what the measurements claim and how the report is drawn; `run_report`
trains or reuses the runs, measures each model once (cached) and writes
`report.md`, `report.json` and the figures.
"""

import dataclasses

from vaekeras import checks
from vaekeras.studies.base import ReportConfig
from vaekeras.studies.base import Study
from vaekeras.studies.base import load_entry
from vaekeras.studies.base import run_study
from vaekeras.studies.base import spearman
from vaekeras.studies.defenses import DefensesStudy
from vaekeras.studies.paper import PaperStudy

# One line per study.
STUDY_CLASSES = {
    "paper": PaperStudy,
    "paper_full": lambda: PaperStudy(full=True),
    "defenses": DefensesStudy,
}
STUDIES = tuple(STUDY_CLASSES)


def default_output_dir(study, dataset):
    """`reports/<study>`, or `reports/<study>_<dataset>` for any data set
    but the default mnist_5k, so that studies of two data sets never ask
    for one folder.

    Examples:
        >>> default_output_dir("paper", "fashion_mnist")
        'reports/paper_fashion_mnist'
    """
    if dataset == "mnist_5k":
        return f"reports/{study}"
    return f"reports/{study}_{dataset}"


def get_study(name):
    """The `Study` called `name`.

    Raises:
        ValueError: for an unknown study.
    """
    return STUDY_CLASSES[checks.choice("study", name, STUDIES)]()


def run_report(config):
    """Builds the report of `config.study` (or the paper study's
    measurements of `config.run_dirs`); returns what `report.json` holds.

    Raises:
        ValueError: for an unknown study or bad settings.
        FileNotFoundError: for a run_dir that holds no model.

    Examples:
        >>> run_report(ReportConfig(study="paper", quick=True))
    """
    if not config.run_dirs:
        checks.choice("study", config.study, STUDIES)
    checks.budgets(list(config.eps), "eps")
    study = get_study("paper" if config.run_dirs else config.study)
    config = study.configure(dataclasses.replace(config))
    entries = None
    if config.run_dirs:
        entries = [load_entry(path) for path in config.run_dirs]
    return run_study(study, config, entries)


__all__ = [
    "ReportConfig", "STUDIES", "STUDY_CLASSES", "Study", "get_study",
    "run_report", "spearman",
]
