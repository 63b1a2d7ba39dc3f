"""Checks README's and Results' tables against the reports they came from.

A table copied from a study's report is marked, on the line above it, with
`<!-- rows from reports/<folder>/report.md -->`. Every data row of the
marked table must be a row of a table in that report.md, cell for cell
(the report writes its tables from the report.json of the same run, so a
row that differs is a number that no longer comes from the current
report). Prints each disagreement and exits 1 when there is one, or when a
marked report is missing.

Usage:
    python benchmarks/check_readme_results.py
    python benchmarks/check_readme_results.py --files=README.md
"""

import argparse
import os
import re
import sys

MARKER = re.compile(r"<!--\s*rows from (\S+)\s*-->")


def cells(line):
    """A Markdown table line's cells, stripped; None for other lines."""
    line = line.strip()
    if not line.startswith("|"):
        return None
    return tuple(c.strip() for c in line.strip("|").split("|"))


def is_rule(row):
    return all(re.fullmatch(r":?-+:?", c) for c in row)


def report_rows(path):
    """Every data row of every table in a report.md."""
    rows = set()
    with open(path) as f:
        for line in f:
            row = cells(line)
            if row is not None and not is_rule(row):
                rows.add(row)
    return rows


def marked_tables(path):
    """`(report path, line number, [rows])` for each marked table."""
    with open(path) as f:
        lines = f.read().splitlines()
    tables = []
    for i, line in enumerate(lines):
        match = MARKER.search(line)
        if not match:
            continue
        rows, j = [], i + 1
        while j < len(lines) and cells(lines[j]) is not None:
            rows.append((j + 1, cells(lines[j])))
            j += 1
        # The header and the rule are the table's own, not the report's.
        data = [(n, r) for n, r in rows[2:]]
        tables.append((match.group(1), i + 1, data))
    return tables


def check(paths, root="."):
    """Disagreements, one line each, over the files' marked tables."""
    problems = []
    for path in paths:
        tables = marked_tables(path)
        for report, line, rows in tables:
            full = os.path.join(root, report)
            if not os.path.exists(full):
                problems.append(f"{path}:{line}: {report} does not exist")
                continue
            if not rows:
                problems.append(f"{path}:{line}: no table under the marker")
            known = report_rows(full)
            for number, row in rows:
                if row not in known:
                    problems.append(
                        f"{path}:{number}: row {' | '.join(row)!r} is not "
                        f"in {report}"
                    )
        print(f"{path}: {len(tables)} marked tables, "
              f"{sum(len(t[2]) for t in tables)} rows checked")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="README.md,docs/results.md")
    args = parser.parse_args()
    problems = check(args.files.split(","))
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
