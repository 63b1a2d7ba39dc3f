"""Checks README's Results table against the report.json it came from.

Every number of README's paper table (and docs/results.md's copy) must
be what `python apps/report.py --study=paper ...` wrote into its
report.json, to the digits printed. Prints each disagreement and exits
1 when there is one.

Usage:
    python benchmarks/check_readme_results.py \
        --report=reports/paper/report.json
"""

import argparse
import json
import re
import sys

# README column -> (report.json key, format).
COLUMNS = (
    ("median spectral radius", "median_spectral_radius", "{:.3g}"),
    ("mean entropy (max / trace)", ("mean_entropy_max", "mean_entropy_trace"),
     "{:.2f} / {:.2f}"),
    ("clean MSE", "clean_mse", "{:.4f}"),
    ("eigen damage", "eigen_excess_mse_eps1", "{:.4f}"),
    ("PGD MSE", "pgd_mse_eps1", "{:.4f}"),
    ("random MSE", "random_mse_eps1", "{:.4f}"),
    ("worst-damage area", "protocol_area", "{:.4f}"),
)


def report_name(readme_name):
    """README's row name -> the report's model name."""
    if readme_name.startswith("mixup"):
        beta = re.search(r"beta ([\d.]+)", readme_name).group(1)
        alpha = re.search(r"alpha ([\d.]+)", readme_name).group(1)
        return f"mixup beta={beta} alpha={alpha}"
    return readme_name.replace("beta ", "beta=")


def table_rows(path):
    """The rows of the file's paper table: name -> cells."""
    rows = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 1 + len(COLUMNS) and (
                cells[0].startswith(("beta ", "mixup"))
            ):
                rows[cells[0]] = cells[1:]
    return rows


def expected(model, key, form):
    """The report's value(s) printed as the table prints them."""
    keys = key if isinstance(key, tuple) else (key,)
    return form.format(*(model[k] for k in keys))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", required=True)
    parser.add_argument("--files", default="README.md,docs/results.md")
    args = parser.parse_args()
    with open(args.report) as f:
        models = {m["name"]: m for m in json.load(f)["models"]}
    problems = 0
    for path in args.files.split(","):
        rows = table_rows(path)
        if not rows:
            print(f"{path}: no paper table found")
            problems += 1
        for name, cells in rows.items():
            model = models.get(report_name(name))
            if model is None:
                print(f"{path}: {name!r} is not in the report")
                problems += 1
                continue
            for (column, key, form), cell in zip(COLUMNS, cells):
                want = expected(model, key, form)
                if cell != want:
                    print(f"{path}: {name}, {column}: table {cell}, "
                          f"report {want}")
                    problems += 1
        print(f"{path}: {len(rows)} rows checked")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
