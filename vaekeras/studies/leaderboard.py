"""The leaderboard: every model of every committed report, ranked within
its report.

Built from the reports' `report.json` alone (no model is loaded), so the
docs' page cannot drift from the reports: the suite rebuilds it and
compares. Only reports measured with the current protocol
(`PROTOCOL_VERSION`) are listed; older ones are named below the tables.
"""

import json
import os

from vaekeras.reporting.common import fmt

# The protocol version whose reports the leaderboard lists (the studies'
# `PROTOCOL_VERSION`).
PROTOCOL_VERSION = 2


def read_reports(reports_dir):
    """`(folder, report)` of every `<reports_dir>/*/report.json`."""
    out = []
    for folder in sorted(os.listdir(reports_dir)):
        path = os.path.join(reports_dir, folder, "report.json")
        if os.path.exists(path):
            with open(path) as f:
                out.append((folder, json.load(f)))
    return out


def _interval(found):
    if not found:
        return "n/a"
    return (
        f"{fmt(found['area'], 4)} [{fmt(found['low'], 4)}, "
        f"{fmt(found['high'], 4)}]"
    )


def command(folder, report):
    """The command that made a report (and every model in it)."""
    study = report.get("study", "paper")
    return (
        f"python apps/report.py --study={study} "
        f"--dataset={report['dataset']} --output_dir=reports/{folder}"
    )


def rows(models):
    """Models of one report, most robust first: `(area, cells)` each."""
    out = []
    for model in models:
        # The paper study names its protocol's keys `protocol_*`; the
        # others hold the protocol's own names and seed summaries.
        name = model["name"] + (" + MCMC" if model.get("mcmc") else "")
        clean = model["clean_mse"]
        clean = clean["mean"] if isinstance(clean, dict) else clean
        found = model.get("worst_interval", model.get("protocol_interval"))
        reliable = model.get("reliable", model.get("protocol_reliable"))
        area = found["area"] if found else float("inf")
        out.append((area, [
            name, fmt(clean, 4), _interval(found),
            "yes" if reliable else "**no**",
        ]))
    return sorted(out, key=lambda r: r[0])


def section(folder, report):
    """One report's ranking: a heading, its command, its tables (models
    measured through test-time MCMC, on their own budgets and images,
    are ranked apart)."""
    lines = [
        f"## {report['dataset']}: the {report.get('study', 'paper')} "
        f"study", "",
        f"`{command(folder, report)}`",
    ]
    bare = [m for m in report["models"] if not m.get("mcmc")]
    chained = [m for m in report["models"] if m.get("mcmc")]
    for models, title in ((bare, None), (chained, (
        "Through test-time MCMC, attacked through the chain (its own "
        "budgets and images, so ranked apart):"
    ))):
        if not models:
            continue
        lines += [""] + ([title, ""] if title else []) + [
            "| rank | model | clean MSE | worst area [95% CI] | reliable |",
            "|---:|---|---:|---:|---|",
        ]
        for rank, (_, cells) in enumerate(rows(models), 1):
            lines.append(f"| {rank} | " + " | ".join(cells) + " |")
    return lines


def markdown(reports_dir):
    """The leaderboard page (Markdown) of the reports under `reports_dir`."""
    current, older = [], []
    for folder, report in read_reports(reports_dir):
        if report.get("protocol_version") == PROTOCOL_VERSION:
            current.append((folder, report))
        else:
            older.append(folder)
    lines = [
        "# Leaderboard", "",
        "Every model of every committed report under `reports/` measured "
        "with the current evaluation protocol "
        "(`vaekeras.evaluate_robustness`), one ranking per report, most "
        "robust first (budgets and images differ between reports, so "
        "models are ranked only against the others of their report): its "
        "clean reconstruction error (per-pixel MSE, seed mean), its "
        "worst-damage area (the area over log eps of the per-image worst "
        "damage, seed mean, with its 95% bootstrap interval over seeds and "
        "images), and whether every check passed for every seed. Above "
        "each table, the command that made its report and every model in "
        "it. Made by `python apps/leaderboard.py`; the test suite rebuilds "
        "it from the reports and compares.",
    ]
    for folder, report in sorted(
        current, key=lambda fr: (fr[1]["dataset"], fr[0])
    ):
        lines += [""] + section(folder, report)
    if not current:
        lines += ["", "No report measured with the current protocol yet."]
    if older:
        lines += [
            "", "Reports measured with an earlier protocol (not listed): "
            + ", ".join(f"`reports/{f}`" for f in older) + ".",
        ]
    return "\n".join(lines) + "\n"
