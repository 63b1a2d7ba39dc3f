"""Compares the defenses frontier of two data sets, configuration by
configuration.

Reads two defenses studies (e.g. mnist_5k and Fashion-MNIST), each from
its `report.json` or from a Markdown file holding its summary table (the
study's `report.md`, or the Results page, whose first table with the
columns model, clean MSE, worst area and frontier is read), and prints,
for each configuration in both, its clean MSE, worst-damage area and
frontier place on each; then Spearman's rho between the two data sets'
worst areas and clean errors over the configurations (do the defenses
keep their order?), and which frontier members the two share.

Usage:
    python benchmarks/compare_frontiers.py reports/defenses/report.json \
        reports/defenses_fashion_mnist/report.json
    python benchmarks/compare_frontiers.py docs/results.md \
        reports/defenses_fashion_mnist/report.json --labels=mnist_5k,fashion
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from check_readme_results import cells  # noqa: E402
from check_readme_results import is_rule  # noqa: E402

from vaekeras.studies.seed_statistics import spearman  # noqa: E402

COLUMNS = ("model", "clean MSE", "worst area", "frontier")


def bare_rows(path):
    """`(data set, {name: row})` of a defenses report's bare models."""
    if path.endswith(".md"):
        return markdown_rows(path)
    with open(path) as f:
        report = json.load(f)
    return report["dataset"], {
        r["name"]: r for r in report["models"] if not r["mcmc"]
    }


def mean_of(cell):
    """The mean of a `mean ± std` or `mean [low, high]` cell."""
    return {"mean": float(re.split(r"[±\[]", cell)[0])}


def column_name(cell):
    """A header cell without its bracketed note: `worst area [95% CI]`
    names the column `worst area`."""
    return re.sub(r"\s*\[.*\]$", "", cell)


def markdown_rows(path):
    """`(label, {name: row})` from a Markdown file's first summary table.

    The label is the file's name, or the report folder its table's marker
    (`<!-- rows from reports/<folder>/report.md -->`) names.
    """
    with open(path) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        header = cells(line)
        if header is None:
            continue
        header = tuple(column_name(c) for c in header)
        if not set(COLUMNS) <= set(header):
            continue
        marker = re.search(r"rows from (\S+)/report\.md", lines[i - 1])
        label = marker.group(1) if marker else path
        at = {c: header.index(c) for c in COLUMNS}
        rows = {}
        for data in lines[i + 1:]:
            row = cells(data)
            if row is None:
                break
            if is_rule(row):
                continue
            rows[row[at["model"]]] = {
                "name": row[at["model"]],
                "clean_mse": mean_of(row[at["clean MSE"]]),
                "worst_area": mean_of(row[at["worst area"]]),
                "on_frontier": "yes" in row[at["frontier"]],
            }
        return label, rows
    raise ValueError(
        f"{path} has no table with the columns {', '.join(COLUMNS)}."
    )


def frontier_places(rows):
    """Each frontier member's place, 1 = cleanest."""
    members = sorted(
        (r for r in rows.values() if r["on_frontier"]),
        key=lambda r: r["clean_mse"]["mean"],
    )
    return {r["name"]: i + 1 for i, r in enumerate(members)}


def compare(path_a, path_b, labels=None):
    """The comparison as Markdown lines; `labels` replace the two names."""
    name_a, a = bare_rows(path_a)
    name_b, b = bare_rows(path_b)
    if labels:
        name_a, name_b = labels
    common = [n for n in a if n in b]
    if len(common) < 3:
        raise ValueError(
            f"The two reports share {len(common)} configurations; at least "
            "3 are needed to compare their order."
        )
    place_a, place_b = frontier_places(a), frontier_places(b)
    lines = [
        f"| model | clean MSE, {name_a} | worst area, {name_a} | frontier, "
        f"{name_a} | clean MSE, {name_b} | worst area, {name_b} | "
        f"frontier, {name_b} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in common:
        lines.append(
            f"| {n} | {a[n]['clean_mse']['mean']:.4g} | "
            f"{a[n]['worst_area']['mean']:.4g} | {place_a.get(n, '')} | "
            f"{b[n]['clean_mse']['mean']:.4g} | "
            f"{b[n]['worst_area']['mean']:.4g} | {place_b.get(n, '')} |"
        )
    lines.append("")
    for key, label in (("worst_area", "worst area"),
                       ("clean_mse", "clean MSE")):
        rho, p = spearman(
            [a[n][key]["mean"] for n in common],
            [b[n][key]["mean"] for n in common],
        )
        lines.append(
            f"- Spearman rho of the {label} across the {len(common)} "
            f"configurations: {rho:.3f} (p = {p:.2g})."
        )
    def listed(names):
        return ", ".join(sorted(names)) or "none"

    lines.append(
        f"- On both frontiers: {listed(set(place_a) & set(place_b))}; only "
        f"on {name_a}'s: {listed(set(place_a) - set(place_b))}; only on "
        f"{name_b}'s: {listed(set(place_b) - set(place_a))}."
    )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report_a")
    parser.add_argument("report_b")
    parser.add_argument(
        "--labels", default=None,
        help="Two comma-separated names for the reports' columns.",
    )
    args = parser.parse_args()
    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != 2:
        parser.error(f"--labels takes two names; got {args.labels!r}")
    print("\n".join(compare(args.report_a, args.report_b, labels)))


if __name__ == "__main__":
    main()
