"""Every figure and Markdown table vaekeras writes.

Drawing only: callers pass the numbers and images (a study, the training
run, an attack, a sweep), these modules draw and write them. Modules:
`common` (cells, file names, image grids), `runs` (a run's curves and
reconstructions, an attack grid, a sweep), `paper` and `defenses` (the
studies' figures and reports).
"""

from vaekeras.reporting.common import MIX_KEYS
from vaekeras.reporting.common import fmt
from vaekeras.reporting.common import format_table
from vaekeras.reporting.common import image_rows
from vaekeras.reporting.common import mix_note
from vaekeras.reporting.common import save_figure
from vaekeras.reporting.common import slug
from vaekeras.reporting.runs import plot_sweep
from vaekeras.reporting.runs import save_attack_grid
from vaekeras.reporting.runs import save_reconstructions
from vaekeras.reporting.runs import save_training_curves
from vaekeras.reporting.runs import sweep_figure

__all__ = [
    "MIX_KEYS", "fmt", "format_table", "image_rows", "mix_note",
    "plot_sweep", "save_attack_grid", "save_figure", "save_reconstructions",
    "save_training_curves", "slug", "sweep_figure",
]
