"""Compares the defenses frontier of two data sets, configuration by
configuration.

Reads two `report.json` files of the defenses study (e.g. mnist_5k and
Fashion-MNIST) and prints, for each configuration in both, its clean MSE,
worst-damage area and frontier place on each; then Spearman's rho between
the two data sets' worst areas and clean errors over the configurations
(do the defenses keep their order?), and which frontier members the two
share.

Usage:
    python benchmarks/compare_frontiers.py reports/defenses/report.json \
        reports/defenses_fashion_mnist/report.json
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vaekeras.studies.base import spearman  # noqa: E402


def bare_rows(path):
    """`(data set, {name: row})` of a defenses report's bare models."""
    with open(path) as f:
        report = json.load(f)
    return report["dataset"], {
        r["name"]: r for r in report["models"] if not r["mcmc"]
    }


def frontier_places(rows):
    """Each frontier member's place, 1 = cleanest."""
    members = sorted(
        (r for r in rows.values() if r["on_frontier"]),
        key=lambda r: r["clean_mse"]["mean"],
    )
    return {r["name"]: i + 1 for i, r in enumerate(members)}


def compare(path_a, path_b):
    """The comparison as Markdown lines."""
    name_a, a = bare_rows(path_a)
    name_b, b = bare_rows(path_b)
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
    args = parser.parse_args()
    print("\n".join(compare(args.report_a, args.report_b)))


if __name__ == "__main__":
    main()
