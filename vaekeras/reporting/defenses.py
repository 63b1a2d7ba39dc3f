"""The defenses study's figures and Markdown report."""

import re

import numpy as np

from vaekeras.reporting.common import fmt
from vaekeras.reporting.common import summary_mean
from vaekeras.reporting.common import time_note


def label(row):
    """A row's model, with " + MCMC" when measured through the defense."""
    return row["name"] + (" + MCMC" if row["mcmc"] else "")


def pm(summary, digits=4):
    """`mean ± std` of a seed summary ("mean" alone for one seed)."""
    if summary is None:
        return "n/a"
    if summary["n"] < 2:
        return fmt(summary["mean"], digits)
    return f"{fmt(summary['mean'], digits)} ± {fmt(summary['std'], digits)}"


def _mean(summary):
    return summary_mean(summary)


def _cell(summary, digits=4):
    """A seed summary's mean alone, "n/a" when there is none."""
    return "n/a" if summary is None else fmt(summary["mean"], digits)


def unconverged_note(plain):
    """A caveat when the attack through MCMC did not converge."""
    unconverged = [
        r for r in plain
        if "converged" in r.get("failed_checks", {}).get("mcmc", {})
    ]
    if not unconverged:
        return ""
    return (
        " The attack through the chain failed the convergence check for "
        f"{len(unconverged)} of {len(plain)} configurations even after "
        "its reruns with more iterations (see Sanity checks): their "
        "damage through MCMC is a lower bound, and MCMC's benefit there "
        "is not established."
    )


def mcmc_clean_note(plain, with_mcmc):
    """What the chain costs on clean images, in words.

    Damage through MCMC is measured from the chain's own clean
    reconstruction, so a chain that blurred every image could lower the
    damage while raising the error a user sees; this says which way the
    chain moved the clean error.
    """
    by_name = {r["name"]: r for r in plain}
    ratios = [
        _mean(m["clean_mse"])
        / _mean(by_name[m["name"]]["mcmc_reference_clean_mse"])
        for m in with_mcmc
        if by_name[m["name"]].get("mcmc_reference_clean_mse")
    ]
    if not ratios:
        return ""
    raised = sum(r > 1 for r in ratios)
    return (
        " On the same clean points the chain's reconstruction error is "
        f"{np.median(ratios):.2f}x the bare model's (median; range "
        f"{min(ratios):.2f}-{max(ratios):.2f}x, higher for {raised} of "
        f"{len(ratios)} models); damage through MCMC is counted from the "
        "chain's own clean reconstruction."
    )


def _mcmc_lines(plain, with_mcmc):
    """A table: each model bare and through MCMC, on the same points."""
    lines = [
        "## Test-time MCMC", "",
        "On the points and budgets the chain was attacked at; the clean "
        "MSE through MCMC is the chain's reconstruction of the clean "
        "image, and damage through MCMC is counted from it.", "",
        "| model | clean MSE, bare | clean MSE, MCMC | worst area, bare | "
        "worst area, MCMC (adaptive) | `converged` failed (runs) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in plain:
        m = with_mcmc.get(r["name"])
        if m is None:
            continue
        failed = r.get("failed_checks", {}).get("mcmc", {}).get("converged")
        lines.append(
            f"| {r['name']} | {pm(r.get('mcmc_reference_clean_mse'))} | "
            f"{pm(m['clean_mse'])} | {pm(r.get('mcmc_reference_area'))} | "
            f"{pm(m['worst_area'])} | "
            f"{failed['runs'] if failed else 0} of {r['seeds']} |"
        )
    return lines + [""]


def interval(row):
    """`area [low, high]`: the worst area's 95% bootstrap interval."""
    found = row.get("worst_interval")
    if not found:
        return pm(row["worst_area"])
    return (
        f"{fmt(found['area'], 4)} [{fmt(found['low'], 4)}, "
        f"{fmt(found['high'], 4)}]"
    )


def certificate(row):
    """The certified radius, median / worst image, where it says
    something (above one pixel's 1/255 step); "vacuous" below."""
    median, worst = row.get("certified_radius"), row.get(
        "certified_radius_min"
    )
    if median is None:
        return "n/a"
    if median["mean"] <= 1.0 / 255.0:
        return "vacuous"
    return f"{fmt(median['mean'], 3)} / {_cell(worst, 3)}"


def margin(row):
    """The empirical margin, median / worst image."""
    return (
        f"{_cell(row.get('empirical_margin'), 3)} / "
        f"{_cell(row.get('empirical_margin_min'), 3)}"
    )


def reliable_cell(row):
    return "yes" if row.get("reliable", True) else "**no**"


def _summary_lines(plain, with_mcmc):
    """One compact row per model, from the lowest clean error up."""
    lines = [
        "| model | clean MSE | worst area [95% CI] | MCMC: bare -> "
        "adaptive | certified radius | reliable | frontier |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for r in sorted(plain, key=lambda r: _mean(r["clean_mse"])):
        m = with_mcmc.get(r["name"])
        mcmc = (
            f"{_cell(r.get('mcmc_reference_area'))} -> "
            f"{_cell(m['worst_area'])}" if m else "n/a"
        )
        lines.append(
            f"| {r['name']} | {pm(r['clean_mse'])} | {interval(r)} | "
            f"{mcmc} | {certificate(r)} | {reliable_cell(r)} | "
            f"{'**yes**' if r['on_frontier'] else ''} |"
        )
    return lines + [""]


def _checks_lines(plain):
    """The failed checks, per evaluation (bare, through MCMC) and check:
    how many runs failed, with the largest shortfall's detail."""
    lines = []
    for key, label in (("bare", "bare models"), ("mcmc", "through MCMC")):
        failures = {}
        for row in plain:
            for name, failed in row.get("failed_checks", {}).get(
                key, {}
            ).items():
                entry = failures.setdefault(
                    name, {"runs": 0, "of": 0, "models": [], "details": []}
                )
                entry["runs"] += failed["runs"]
                entry["models"].append(row["name"])
                entry["details"] += failed["details"]
        runs = sum(row["seeds"] for row in plain)
        label = label[0].upper() + label[1:]
        if not failures:
            lines.append(f"- {label}: every check passed in all {runs} runs.")
            continue
        for name, entry in failures.items():
            worst = max(entry["details"], key=_percent)
            lines.append(
                f"- {label}: `{name}` failed in "
                f"{entry['runs']} of {runs} runs ({len(entry['models'])} "
                f"of {len(plain)} configurations); the largest: {worst}. "
                "Those runs' numbers are lower bounds on the damage."
            )
    return lines


def _percent(detail):
    """The signed percentage a check's detail reports, else 0."""
    found = re.search(r"\(([+-]?[\d.]+)%", detail)
    return float(found.group(1)) if found else 0.0


def markdown(report):
    """The defenses study's report as Markdown."""
    cfg = report["config"]
    rows = report["models"]
    plain = [r for r in rows if not r["mcmc"]]
    with_mcmc = {r["name"]: r for r in rows if r["mcmc"]}
    lines = _intro(report)
    if cfg.get("quick"):
        lines += [
            "**Smoke run (`--quick`).** Models of "
            f"{cfg['epochs']} epoch{'s' if cfg['epochs'] != 1 else ''} "
            f"measured on {cfg['attack_examples']} points with one seed: "
            "it checks that the study runs end to end; its numbers and "
            "verdicts say nothing about the defenses.",
            "",
        ]
    if report.get("mix_note"):
        lines += [f"**Note.** {report['mix_note']}", ""]
    lines += ["## Frontier", "", report["verdict"], ""]
    if plain:
        lines += _summary_lines(plain, with_mcmc)
    lines += ["## Sanity checks", ""] + _checks_lines(plain) + [""]
    if with_mcmc:
        lines += _mcmc_lines(plain, with_mcmc)
    lines += _mixup_lines(report.get("mixup"))
    lines += _models_lines(plain, with_mcmc)
    lines += ["", "## Figures", ""]
    for name in report.get("figures", {}).values():
        lines.append(f"![{name}]({name})")
    return "\n".join(lines) + "\n"


def _intro(report):
    """The title, the setting and how every number is measured."""
    cfg = report["config"]
    settings = report.get("settings", {})
    grid = settings.get("grid", [])
    lines = [
        "# vaekeras defenses report",
        "",
        f"Data: `{report['dataset']}` test split ({cfg['num_examples']} "
        f"points for clean error and spectral radius, "
        f"{cfg['attack_examples']} for the attacks, the first "
        f"{cfg['mcmc_examples']} of them through MCMC). "
        f"{cfg['architecture']} VAEs, latent {cfg['latent_dim']}, "
        f"{cfg['epochs']} epoch{'s' if cfg['epochs'] != 1 else ''} each, "
        f"seeds {cfg['seed']}-{cfg['seed'] + cfg['seeds'] - 1} per "
        f"configuration. L2 grid {', '.join(f'{e:g}' for e in grid)}; "
        f"MCMC ({cfg['mcmc_steps']} HMC steps) at "
        f"{', '.join(f'{e:g}' for e in settings.get('mcmc_grid', []))}. "
        + time_note(report),
        "",
        "Every number comes from the evaluation protocol "
        "(`vaekeras.attacks.evaluate_robustness`): per image, the largest "
        "damage (MSE(adv) - MSE(clean)) over Auto-PGD on the damage "
        f"({settings.get('pgd_iter')} iterations; runs from next to x, a "
        "random point and a latent warm start) and on the latent KL, the "
        "eigen attacks (Fisher, output), random directions and the Square "
        "attack (queries only); areas are the mean over log eps of the "
        "mean worst damage. Through MCMC Auto-PGD differentiates through "
        f"the chain (EOT over {settings.get('eot_samples')} draws, "
        f"{settings.get('mcmc_pgd_iter')} iterations, doubled while it has "
        "not converged) and every image is scored by the mean of 8 chain "
        "draws. A model is reliable when every check passed for every "
        "seed; an unreliable one is left out of the frontier. Values are "
        "mean ± sample std over seeds; intervals are 95% bootstrap "
        "intervals over seeds and images. "
        + report.get("statistics", ""),
        "",
    ]
    return lines


def _mixup_lines(mix):
    """Mixup against the beta-VAEs at most as clean (claim 3)."""
    lines = []
    if mix:
        lines += [
            "## Mixup (the paper's claim 3)", "",
            f"**{mix['verdict'].capitalize()}.** " + mix["summary"], "",
            "| mixup variant | clean MSE | worst area | best beta-VAE at most "
            "as clean (clean MSE, worst area) | outcome |",
            "|---|---:|---:|---|---|",
        ]
        for v in mix["variants"]:
            b = v["best_beta_at_most_this_clean_mse"]
            lines.append(
                f"| {v['name']} | {pm(v['clean_mse'])} | "
                f"{pm(v['worst_area'])} | "
                + ("none" if b is None else
                   f"{b['name']} ({pm(b['clean_mse'])}, "
                   f"{pm(b['worst_area'])})") + f" | {v['outcome']} |"
            )
        lines.append("")
    return lines


def _models_lines(plain, with_mcmc):
    """One row per model: every area, radius, margin and cost."""
    lines = [
        "## Models", "",
        "Certified radius (r = 1) and empirical margin: median / worst "
        "image; a certified radius below one pixel's 1/255 step is "
        "vacuous.", "",
        "| model | worst area | APGD-damage area | APGD-KL area | "
        "Square area | through MCMC | median radius (fisher) | "
        "certified radius | empirical margin | s / epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in plain:
        m = with_mcmc.get(r["name"])
        area = r["attack_area"]
        lines.append(
            f"| {r['name']} | {pm(r['worst_area'])} | "
            f"{pm(area.get('apgd_damage'))} | "
            f"{pm(area.get('apgd_kl'))} | {pm(area.get('square'))} | "
            f"{pm(m['worst_area']) if m else 'n/a'} | "
            f"{pm(r['median_spectral_radius'], 3)} | "
            f"{certificate(r)} | {margin(r)} | "
            f"{fmt(r['epoch_seconds'], 3)} |"
        )
    return lines
