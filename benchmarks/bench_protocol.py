"""The defenses study's evaluation of one model: cost, time shares, seeds.

On one trained run folder, the defenses study's own two evaluations
(`vaekeras.studies.defenses.evaluate_model`, with the study's settings
for the run's data set: the bare protocol on the whole L2 grid, and the
protocol through test-time MCMC, attacked through the chain), each run
under two evaluation seeds; beside them the four robustness curves the
studies used before the protocol (`vaekeras.curves`), as a unit of cost.
Prints each evaluation's time and area, how far the two seeds' areas
lie apart, and where each evaluation's time went (its members and its
checks).

Usage:
    python benchmarks/bench_protocol.py \
        --run_dir=reports/defenses/runs/mnist_5k/beta1_seed0
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from vaekeras import artifacts  # noqa: E402
from vaekeras import curves  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras.studies import ReportConfig  # noqa: E402
from vaekeras.studies import defenses as defenses_study  # noqa: E402
from vaekeras.studies import get_study  # noqa: E402


def timed(call):
    """`(call(), seconds it took)`."""
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def study_config(dataset, quick):
    """The defenses study's settings for `dataset` (its smoke run's with
    `quick`)."""
    study = get_study("defenses")
    return study.configure(study.with_defaults(ReportConfig(
        study="defenses", dataset=dataset, quick=quick, verbose=0
    )))


def four_curves(model, x, grid, pgd_iter):
    """The largest of the four curves' mean-damage areas, and its time."""
    def areas():
        return max(
            curves.area_under_damage(curves.robustness_curve(
                model, x, attack, grid, pgd_iter=pgd_iter, seed=0
            ))
            for attack in curves.CURVE_ATTACKS
        )

    return timed(areas)


def print_rows(config, curve_area, curve_seconds, results):
    """One row per evaluation and seed: seconds, ratio, area, reliable."""
    grid = defenses_study.budgets(config)
    mcmc_grid = defenses_study.mcmc_budgets(config)
    print(f"{config.attack_examples} images x {len(grid)} L2 budgets "
          f"bare; {config.mcmc_examples} x {len(mcmc_grid)} through "
          f"{config.mcmc_steps} HMC steps; APGD {config.pgd_iter} "
          "iterations")
    print("| evaluation | seed | seconds | / four curves | area | reliable |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| four curves, largest mean area | 0 | {curve_seconds:.0f} | "
          f"1.00 | {curve_area:.5f} | - |")
    for (seed, kind), result in results.items():
        seconds = sum(result["seconds"].values())
        print(f"| protocol, {kind} | {seed} | {seconds:.0f} | "
              f"{seconds / curve_seconds:.2f} | {result['area']:.5f} | "
              f"{result['reliable']} |")
    print()


def print_agreement(results, seeds):
    """Each evaluation's area under the first two seeds, and their gap."""
    print("| evaluation | " + " | ".join(f"seed {s}" for s in seeds[:2])
          + " | relative difference |")
    print("|---|---:|---:|---:|")
    for kind in ("bare", "through MCMC"):
        first, second = (results[(s, kind)]["area"] for s in seeds[:2])
        gap = abs(second - first) / max(first, second)
        print(f"| {kind} | {first:.5f} | {second:.5f} | {gap:.3f} |")
    print()


def print_time_shares(title, seconds):
    """Where an evaluation's time went: each member's and the checks'
    seconds and share of their sum."""
    total = sum(seconds.values())
    print(f"{title}: {total:.1f} s")
    print("| part | seconds | share |")
    print("|---|---:|---:|")
    for part, spent in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"| {part} | {spent:.1f} | {spent / total:.2f} |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--seeds", default="0,1",
                        help="evaluation seeds, comma-separated (>= 2)")
    parser.add_argument("--quick", action="store_true",
                        help="the study's smoke settings (a minute)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(seeds) < 2:
        parser.error(f"--seeds needs two seeds or more, got {args.seeds!r}")
    model, flags = artifacts.load_model_or_export(args.run_dir)
    config = study_config(flags.get("dataset"), args.quick)
    images = data.load_run_test_arrays(flags)[0]
    x = images[:config.attack_examples]
    curve_area, curve_seconds = four_curves(
        model, x, list(defenses_study.budgets(config)), config.pgd_iter
    )
    results = {}
    for seed in seeds:
        bare, defended = defenses_study.evaluate_model(model, x, config, seed)
        results[(seed, "bare")] = bare
        results[(seed, "through MCMC")] = defended
    print_rows(config, curve_area, curve_seconds, results)
    print_agreement(results, seeds)
    print_time_shares("protocol, bare", results[(seeds[0], "bare")][
        "seconds"])
    print_time_shares("protocol through MCMC", results[
        (seeds[0], "through MCMC")]["seconds"])
    failed = sorted({c["name"] for result in results.values()
                     for c in result["checks"] if not c["passed"]})
    print("checks failed:", ", ".join(failed) or "none")


if __name__ == "__main__":
    main()
