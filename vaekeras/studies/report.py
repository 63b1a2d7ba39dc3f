"""Runs a study by name: the one call `apps/report.py` makes."""

from vaekeras import checks
from vaekeras.studies import registry
from vaekeras.studies.base import load_entry
from vaekeras.studies.base import run_study


def get_study(name):
    """A new `Study` of the registered study `name`.

    Raises:
        ValueError: for an unknown study, listing the registered ones.
    """
    return registry.get(name).make()


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
        registry.get(config.study)
    checks.budgets(list(config.eps), "eps")
    study = get_study("paper" if config.run_dirs else config.study)
    config = study.configure(study.with_defaults(config))
    entries = None
    if config.run_dirs:
        entries = [load_entry(path) for path in config.run_dirs]
    return run_study(study, config, entries)
