"""The leaderboard: every model of every committed report, one table.

Built from the reports' `report.json` alone (no model is loaded), so the
docs' page cannot drift from the reports: the suite rebuilds it and
compares. Only reports measured with the current protocol
(`PROTOCOL_VERSION`) are listed; older ones are named below the table.
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


def rows(folder, report):
    """The leaderboard's rows of one report: `(area, cells)` per model."""
    study = report.get("study", "paper")
    command = (
        f"`python apps/report.py --study={study} "
        f"--dataset={report['dataset']} --output_dir=reports/{folder}`"
    )
    out = []
    for model in report["models"]:
        # The paper study names its protocol's keys `protocol_*`; the
        # others hold the protocol's own names and seed summaries.
        name = model["name"] + (" + MCMC" if model.get("mcmc") else "")
        clean = model["clean_mse"]
        clean = clean["mean"] if isinstance(clean, dict) else clean
        found = model.get("worst_interval", model.get("protocol_interval"))
        reliable = model.get("reliable", model.get("protocol_reliable"))
        area = found["area"] if found else float("inf")
        out.append((area, [
            name, report["dataset"], fmt(clean, 4), _interval(found),
            "yes" if reliable else "**no**", command,
        ]))
    return out


def markdown(reports_dir):
    """The leaderboard page (Markdown) of the reports under `reports_dir`."""
    current, older = [], []
    for folder, report in read_reports(reports_dir):
        if report.get("protocol_version") == PROTOCOL_VERSION:
            current += rows(folder, report)
        else:
            older.append(folder)
    lines = [
        "# Leaderboard", "",
        "Every model of every committed report under `reports/` measured "
        "with the current evaluation protocol "
        "(`vaekeras.evaluate_robustness`), most robust first: its clean "
        "reconstruction error (per-pixel MSE, seed mean), its worst-damage "
        "area (the area over log eps of the per-image worst damage, seed "
        "mean, with its 95% bootstrap interval over seeds and images; "
        "budgets and images differ between reports, so compare within "
        "one), whether every check passed for every seed, and the command "
        "that made it. Made by `python apps/leaderboard.py`; the test "
        "suite rebuilds it from the reports and compares.", "",
        "| model | data | clean MSE | worst area [95% CI] | reliable | "
        "command |",
        "|---|---|---:|---:|---|---|",
    ]
    for _, cells in sorted(current, key=lambda r: r[0]):
        lines.append("| " + " | ".join(cells) + " |")
    if not current:
        lines.append("| none yet | | | | | |")
    if older:
        lines += [
            "", "Reports measured with an earlier protocol (not listed): "
            + ", ".join(f"`reports/{f}`" for f in older) + ".",
        ]
    return "\n".join(lines) + "\n"
