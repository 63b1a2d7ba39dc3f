"""Figures of one run, one attack and one sweep."""

import math

from vaekeras.reporting.common import image_rows
from vaekeras.reporting.common import pyplot


def save_reconstructions(images, reconstructions, path):
    """Saves a PNG: test images (top row) over their reconstructions."""
    return image_rows(
        [("test images", images), ("reconstructions", reconstructions)],
        path, column_width=1.0, dpi=80,
    )


def save_attack_grid(x, reconstruct, adversarial, path, targets=None,
                     title=None, defended=False):
    """PNG rows: clean images, then each budget's attack, with recons.

    Args:
        x: clean images `(n, H, W, C)`.
        reconstruct: images -> reconstructions (numpy).
        adversarial: `(eps, x_adv)` pairs, one per budget.
        path: the PNG.
        targets: a targeted attack's target images, shown with their
            reconstructions.
        title: over the grid.
        defended: label the reconstructions as made through a test-time
            defense.
    """
    through = " (MCMC)" if defended else ""
    rows = [("clean", x), ("recon. clean" + through, reconstruct(x))]
    if targets is not None:
        rows += [
            ("target", targets),
            ("recon. target" + through, reconstruct(targets)),
        ]
    for eps, x_adv in adversarial:
        rows += [
            (f"adversarial, eps {eps:g}", x_adv),
            (f"recon. adv., eps {eps:g}" + through, reconstruct(x_adv)),
        ]
    return image_rows(rows, path, title)


def save_training_curves(history, path, monitor=None, title=None):
    """Saves a PNG: losses per epoch, and the monitored geometry beside.

    Args:
        history: per-epoch lists from epoch 1 (`metrics.json`'s
            `history`, across resumes and continuations): `loss`,
            `val_loss` and, with a monitor, `geometry_spectral_radius` and
            `geometry_entropy`.
        path: PNG path.
        monitor: the run's `GeometryMonitor` (its kind and images name
            the geometry panel), or None: the loss panel alone.
        title: the figure's title (the run: data, model, seed).
    """
    from matplotlib import ticker

    plt = pyplot()
    geometry = monitor is not None and history.get(
        "geometry_spectral_radius"
    )
    panels = 2 if geometry else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.8),
                             squeeze=False)
    ax = axes[0, 0]
    for key, label in (("loss", "training data"), ("val_loss", "test split")):
        values = history.get(key, [])
        ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
    ax.set_xlabel("epoch")
    # The model's whole training objective (a defense's or mixup's terms
    # included), not only the negative ELBO.
    ax.set_ylabel("loss (the training objective)")
    ax.set_title("Loss per epoch", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if geometry:
        _geometry_panel(axes[0, 1], history, monitor)
    epochs = len(history.get("loss", []))
    for ax in axes[0]:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlim(0.5, max(epochs, 1) + 0.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _geometry_panel(ax, history, monitor):
    radius = history["geometry_spectral_radius"]
    epochs = range(1, len(radius) + 1)
    ax.plot(epochs, radius, marker=".", color="tab:red")
    ax.set_xlabel("epoch")
    ax.set_ylabel("median spectral radius", color="tab:red")
    twin = ax.twinx()
    twin.plot(epochs, history.get("geometry_entropy", []), marker=".",
              color="tab:blue")
    twin.set_ylabel("mean von Neumann entropy", color="tab:blue")
    ax.set_title(
        f"Encoder geometry ({monitor.kind} metric, "
        f"{len(monitor.x_val)} test images)", fontsize=10,
    )
    ax.grid(alpha=0.3)


def plot_sweep(rows, path, best=None):
    """Reconstruction loss and spectral radius against beta, per alpha;
    the best trial (a row of `rows`) starred."""
    plt = pyplot()
    fig = sweep_figure(rows, best)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_figure(rows, best=None):
    """The figure of `plot_sweep`, open (the caller closes it)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    metrics = {
        "val_reconstruction_loss": "reconstruction loss (validation)",
        "val_spectral_radius": "median spectral radius (validation)",
    }
    betas = []
    for alpha in sorted({r["mixup_alpha"] for r in rows}):
        chosen = sorted(
            (r for r in rows if r["mixup_alpha"] == alpha
             and r.get("val_reconstruction_loss") is not None),
            key=lambda r: r["beta"],
        )
        for ax, metric in zip(axes, metrics):
            points = [(r["beta"], r[metric]) for r in chosen if metric in r]
            if points:
                xs, ys = zip(*points)
                betas.extend(xs)
                ax.plot(xs, ys, marker="o", label=f"mixup alpha={alpha:g}")
    for ax, metric in zip(axes, metrics):
        if best is not None and best.get(metric) is not None:
            ax.plot([best["beta"]], [best[metric]], marker="*", color="k",
                    markersize=14, linestyle="none", zorder=5,
                    label=f"best trial (beta {best['beta']:g})")
    for ax, label in zip(axes, metrics.values()):
        _beta_axis(ax, betas)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # nothing to show if all failed
            ax.legend(fontsize=8)
    fig.suptitle("Sweep: validation scores against beta")
    fig.tight_layout()
    return fig


def _beta_axis(ax, betas):
    """A log beta axis labelled at the swept betas when they are few and
    far enough apart, else with 1-2-5 ticks (one per decade beyond 3)."""
    from matplotlib import ticker

    ax.set_xscale("log")
    ax.set_xlabel("beta")
    swept = sorted(set(betas))
    apart = all(b / a >= 1.5 for a, b in zip(swept, swept[1:]))
    if 3 <= len(swept) <= 8 and apart:
        ax.xaxis.set_major_locator(ticker.FixedLocator(swept))
    else:
        decades = (
            math.log10(swept[-1] / swept[0])
            if swept and swept[0] > 0 else 0.0
        )
        subs = (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=subs))
    ax.xaxis.set_major_formatter(
        ticker.FuncFormatter(lambda value, _: f"{value:.3g}")
    )
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.xaxis.set_minor_locator(ticker.NullLocator())
