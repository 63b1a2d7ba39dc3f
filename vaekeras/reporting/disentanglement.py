"""The disentanglement study's figures and report."""

import os

import numpy as np

from vaekeras.reporting.common import fmt
from vaekeras.reporting.common import pyplot
from vaekeras.reporting.common import save_figure
from vaekeras.reporting.common import time_note

COLOURS = {"beta-VAE": "tab:blue", "beta-TCVAE": "tab:orange"}
# The figure's panels: a measure per panel against the worst-damage area.
PANELS = (
    ("mig", "MIG"), ("dci_disentanglement", "DCI disentanglement"),
    ("sap", "SAP"), ("modularity", "modularity"),
    ("factor_vae", "FactorVAE score"), ("clean_mse", "clean MSE"),
)
# Measures that are not disentanglement metrics: damage rising with them
# is no trade-off against disentanglement.
NOT_METRICS = ("median_spectral_radius", "clean_mse")
NAMES = {
    "mig": "MIG", "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness",
    "dci_informativeness_test": "DCI informativeness (test)",
    "sap": "SAP", "modularity": "modularity",
    "explicitness_test": "explicitness (test)",
    "factor_vae": "FactorVAE score",
    "median_spectral_radius": "median spectral radius",
    "clean_mse": "clean MSE",
}


def figures(report, points, traversals, out):
    """Writes the figures; returns their file names.

    Args:
        report: the study's report (its `models` and `correlations`).
        points: one dict per model: `family`, `protocol_area` and every
            measure of `PANELS`.
        traversals: `(title, images (latent, steps, H, W, 1))` pairs.
        out: the report folder.
    """
    os.makedirs(out, exist_ok=True)
    names = [_scatter_figure(report, points, out)]
    if traversals:
        names.append(_traversal_figure(traversals, out))
    return names


def _scatter_figure(report, points, out):
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.6))
    areas = [p["protocol_area"] for p in points]
    for ax, (key, label) in zip(axes.ravel(), PANELS):
        for name, colour in COLOURS.items():
            for reliable in (True, False):
                mine = [
                    p for p in points
                    if p["family"] == name and p["reliable"] == reliable
                ]
                # Hollow: an evaluation that failed a check.
                ax.scatter(
                    [p[key] for p in mine],
                    [p["protocol_area"] for p in mine], s=20,
                    facecolors=colour if reliable else "none",
                    edgecolors=colour, label=(
                        name + ("" if reliable else ", failed a check")
                        if mine else None
                    ),
                )
        for row in report["models"]:
            ax.annotate(
                row["name"], (row[key], row["protocol_area"]), fontsize=6,
                xytext=(3, 3), textcoords="offset points", color="0.3",
            )
        if min(areas) > 0 and max(areas) / min(areas) > 20:
            ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("worst-damage area")
        ax.set_title(_rho_title(report["correlations"].get(key)), fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        "Worst-damage area (lower: more robust) against each measure; a "
        "point per model, labelled at its configuration's seed mean; "
        "Spearman's rho, 95% interval over seeds", fontsize=9,
    )
    return save_figure(fig, out, "disentanglement_vs_damage.png")


def _rho_title(found):
    if found is None:
        return "rho: too few models"
    return (
        f"rho {found['rho']:+.2f} [{found['low']:+.2f}, "
        f"{found['high']:+.2f}]"
    )


def _traversal_figure(traversals, out):
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(traversals), figsize=(4.2 * len(traversals), 6.4),
        squeeze=False,
    )
    for ax, (title, images) in zip(axes[0], traversals):
        images = np.asarray(images)
        dims, steps, height, width = images.shape[:4]
        mosaic = images[..., 0].transpose(0, 2, 1, 3).reshape(
            dims * height, steps * width
        )
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1)
        # Cell borders, so a sprite's place in its own image reads.
        for k in range(1, steps):
            ax.axvline(k * width - 0.5, color="0.45", linewidth=0.6)
        for k in range(1, dims):
            ax.axhline(k * height - 0.5, color="0.45", linewidth=0.6)
        ax.set_yticks((np.arange(dims) + 0.5) * height)
        ax.set_yticklabels([f"z{d + 1}" for d in range(dims)], fontsize=7)
        ax.set_xticks((np.arange(steps) + 0.5) * width)
        ax.set_xticklabels(
            [f"{v:+.1f}" for v in np.linspace(-2, 2, steps)], fontsize=7
        )
        ax.set_xlabel("latent value (others at the image's code)", fontsize=8)
        ax.set_title(title, fontsize=8)
    return save_figure(fig, out, "traversals.png")


def markdown(report):
    """The report's Markdown."""
    config = report["config"]
    settings = report["settings"]
    lines = [
        "# Disentanglement and robustness on dSprites", "",
        "`python apps/report.py --study=disentanglement"
        + (" --quick" if config["quick"] else "") + "`", "",
        time_note(report), "",
        *_budget_lines(config, settings), "",
        "## Models (means over seeds)", "",
        "| model | seeds | MIG | DCI D | SAP | modularity | FactorVAE | "
        "worst-damage area [95% interval] | reliable | spectral radius | "
        "clean MSE |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[_model_line(row) for row in report["models"]], "",
        "## Does disentanglement go with robustness?", "",
        "Spearman's rho between each measure and the worst-damage area, "
        "over the reliably evaluated models; the interval resamples seeds "
        "within each configuration. Negative: the higher the measure, the "
        "less damage.", "",
        "| measure | rho [95% interval] | p | models | reading |",
        "|---|---|---|---|---|",
        *[
            _correlation_line(key, found)
            for key, found in report["correlations"].items()
        ], "",
        "## beta-TCVAE against the plain VAE", "",
        "Willetts et al. (ICLR 2021) find TC-penalised VAEs more robust. "
        "Each beta-TCVAE's worst-damage area against beta 1's:", "",
        *[
            f"- {name}: {verdict}"
            for name, verdict in report["tc_against_beta1"].items()
        ], "",
        report["statistics"], "",
        *_unreliable_lines(report),
        "## Figures", "",
        *[f"![{name}]({name})" for name in report.get("figures", [])],
    ]
    return "\n".join(lines) + "\n"


def _budget_lines(config, settings):
    points = settings["metric_points"]
    return [
        f"Models: beta-VAEs and beta-TCVAEs (beta 1, an extra weight on "
        f"total correlation), `{config['architecture']}`, latent "
        f"{config['latent_dim']}, {config['seeds']} seed(s) each, "
        f"{config['epochs']} epoch(s) of the study's batches of 64 "
        "(disentanglement_lib trains 300,000 steps on GPUs: these "
        "numbers compare vaekeras models with each other, not with "
        "published dSprites tables; the sprites are redrawn, not "
        "DeepMind's files).",
        "",
        f"Metrics on fresh draws from the grid: {points['num_train']:,} "
        f"training and {points['num_test']:,} test points (DCI's trees "
        f"on {points['dci_train']:,}; FactorVAE on "
        f"{points['factor_vae_votes'][0]:,} / "
        f"{points['factor_vae_votes'][1]:,} votes). Robustness: "
        f"`evaluate_robustness` on {config['attack_examples']} test images "
        f"at L2 budgets {', '.join(f'{e:g}' for e in config['eps'])} "
        "(area over log eps of the mean per-image worst damage).",
    ]


def _model_line(row):
    found = row["worst_interval"]
    cells = [
        row["name"], str(row["seeds"]),
        *[fmt(row[key], 3) for key in (
            "mig", "dci_disentanglement", "sap", "modularity", "factor_vae",
        )],
        f"{fmt(found['area'], 4)} [{fmt(found['low'], 4)}, "
        f"{fmt(found['high'], 4)}]",
        "yes" if row["reliable"] else "**no**",
        fmt(row["median_spectral_radius"], 3), fmt(row["clean_mse"], 3),
    ]
    return "| " + " | ".join(cells) + " |"


def _correlation_line(key, found):
    if found is None:
        return f"| {NAMES[key]} | - | - | - | too few models |"
    if found["high"] < 0:
        reading = "higher goes with less damage"
    elif found["low"] > 0:
        reading = "higher goes with more damage" + (
            "" if key in NOT_METRICS else " (a trade-off)"
        )
    else:
        reading = "no monotone relation found"
    return (
        f"| {NAMES[key]} | {found['rho']:+.2f} [{found['low']:+.2f}, "
        f"{found['high']:+.2f}] | {found['p']:.2g} | {found['models']} | "
        f"{reading} |"
    )


def _unreliable_lines(report):
    if not report["unreliable"]:
        return []
    return [
        "Evaluations that failed a check (a lower bound of unknown "
        "quality; left out of the correlations): "
        + ", ".join(report["unreliable"]) + ".", "",
    ]
