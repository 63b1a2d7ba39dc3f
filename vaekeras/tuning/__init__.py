"""KerasTuner sweeps over beta (and mixup alpha).

Modules: `hypermodel` (the `BetaHyperModel`), `oracle_repairs`
(KerasTuner 1.4 repairs, each with its upstream issue), `sweep`
(`make_tuner`, `SweepConfig`, `run_sweep`). The sweep figure is
`vaekeras.reporting.sweep_figure`.
"""

from vaekeras.tuning.hypermodel import BetaHyperModel
from vaekeras.tuning.hypermodel import check_betas
from vaekeras.tuning.oracle_repairs import DEFAULT_WORKER_TIMEOUT
from vaekeras.tuning.oracle_repairs import ResumableGridOracle
from vaekeras.tuning.sweep import OBJECTIVES
from vaekeras.tuning.sweep import TUNERS
from vaekeras.tuning.sweep import SweepConfig
from vaekeras.tuning.sweep import check_tuner_settings
from vaekeras.tuning.sweep import make_tuner
from vaekeras.tuning.sweep import run_sweep
from vaekeras.tuning.sweep import trial_rows

__all__ = [
    "BetaHyperModel", "DEFAULT_WORKER_TIMEOUT", "OBJECTIVES",
    "ResumableGridOracle", "SweepConfig", "TUNERS", "check_betas",
    "check_tuner_settings", "make_tuner", "run_sweep", "trial_rows",
]
