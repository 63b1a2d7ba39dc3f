"""Masked decoys against the protocol's checks, in one run.

Wraps a trained run's model in the suite's decoys (`tests/decoys.py`):
`Shatter` (the forward pass bit for bit, the gradient cos(1000 x +
phase)) and `Round` (inputs rounded to 255 levels, no gradient), and
prints for each the protocol's worst-damage area, APGD's own area, how
much more robust it looks than the honest model, and the verdict with
the checks that failed.

Usage:
    python benchmarks/bench_masking.py --run_dir=<a beta = 1 run folder> \
        --report=reports/masking/report.md
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import decoys  # noqa: E402
import report_file  # noqa: E402

from vaekeras import artifacts  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras.attacks import evaluate_robustness  # noqa: E402
from vaekeras.attacks import log_eps_area  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--report", help="also write the table here")
    args = parser.parse_args()
    model, flags = artifacts.load_model_or_export(args.run_dir)
    x = data.load_run_test_arrays(flags)[0][:args.examples]
    eps = [0.5, 1.0, 2.0, 4.0]
    models = {
        "honest": model,
        "shattered gradient": decoys.wrapped(model, decoys.Shatter()),
        "rounded inputs": decoys.wrapped(model, decoys.Round()),
    }
    setting = f"{len(x)} test images of {args.run_dir}, L2 eps {eps}."
    lines = [
        "| model | worst area | APGD-damage area | looks more robust | "
        "reliable | failed checks |",
        "|---|---:|---:|---:|---|---|",
    ]
    print(setting + "\n\n" + "\n".join(lines))
    honest = None
    for name, candidate in models.items():
        result = evaluate_robustness(candidate, x, eps, seed=0)
        honest = honest or result["area"]
        apgd = log_eps_area(eps, result["attacks"]["apgd_damage"]["damage"])
        failed = [c["name"] for c in result["checks"] if not c["passed"]]
        lines.append(
            f"| {name} | {result['area']:.4f} | {apgd:.4f} | "
            f"{honest / result['area']:.2f}x | {result['reliable']} | "
            f"{', '.join(failed) or 'none'} |"
        )
        print(lines[-1])
    if args.report:
        report_file.write(
            args.report, "Masked decoys against the protocol's checks",
            lines, setting,
        )


if __name__ == "__main__":
    main()
