"""The paper study's figures and Markdown report."""

import os

from vaekeras.reporting.common import fmt
from vaekeras.reporting.common import image_rows
from vaekeras.reporting.common import pyplot
from vaekeras.reporting.common import save_figure
from vaekeras.reporting.common import time_note

# The attacks the paper study runs on every model, in its tables' order:
# the paper's eigen attack, latent PGD and the random baseline.
ATTACKS = ("eigen", "pgd_kl", "random")


def figures(entries, grid_rows, out):
    """Writes the paper study's PNG figures; returns their file names.

    Args:
        entries: the models, each with `name`, `beta`, `mixup_alpha` and
            its `analysis` (`vaekeras.studies.paper`).
        grid_rows: `(label, images)` rows of the adversarial grid.
        out: the report folder.
    """
    plt = pyplot()
    names = {}
    plain = sorted(
        (e for e in entries if e["beta"] is not None and not e["mixup_alpha"]),
        key=lambda e: e["beta"],
    )
    mixed = [e for e in entries if e["mixup_alpha"]]

    names["scores_vs_beta"] = _scores_figure(plt, plain, mixed, out)
    names["attack_damage"] = _damage_figure(plt, entries, out)
    names["spectra"] = _spectra_figure(plt, plain, mixed, out)
    names["adversarial_grid"] = image_rows(
        grid_rows, os.path.join(out, "adversarial_grid.png"),
        column_width=0.9,
    )
    return names


def _scores_figure(plt, plain, mixed, out):
    """The three scores against beta: medians and quartiles."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = (
        ("spectral_radius", "spectral radius"),
        ("von_neumann_entropy_max", "entropy (max-normalised)"),
        ("von_neumann_entropy_trace", "entropy (trace-normalised)"),
    )
    for ax, (key, title) in zip(axes, panels):
        if plain:
            b = [e["beta"] for e in plain]
            s = [e["analysis"]["scores"]["stochastic"][key] for e in plain]
            ax.plot(b, [v["median"] for v in s], marker="o", label="beta-VAE")
            ax.fill_between(
                b, [v["q25"] for v in s], [v["q75"] for v in s], alpha=0.25
            )
        for e in mixed:
            v = e["analysis"]["scores"]["stochastic"][key]
            ax.errorbar(
                [e["beta"]], [v["median"]],
                yerr=[[v["median"] - v["q25"]], [v["q75"] - v["median"]]],
                marker="s", color="C3", label="mixup",
            )
        ax.set_xscale("log")
        if key == "spectral_radius":
            ax.set_yscale("log")
        ax.set_xlabel("beta")
        ax.set_ylabel(title)
        ax.set_title(f"{title}: median, IQR", fontsize=10)
        ax.legend(fontsize=7)
    return save_figure(fig, out, "scores_vs_beta.png")


def _damage_figure(plt, entries, out):
    """Each attack's damage against eps, one line per model."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    # Many models (the 50-beta grid): colour by beta, not a legend.
    betas = [e["beta"] for e in entries if e["beta"]]
    shade = None
    if len(entries) > 12 and betas:
        from matplotlib import colors

        shade = colors.LogNorm(min(betas), max(betas))
    for ax, attack in zip(axes, ATTACKS):
        for e in entries:
            rows = e["analysis"]["attacks"][attack]
            # Damage, as the report defines it: what the attack adds to the
            # clean reconstruction error.
            style = {"label": e["name"]}
            if shade is not None and e["beta"]:
                style = {"color": plt.cm.viridis(shade(e["beta"])),
                         "linewidth": 0.8}
            ax.plot(
                [r["eps"] for r in rows],
                [r["reconstruction_mse"] - r["clean_reconstruction_mse"]
                 for r in rows],
                marker=".", linestyle="--" if e["mixup_alpha"] else "-",
                **style,
            )
        ax.set_title(f"{attack} attack", fontsize=10)
        ax.set_xlabel("L2 eps")
    axes[0].set_ylabel("damage: MSE(adv) - MSE(clean)")
    if shade is None:
        axes[-1].legend(fontsize=7)
    else:
        bar = fig.colorbar(
            plt.cm.ScalarMappable(norm=shade, cmap="viridis"), ax=axes[-1]
        )
        bar.set_label("beta")
    return save_figure(fig, out, "attack_damage.png")


def _spectra_figure(plt, plain, mixed, out):
    """Median top eigenvalues of three beta-VAEs and the mixup models."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    chosen = plain[:1] + plain[len(plain) // 2:len(plain) // 2 + 1] + plain[-1:]
    for e in list({id(e): e for e in chosen}.values()) + mixed:
        spectrum = e["analysis"]["spectrum_median"]["stochastic"]
        ax.plot(range(1, len(spectrum) + 1), spectrum, marker="o",
                label=e["name"])
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("median eigenvalue")
    ax.set_title("median top-10 eigenvalues (stochastic)", fontsize=10)
    ax.legend(fontsize=7)
    return save_figure(fig, out, "spectra.png")


def _pm(summary, value, digits=4):
    """`mean ± std` over seeds, or the value alone for one seed."""
    if summary is None or summary["n"] < 2:
        return fmt(value, digits)
    return f"{fmt(summary['mean'], digits)} ± {fmt(summary['std'], digits)}"


def markdown(report, authors):
    """The paper study's report as Markdown.

    Args:
        report: what `vaekeras.studies.paper` summarised.
        authors: the authors' stored MNIST numbers (`AUTHORS` there).
    """
    lines = [
        *_intro(report), *_claims(report), *_models(report),
        *_protocol(report), *_damage(report), *_spearman(report, authors),
        *_authors_radii(report), *_mixup(report),
        "",
        "## The authors' stored MNIST figures",
        "",
        _authors_paragraph(authors),
        "",
        "## Figures",
        "",
    ]
    for name in report.get("figures", {}).values():
        lines.append(f"![{name}]({name})")
    return "\n".join(lines) + "\n"


def _intro(report):
    """The title and what was measured, on what, how."""
    cfg = report["config"]
    eps = cfg["eps"]
    lines = [
        "# vaekeras robustness report",
        "",
        f"Data: `{report['dataset']}` test split "
        f"({cfg['num_examples']} points for the scores, "
        f"{cfg['attack_examples']} for the attacks). "
        + (
            f"Study `{cfg['study']}`: {cfg['architecture']} VAEs, latent "
            f"{cfg['latent_dim']}, {cfg['epochs']} epochs each, "
            + (f"seeds {cfg['seed']}-{cfg['seed'] + cfg['seeds'] - 1} per "
               "configuration (tables: seed means). "
               if (cfg.get("seeds") or 1) > 1 else f"seed {cfg['seed']}. ")
            if not cfg["run_dirs"] else
            f"Runs: {', '.join(cfg['run_dirs'])}. "
        )
        + f"Attacks: L2 eps {', '.join(f'{e:g}' for e in eps)}, PGD "
        f"{cfg['pgd_iter']} iterations. " + time_note(report),
        "",
    ]
    if report.get("mix_note"):
        lines += [f"**Note.** {report['mix_note']}", ""]
    return lines


def _claims(report):
    """Each claim with its verdict."""
    lines = [
        "## Claims",
        "",
    ]
    for claim in report["claims"]:
        verdict = {True: "supported", False: "not supported",
                   None: "not tested",
                   "not distinguishable": "not distinguishable (the gaps "
                   "are not significant (Welch, Holm))"}[claim["supported"]]
        lines.append(f"- **{claim['claim']}** {verdict}. {claim['evidence']}")
    return lines


def _models(report):
    """The models' scores and damage at the middle budget."""
    eps = report["config"]["eps"]
    middle = eps[len(eps) // 2]
    lines = [
        "",
        "## Models",
        "",
        "Scores use the stochastic metric unless marked fisher; MSE is per "
        "pixel, of the reconstruction of x_adv against the clean x.",
        "",
        "| model | beta | median radius | mean entropy (max) | mean entropy "
        "(trace) | fisher median radius | output median radius | "
        "clean MSE | "
        + " | ".join(f"{a} MSE eps {middle:g}" for a in ATTACKS)
        + " | MSE along u1..u5 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["models"]:
        lines.append(
            f"| {r['name']} | {fmt(r['beta'])} | "
            f"{fmt(r['median_spectral_radius'])} | "
            f"{fmt(r['mean_entropy_max'])} | {fmt(r['mean_entropy_trace'])}"
            f" | {fmt(r['fisher_median_spectral_radius'])} | "
            f"{fmt(r['output_median_spectral_radius'])} | "
            f"{fmt(r['clean_mse'])} | "
            + " | ".join(fmt(r[f"{a}_mse_eps{middle:g}"])
                         for a in ATTACKS)
            + " | " + ", ".join(f"{v:.3f}" for v in r["eigen_direction_mse"])
            + " |"
        )
    return lines


def _protocol(report):
    """The evaluation protocol's area per model, with its interval."""
    lines = [
        "", "## Per-image worst damage (the evaluation protocol)", "",
        "Area under the mean worst damage over the budgets "
        "(`vaekeras.attacks.evaluate_robustness`): the seeds' mean and its "
        "95% bootstrap interval over seeds and images. A model is reliable "
        "when every check passed for every seed; an unreliable one takes "
        "no part in the claims. " + report.get("statistics", ""), "",
        "| model | seeds | worst-damage area [95% CI] | clean MSE | median "
        "radius | reliable |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in report["models"]:
        spread = r.get("spread", {})
        radius = _pm(
            spread.get("median_spectral_radius"),
            r["median_spectral_radius"], 3,
        )
        failed = ", ".join(r.get("protocol_checks_failed", []))
        reliable = "yes" if r.get("protocol_reliable", not failed) else (
            f"**no** ({failed})"
        )
        lines.append(
            f"| {r['name']} | {r.get('seeds', 1)} | {_area(r)} | "
            f"{_pm(spread.get('clean_mse'), r['clean_mse'])} | {radius} | "
            f"{reliable} |"
        )
    return lines


def _area(row):
    """`area [low, high]`, or mean ± std without an interval."""
    found = row.get("protocol_interval")
    if not found:
        return _pm(row.get("spread", {}).get("protocol_area"),
                   row.get("protocol_area"))
    return (
        f"{fmt(found['area'], 4)} [{fmt(found['low'], 4)}, "
        f"{fmt(found['high'], 4)}]"
    )


def _damage(report):
    """Every attack's KL and MSE at every budget."""
    eps = report["config"]["eps"]
    lines = ["", "## Attack damage (latent KL / reconstruction MSE)", ""]
    lines.append("| model | " + " | ".join(
        f"{a} eps {e:g}" for a in ATTACKS for e in eps
    ) + " |")
    lines.append("|---|" + "---:|" * (3 * len(eps)))
    for r in report["models"]:
        lines.append(f"| {r['name']} | " + " | ".join(
            f"{r[f'{a}_kl_eps{e:g}']:.3g} / {r[f'{a}_mse_eps{e:g}']:.4f}"
            for a in ATTACKS for e in eps
        ) + " |")
    return lines


def _spearman(report, authors):
    """The correlations with beta, beside the authors'."""
    lines = ["", "## Spearman correlation with beta (beta-VAEs only)", ""]
    if report["spearman_note"]:
        lines.append(report["spearman_note"])
    else:
        lines += [
            "| quantity | rho | p-value | authors |", "|---|---:|---:|---:|"
        ]
        theirs = {
            "median_spectral_radius": authors[
                "spearman_median_spectral_radius"
            ],
            "mean_entropy_max": authors["spearman_mean_entropy"],
        }
        for key, value in report["spearman_with_beta"].items():
            mark = f"{theirs[key]:g}" if key in theirs else ""
            lines.append(
                f"| {key} | {value['rho']:.3f} | {value['p']:.2g} | {mark} |"
            )
    return lines


def _authors_radii(report):
    """Median radii of each metric kind beside the authors'."""
    lines = []
    if report.get("authors_comparison"):
        lines += [
            "", "## Absolute median spectral radii beside the authors'", "",
            "G's median spectral radius of each metric kind, and of the "
            "authors' d x d matrix J_mu J_mu^T + J_sigma J_sigma^T.", "",
            "| beta | stochastic | fisher | output | authors' matrix | "
            "authors |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for label, row in report["authors_comparison"].items():
            lines.append(
                f"| {row['beta']:g} (theirs {label}) | "
                f"{fmt(row['stochastic'])} | {fmt(row['fisher'])} | "
                f"{fmt(row['output'])} | {fmt(row['authors_matrix'])} | "
                f"{row['authors']:g} |"
            )
    return lines


def _mixup(report):
    """Mixup beside beta 1 and the equally robust beta-VAE."""
    eps = report["config"]["eps"]
    middle = eps[len(eps) // 2]
    lines = ["", "## Mixup", ""]
    mix = report["mixup"]
    if mix is None:
        lines.append("No mixup model and beta = 1 model to compare.")
    else:
        lines += [
            "| model | median radius | mean entropy (trace) | clean MSE | "
            f"eigen MSE eps {middle:g} | eigen damage eps {middle:g} | "
            f"pgd_kl MSE eps {middle:g} |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label in ("mixup", "beta1", "equal_robustness"):
            m = mix[label]
            lines.append(
                f"| {m['name']} ({label}) | {fmt(m['median_spectral_radius'])}"
                f" | {fmt(m['mean_entropy_trace'])} | {fmt(m['clean_mse'])} "
                f"| {fmt(m[f'eigen_mse_eps{middle:g}'])} | "
                f"{fmt(m[f'eigen_excess_mse_eps{middle:g}'])} | "
                f"{fmt(m[f'pgd_kl_mse_eps{middle:g}'])} |"
            )
    return lines


def _authors_paragraph(authors):
    """The authors' numbers in words, from the one dict that holds them."""
    radius = authors["median_spectral_radius"]
    steps = authors["mse_step10_u1_to_u5"]
    clean = authors["clean_mse"]

    def along(label):
        values = steps[label]
        if len(set(values)) == 1:
            return f"{values[0]:g} flat ({label})"
        return f"{values[0]:g} ... {values[-1]:g} (beta {label})"

    return (
        "Median spectral radius "
        + ", ".join(f"{v:g} (beta {k})" for k, v in radius.items())
        + f"; Spearman with beta "
        f"{authors['spearman_median_spectral_radius']:g} (median spectral "
        f"radius), {authors['spearman_mean_entropy']:g} (mean entropy); "
        "MSE at step 10 along u1..u5: "
        + ", ".join(along(label) for label in steps)
        + "; clean MSE "
        + ", ".join(f"{v:g} ({k})" for k, v in clean.items())
        + ". Their setting (full MNIST, their architecture, steps scaled "
        "by the eigenvalue) differs from this one: compare trends and "
        "signs, not absolute values."
    )
