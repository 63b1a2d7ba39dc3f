"""Studies of VAE robustness: trains (or reuses) models and reports.

`run_report` runs one study of `vaekeras.studies` (`STUDIES`), or the
paper study's measurements on given run folders or SavedModels, and
writes `report.md`, `report.json` and PNG figures into `output_dir`.
Finished models are reused and each model's measurements are cached, so
an interrupted report resumes where it stopped. The shared machinery is
in `vaekeras.reporting`; each study is a small module in
`vaekeras.studies`.
"""

import dataclasses

from vaekeras import reporting
from vaekeras.reporting import spearman  # noqa: F401  (public name)
from vaekeras.studies import STUDIES
from vaekeras.studies import study_module


@dataclasses.dataclass
class ReportConfig:
    """Everything `run_report` depends on (see `apps/report.py`)."""

    study: str | None = "paper"
    run_dirs: tuple = ()
    dataset: str = "mnist_5k"
    data_dir: str | None = None
    output_dir: str = "reports/paper"
    epochs: int | None = None  # None: the study's default
    latent_dim: int = 16
    architecture: str = "mlp"
    seed: int = 0
    num_examples: int = 1000
    attack_examples: int | None = None  # None: the study's default
    eps: tuple = (0.5, 1.0, 2.0)
    pgd_iter: int | None = None  # None: the study's default
    quick: bool = False
    mcmc_steps: int = 20
    distribution: str = "auto"  # training and measurement; see distribution
    verbose: int = 1


def run_report(config):
    """Builds the report; returns the dict written to report.json.

    Raises:
        ValueError: for an unknown study or bad settings.
        FileNotFoundError: for a run_dir that holds no model.
    """
    if not config.run_dirs and config.study not in STUDIES:
        raise ValueError(
            "Invalid value received for argument `study`: expected one of "
            f"{STUDIES}. Received: study={config.study!r}"
        )
    if not config.eps or any(e <= 0 for e in config.eps):
        raise ValueError(
            "Invalid value received for argument `eps`: expected numbers "
            f"> 0. Received: eps={config.eps!r}"
        )
    study = study_module("paper" if config.run_dirs else config.study)
    config = study.configure(dataclasses.replace(config))
    entries = None
    if config.run_dirs:
        entries = [reporting.load_entry(path) for path in config.run_dirs]
    return reporting.run_study(study, config, entries)
