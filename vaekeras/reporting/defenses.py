"""The defenses study's figures and Markdown report."""

from vaekeras.reporting.common import fmt
from vaekeras.reporting.common import pyplot
from vaekeras.reporting.common import save_figure

FAMILIES = ("beta-VAE", "mixup", "geometry", "lipschitz", "adversarial", "tc")
MARKERS = dict(zip(FAMILIES, ("o", "s", "^", "D", "v", "P")))


def label(row):
    """A row's model, with " + MCMC" when measured through the defense."""
    return row["name"] + (" + MCMC" if row["mcmc"] else "")


def figures(report, entries, out):
    """The Pareto plot and the damage-vs-eps curves; their file names.

    Args:
        report: what `vaekeras.studies.defenses` summarised (its `models`
            rows).
        entries: the models, each with `name`, `family` and `analysis`.
        out: the report folder.
    """
    plt = pyplot()
    report_rows = report["models"]
    names = {}
    fig, ax = plt.subplots(figsize=(11, 5.5))
    colors = {f: f"C{i}" for i, f in enumerate(FAMILIES)}
    for fam in FAMILIES:
        for mcmc in (False, True):
            pts = [r for r in report_rows
                   if r["family"] == fam and r["mcmc"] == mcmc]
            if not pts:
                continue
            ax.scatter(
                [r["clean_mse"] for r in pts], [r["worst_area"] for r in pts],
                marker=MARKERS[fam], s=45,
                facecolors="none" if mcmc else colors[fam],
                edgecolors=colors[fam],
                label=fam + (" + MCMC" if mcmc else ""),
            )
    frontier = sorted(
        (r for r in report_rows if r["on_frontier"]),
        key=lambda r: r["clean_mse"],
    )
    if frontier:
        xs = [r["clean_mse"] for r in frontier]
        ys = [r["worst_area"] for r in frontier]
        ax.step(xs, ys, where="post", color="k", linewidth=1,
                label="Pareto frontier")
        # Labels in a column beside the plot, top to bottom in the
        # frontier's order (its damage falls as its clean error grows, so
        # leader lines do not cross): neighbours on the frontier often sit
        # closer than a label's height.
        for i, r in enumerate(frontier):
            ax.annotate(
                f"{i + 1}. {label(r)}", (r["clean_mse"], r["worst_area"]),
                xytext=(1.03, 0.96 - 0.94 * i / max(len(frontier), 1)),
                textcoords="axes fraction", fontsize=7, va="bottom",
                arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5},
            )
    ax.set_xscale("log")
    if all(r["worst_area"] > 0 for r in report_rows):
        ax.set_yscale("log")
    ax.set_xlabel("clean reconstruction MSE (per pixel)")
    ax.set_ylabel("worst attack's area under damage (L2 grid)")
    ax.set_title("Robustness against reconstruction error "
                 "(lower left is better)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    # Upper right: the region no good model is in.
    ax.legend(fontsize=7, loc="upper right")
    names["frontier"] = save_figure(fig, out, "frontier.png")

    attacks_l2 = [
        key for key in (entries[0]["analysis"]["curves"] if entries else {})
        if key.endswith("_l2")
    ]
    panels = max(len(attacks_l2), 1)
    fig, axes = plt.subplots(
        1, panels, figsize=(4 * panels + 2.5, 4.2), sharey=True,
        squeeze=False,
    )
    # One colour per model (a family's models share its marker), so any
    # single model can be followed across the panels: tab20's ten dark
    # hues first, then their light twins.
    palette = plt.get_cmap("tab20")

    def distinct(i):
        return (2 * i) % 20 + (i // 10) % 2
    for ax, key in zip(axes[0], attacks_l2):
        for i, entry in enumerate(entries):
            c = entry["analysis"]["curves"][key]
            ax.plot(c["eps"], c["reconstruction_damage"],
                    marker=MARKERS[entry["family"]], markersize=4,
                    color=palette(distinct(i)), linewidth=1.2,
                    label=entry["name"])
        ax.set_xscale("log")
        ax.set_title(key.replace("_l2", "").replace("_", " ") + " (L2)",
                     fontsize=10)
        ax.set_xlabel("L2 eps")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("damage: MSE(adv) - MSE(clean)")
    axes[0, -1].legend(fontsize=8, loc="upper left",
                       bbox_to_anchor=(1.02, 1.0))
    names["damage_curves"] = save_figure(fig, out, "damage_curves.png")
    return names


def markdown(report):
    """The defenses study's report as Markdown."""
    cfg = report["config"]
    grids = report["grids"]
    attack_keys = [
        k for k in (report["models"][0]["area"] if report["models"] else {})
    ]
    lines = [
        "# vaekeras defenses report",
        "",
        f"Data: `{report['dataset']}` test split ({cfg['num_examples']} "
        f"points for clean error and spectral radius, "
        f"{cfg['attack_examples']} for the attacks). {cfg['architecture']} "
        f"VAEs, latent {cfg['latent_dim']}, {cfg['epochs']} "
        f"epoch{'s' if cfg['epochs'] != 1 else ''} each, "
        f"seed {cfg['seed']}. L2 grid "
        f"{', '.join(f'{e:g}' for e in grids.get('l2', []))}; Linf grid "
        f"{', '.join(f'{e:g}' for e in grids.get('linf', []))}; PGD "
        f"{cfg['pgd_iter']} iterations; MCMC {cfg['mcmc_steps']} HMC steps. "
        f"Wall time {report['seconds']} s.",
        "",
        "Area under damage: the mean over log eps of MSE(adv) - MSE(clean) "
        "(`vaekeras.curves.area_under_damage`); the worst attack's area over "
        "the L2 grid is the robustness axis of the frontier (lower is more "
        "robust). With MCMC, clean error and damage are measured through "
        "the test-time defense (the attacks see the plain model).",
        "",
    ]
    if cfg.get("quick"):
        lines += [
            "**Smoke run (`--quick`).** Models of "
            f"{cfg['epochs']} epoch{'s' if cfg['epochs'] != 1 else ''} "
            f"measured on {cfg['attack_examples']} points: it checks that "
            "the study runs end to end; its numbers and verdicts say "
            "nothing about the defenses.",
            "",
        ]
    if report.get("mix_note"):
        lines += [f"**Note.** {report['mix_note']}", ""]
    lines += ["## Frontier", "", report["verdict"], ""]
    mix = report.get("mixup")
    if mix:
        lines += [
            "## Mixup (the paper's claim 3)", "",
            f"**{'Supported' if mix['supported'] else 'Not supported'}.** "
            + mix["summary"], "",
            "| mixup variant | clean MSE | worst area | best beta-VAE at most "
            "as clean (clean MSE, worst area) |",
            "|---|---:|---:|---|",
        ]
        for v in mix["variants"]:
            b = v["best_beta_at_most_this_clean_mse"]
            lines.append(
                f"| {v['name']} | {v['clean_mse']:.4f} | "
                f"{v['worst_area']:.4f} | "
                + ("none" if b is None else
                   f"{b['name']} ({b['clean_mse']:.4f}, "
                   f"{b['worst_area']:.4f})") + " |"
            )
        lines.append("")
    lines += [
        "## Models", "",
        "| model | family | MCMC | clean MSE | "
        + " | ".join(f"area {k}" for k in attack_keys)
        + " | median radius (fisher) | certified radius (r = 1) | "
        "s / epoch | frontier |",
        "|---|---|---|---:|" + "---:|" * len(attack_keys) + "---:|---:|---:|"
        "---|",
    ]
    for r in report["models"]:
        lines.append(
            f"| {r['name']} | {r['family']} | {'yes' if r['mcmc'] else ''} | "
            f"{r['clean_mse']:.4f} | "
            + " | ".join(fmt(r["area"][k]) for k in attack_keys)
            + f" | {fmt(r['median_spectral_radius'])} | "
            f"{fmt(r['certified_radius'])} | {fmt(r['epoch_seconds'], 3)} | "
            f"{'**yes**' if r['on_frontier'] else ''} |"
        )
    lines += ["", "## Figures", ""]
    for name in report.get("figures", {}).values():
        lines.append(f"![{name}]({name})")
    return "\n".join(lines) + "\n"
