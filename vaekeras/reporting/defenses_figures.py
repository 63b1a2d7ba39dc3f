"""The defenses study's figures: the frontier, MCMC, the damage curves.

Every model is identifiable: numbered on the plot and named in a key
beside it, or drawn in its own family's panel; an unreliable model's
marker is hollow.
"""

import numpy as np

from vaekeras.reporting.common import pyplot
from vaekeras.reporting.common import save_figure
from vaekeras.reporting.common import summary_mean as _mean
from vaekeras.reporting.common import summary_std as _std


def figures(report, entries, out, styles):
    """The Pareto plot, the MCMC comparison and the worst-damage curves;
    their file names.

    Args:
        report: what `vaekeras.studies.defenses` summarised (its `models`
            rows, seed summaries).
        entries: the models (one per seed), each with `name`, `family`
            and `analysis`.
        out: the report folder.
        styles: `{family: (marker, colour)}`, one entry per family drawn
            (`vaekeras.defenses.registry.styles()`).
    """
    plt = pyplot()
    rows = report["models"]
    plain = [r for r in rows if not r["mcmc"]]
    names = {}
    names["frontier"] = _frontier_figure(plt, plain, out, styles)
    mcmc = _mcmc_figure(plt, rows, plain, out, styles)
    if mcmc is not None:
        names["mcmc"] = mcmc
    names["damage_curves"] = _curves_figure(plt, entries, out, styles)
    return names


def _frontier_figure(plt, plain, out, styles):
    """Worst-damage area against clean error, the Pareto frontier.

    Every model is numbered on the plot and named in a key beside it
    (one-to-one, whatever its family); an unreliable one is hollow.
    """
    fig, ax = plt.subplots(figsize=(12, 6))
    numbered = sorted(plain, key=lambda r: _mean(r["clean_mse"]))
    _family_points(ax, numbered, styles, "clean_mse", "worst_area")
    frontier = [r for r in numbered if r["on_frontier"]]
    if frontier:
        ax.step([_mean(r["clean_mse"]) for r in frontier],
                [_mean(r["worst_area"]) for r in frontier],
                where="post", color="k", linewidth=1,
                label="Pareto frontier (seed means)")
    _finish_linear_or_log(
        ax, [_mean(r["clean_mse"]) for r in plain],
        [_mean(r["worst_area"]) for r in plain],
        "clean reconstruction MSE (per pixel)",
        "area under the per-image worst damage (L2 grid)",
        "Robustness against reconstruction error, mean ± std over seeds\n"
        "(lower left is better; hollow: unreliable, kept off the frontier)",
    )
    _number(ax, [
        (i, _mean(r["clean_mse"]), _mean(r["worst_area"]),
         r["name"] + ("  (frontier)" if r["on_frontier"] else "")
         + ("  (unreliable)" if not r.get("reliable", True) else ""))
        for i, r in enumerate(numbered, start=1)
    ])
    return save_figure(fig, out, "frontier.png")


# Where a number may sit around its point, in points, tried in order.
_LABEL_OFFSETS = (
    (4, 4), (4, -11), (-13, 4), (-13, -11), (4, 13), (-13, 13),
    (4, -20), (-13, -20), (12, -3), (-21, -3), (4, 22), (4, -29),
)


def _number(ax, points):
    """Numbers each point `(number, x, y, name)` on the plot and lists
    the names in a key beside it.

    Call it once the axes' scales are set: each number takes the first
    place around its point that no earlier number covers, so points in a
    cluster stay readable.
    """
    ax.get_xlim(), ax.get_ylim()  # settles the autoscaled limits
    to_points = 72.0 / ax.figure.dpi
    centres = [ax.transData.transform((x, y)) * to_points
               for _, x, y, _ in points]
    # The markers are obstacles too, so a number never hides a point.
    placed = [(px - 4, py - 4, px + 4, py + 4) for px, py in centres]
    for (number, x, y, _), centre in zip(points, centres):
        width = 6.0 * len(str(number)) + 1.0
        offset = next(
            (o for o in _LABEL_OFFSETS if not any(
                _overlap(_label_box(centre, o, width), other)
                for other in placed)),
            _LABEL_OFFSETS[0],
        )
        placed.append(_label_box(centre, offset, width))
        ax.annotate(str(number), (x, y), xytext=offset,
                    textcoords="offset points", fontsize=8)
    ax.text(
        1.02, 1.0, "\n".join(f"{n:2d}  {name}" for n, _, _, name in points),
        transform=ax.transAxes, fontsize=8, va="top", family="monospace",
    )


def _label_box(centre, offset, width):
    """The box `(left, bottom, right, top)`, in points, of a number of
    `width` set at `offset` from its point's `centre`."""
    (px, py), (dx, dy) = centre, offset
    return (px + dx, py + dy, px + dx + width, py + dy + 8.0)


def _overlap(a, b):
    """Whether boxes `(left, bottom, right, top)` intersect."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _family_points(ax, rows, styles, x_key, y_key, x_rows=None):
    """Each family's points with seed error bars, hollow when unreliable;
    `x_rows` supplies x from other rows (aligned with `rows`)."""
    x_rows = rows if x_rows is None else x_rows
    for fam, (marker, color) in styles.items():
        for reliable in (True, False):
            pts = [
                (xr, r) for xr, r in zip(x_rows, rows)
                if r["family"] == fam and r.get("reliable", True) == reliable
            ]
            if not pts:
                continue
            ax.errorbar(
                [_mean(xr[x_key]) for xr, _ in pts],
                [_mean(r[y_key]) for _, r in pts],
                xerr=[_std(xr[x_key]) for xr, _ in pts],
                yerr=[_std(r[y_key]) for _, r in pts],
                fmt=marker, color=color, markersize=7, elinewidth=0.8,
                capsize=2, markerfacecolor=color if reliable else "none",
                label=fam if reliable else f"{fam} (unreliable)",
            )


def _finish_linear_or_log(ax, xs, ys, xlabel, ylabel, title):
    """Labels, title, grid and legend; each axis log when its values span
    more than a factor 4, else linear, with enough labelled ticks to read
    every point's value."""
    from matplotlib import ticker

    # Labels side by side need more room than labels stacked: the x
    # axis gets fewer ticks per decade.
    for axis, values, scale, subs in (
        (ax.xaxis, xs, ax.set_xscale, (1, 2, 3, 5)),
        (ax.yaxis, ys, ax.set_yscale, (1, 1.5, 2, 3, 4, 5, 6, 8)),
    ):
        finite = [v for v in values if np.isfinite(v) and v > 0]
        if finite and max(finite) > 4 * min(finite):
            scale("log")
            axis.set_major_locator(ticker.LogLocator(subs=subs))
            axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            axis.set_minor_formatter(ticker.NullFormatter())
        else:
            axis.set_major_locator(ticker.MaxNLocator(8))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    # Beside the plot, under the key of numbered points.
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.02, 0.0))


def _mcmc_figure(plt, rows, plain, out, styles):
    """Each model's area through MCMC against bare; None without pairs.

    Numbered as in the frontier figure (by clean error) and named in a
    key beside the plot.
    """
    with_mcmc = {r["name"]: r for r in rows if r["mcmc"]}
    numbered = sorted(plain, key=lambda r: _mean(r["clean_mse"]))
    pairs = [(i, r, with_mcmc[r["name"]])
             for i, r in enumerate(numbered, start=1)
             if r["name"] in with_mcmc and r.get("mcmc_reference_area")]
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(10, 6))
    bare = [b for _, b, _ in pairs]
    _family_points(
        ax, [m for _, _, m in pairs], styles, "mcmc_reference_area",
        "worst_area", x_rows=bare,
    )
    xs = [_mean(b["mcmc_reference_area"]) for _, b, _ in pairs]
    ys = [_mean(m["worst_area"]) for _, _, m in pairs]
    low, high = min(xs + ys) * 0.8, max(xs + ys) * 1.25
    ax.plot([low, high], [low, high], color="0.5", linewidth=1,
            linestyle="--", label="no effect")
    _finish_linear_or_log(
        ax, xs, ys,
        "worst-damage area, bare model (the same points and budgets)",
        "worst-damage area through MCMC (adaptive attack)",
        "Test-time MCMC under an attack through the chain\n"
        "(above the line: the defense adds damage; hollow: unreliable)",
    )
    _number(ax, [
        (i, _mean(b["mcmc_reference_area"]), _mean(m["worst_area"]),
         b["name"]) for i, b, m in pairs
    ])
    return save_figure(fig, out, "mcmc.png")


def _curves_figure(plt, entries, out, styles):
    """The per-image worst damage against eps: one panel per family, its
    models in colour over the beta-VAEs in grey (the reference)."""
    grouped = {}
    for entry in entries:
        grouped.setdefault(entry.get("base_name", entry["name"]), []).append(
            entry
        )
    families = [f for f in styles if any(
        members[0]["family"] == f for members in grouped.values()
    )]
    columns = min(3, len(families))
    rows_ = -(-len(families) // columns)
    fig, axes = plt.subplots(rows_, columns, squeeze=False, sharex=True,
                             sharey=True, figsize=(4.2 * columns, 3.4 * rows_))
    for ax, fam in zip(axes.flat, families):
        _curves_panel(ax, grouped, fam, styles)
    for ax in list(axes.flat)[len(families):]:
        ax.set_visible(False)
    fig.suptitle(
        "Per-image worst damage over the attack ensemble (seed mean); "
        "grey: the beta-VAEs", fontsize=10,
    )
    return save_figure(fig, out, "damage_curves.png")


def _curves_panel(ax, grouped, family, styles):
    from matplotlib import ticker

    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red",
               "tab:purple", "tab:brown"]
    k = 0
    for name, members in grouped.items():
        curves_ = [m["analysis"]["protocol"] for m in members]
        mean = np.mean([c["mean_worst_damage"] for c in curves_], axis=0)
        own = members[0]["family"] == family
        if not own and members[0]["family"] != "beta-VAE":
            continue
        ax.plot(
            curves_[0]["eps"], mean, linewidth=1.4 if own else 0.8,
            color=palette[k % len(palette)] if own else "0.75",
            marker=styles.get(family, ("o",))[0] if own else None,
            markersize=4, label=name if own else None, zorder=3 if own else 2,
        )
        k += own
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(ticker.NullFormatter())
    ax.set_title(family, fontsize=10)
    ax.set_xlabel("L2 eps")
    ax.set_ylabel("mean worst damage")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")


