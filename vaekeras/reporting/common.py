"""What every figure and table shares: cells, file names, image grids."""

import os

import numpy as np

# Settings that make models incomparable when they differ within a report.
MIX_KEYS = (
    "dataset", "architecture", "latent_dim", "epochs", "likelihood",
    "keras_backend",
)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def slug(name):
    """A file-name-safe version of a model's name."""
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name)


def fmt(value, digits=4):
    """A table cell: `-` for None, `digits` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def summary_mean(summary):
    """A seed summary's mean; NaN for none."""
    return float("nan") if summary is None else summary["mean"]


def summary_std(summary):
    """A seed summary's standard deviation; 0 for none."""
    return 0.0 if summary is None else summary["std"]


def save_figure(fig, out, name):
    """Saves and closes a matplotlib figure; returns its file name."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    plt.close(fig)
    return name


def mix_note(entries):
    """Says which settings differ between the models, or None."""
    differing = []
    for key in MIX_KEYS:
        values = {
            str(e["settings"][key]) for e in entries
            if e.get("settings", {}).get(key) is not None
        }
        if len(values) > 1:
            differing.append(f"{key} ({', '.join(sorted(values))})")
    if not differing:
        return None
    return (
        "These models differ in " + "; ".join(differing) + ": differences "
        "between them are not due to the settings compared alone."
    )


def format_table(rows, columns):
    """Plain-text table of dict rows."""
    widths = [max(len(c), 8) for c in columns]
    lines = [" ".join(f"{c:>{w}s}" for c, w in zip(columns, widths))]
    for row in rows:
        lines.append(" ".join(
            f"{row[c]:{w}.4g}" if isinstance(row[c], float)
            else f"{row[c]!s:>{w}}"
            for c, w in zip(columns, widths)
        ))
    return "\n".join(lines)


def image_rows(rows, path, title=None, column_width=1.0, dpi=100):
    """Saves a PNG grid: one row of images per `(label, images)` pair.

    Args:
        rows: `(label, images (n, H, W, C))` pairs, every row n images.
        path: the PNG.
        title: a title over the grid, or None.
        column_width: inches per image.
        dpi: the PNG's resolution.
    """
    plt = pyplot()
    n = len(rows[0][1])
    fig, axes = plt.subplots(
        len(rows), n, figsize=(n * column_width, 1.1 * len(rows)),
        squeeze=False,
    )
    for r, (label, images) in enumerate(rows):
        images = np.asarray(images)
        for c in range(n):
            axes[r, c].imshow(
                np.reshape(images[c], images.shape[1:3]), cmap="gray",
                vmin=0, vmax=1,
            )
            axes[r, c].axis("off")
        axes[r, 0].set_title(label, fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return os.path.basename(path)


def time_note(report):
    """The report's timing sentence: this invocation and the models' total.

    A resumed study's invocation reuses most of its work, so the models'
    summed training and measuring time is the figure that says what the
    study costs on one process.
    """
    note = f"This invocation took {report['seconds']:g} s"
    total = report.get("compute_seconds")
    if total:
        note += (
            f"; training and measuring the models took {total:g} s in all "
            f"({total / 3600:.1f} h on one process)"
        )
    return note + "."
