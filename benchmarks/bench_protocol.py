"""The evaluation protocol's cost against the four-attack curves, in one run.

On one trained run folder, the same test digits and the same L2 budgets:
the four robustness curves the studies used before the protocol (KL-PGD,
eigen on the Fisher and output metrics, random; `vaekeras.curves`), and
`evaluate_robustness` (its ensemble, restarts and sanity checks); then the
protocol through test-time MCMC on fewer digits and budgets; then where
each evaluation's time went (its members and its checks).

Usage:
    python benchmarks/bench_protocol.py \
        --run_dir=saved_models/mnist_5k_mlp_beta1
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from vaekeras import artifacts
from vaekeras import curves  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras.attacks import LatentPGD  # noqa: E402
from vaekeras.attacks import evaluate_robustness  # noqa: E402
from vaekeras.purification import MCMCReconstruction  # noqa: E402

MCMC_EPS = [0.5, 1.0, 2.0]


def timed(call):
    """`(call(), seconds it took)`."""
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def bare_comparison(model, x, grid, pgd_iter):
    """The four curves' largest area, the protocol's result, their times."""
    def four_curves():
        return [
            curves.area_under_damage(curves.robustness_curve(
                model, x, attack, grid, pgd_iter=pgd_iter, seed=0
            ))
            for attack in curves.CURVE_ATTACKS
        ]

    areas, old = timed(four_curves)
    result, new = timed(lambda: evaluate_robustness(
        model, x, grid, pgd_iter=pgd_iter, restarts=2, spsa_iter=20,
        spsa_samples=8,
    ))
    return max(areas), old, result, new


def mcmc_comparison(model, x_mcmc, pgd_iter):
    """Bare, non-adaptive and adaptive results through 20 HMC steps."""
    defense = MCMCReconstruction(model, steps=20, seed=0)
    defended, seconds = timed(lambda: evaluate_robustness(
        model, x_mcmc, MCMC_EPS, defense=defense, pgd_iter=pgd_iter,
        restarts=1, eot_samples=2, spsa_iter=10, spsa_samples=4,
    ))
    bare = evaluate_robustness(
        model, x_mcmc, MCMC_EPS, pgd_iter=pgd_iter, restarts=2,
        spsa_iter=20, spsa_samples=8,
    )
    # The evaluation the protocol replaces: damage-PGD images crafted
    # against the bare model, then purified.
    transfer = LatentPGD(
        model, eps=MCMC_EPS, max_iter=pgd_iter, objective="damage",
        seed=0,
    ).generate(x_mcmc)
    non_adaptive = curves.robustness_curve(
        model, x_mcmc, "pgd_kl", MCMC_EPS, defense=defense, x_advs=transfer,
    )["reconstruction_damage"]
    return bare, non_adaptive, defended, seconds


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
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--pgd_iter", type=int, default=20)
    parser.add_argument("--mcmc_examples", type=int, default=50)
    args = parser.parse_args()
    model, flags = artifacts.load_model_or_export(args.run_dir)
    images = data.load_run_test_arrays(flags)[0]
    x = images[:args.examples]
    grid = list(curves.DEFAULT_L2_GRID)
    old_area, old, result, new = bare_comparison(
        model, x, grid, args.pgd_iter
    )
    bare, non_adaptive, defended, mcmc = mcmc_comparison(
        model, images[:args.mcmc_examples], args.pgd_iter
    )

    print(f"{len(x)} digits, L2 budgets {grid[0]:g}-{grid[-1]:g} "
          f"({len(grid)}), PGD {args.pgd_iter} iterations")
    print("| evaluation | seconds | ratio | area |")
    print("|---|---:|---:|---:|")
    print(f"| four curves, largest per-attack mean area | {old:.1f} | 1.00 "
          f"| {old_area:.4f} |")
    print(f"| protocol, per-image worst | {new:.1f} | {new / old:.2f} "
          f"| {result['area']:.4f} |")
    print(f"| protocol through 20 HMC steps ({args.mcmc_examples} digits, "
          f"eps 0.5, 1, 2) | {mcmc:.1f} | {mcmc / old:.2f} | "
          f"{defended['area']:.4f} |")
    print()
    print(f"Mean damage on the first {args.mcmc_examples} digits "
          "(eps 0.5, 1, 2):")
    print("| model | evaluation | " + " | ".join(
        f"eps {e:g}" for e in MCMC_EPS) + " |")
    print("|---|---|---:|---:|---:|")
    rows = (
        ("bare", "protocol, per-image worst", bare["mean_worst_damage"]),
        ("20 HMC steps", "damage-PGD images of the bare model, purified "
         "(non-adaptive)", non_adaptive),
        ("20 HMC steps", "protocol through the chain (adaptive, EOT 2)",
         defended["mean_worst_damage"]),
    )
    for model_name, how, values in rows:
        print(f"| {model_name} | {how} | "
              + " | ".join(f"{v:.4f}" for v in values) + " |")
    print()
    print_time_shares("protocol, bare", result["seconds"])
    print_time_shares("protocol through 20 HMC steps", defended["seconds"])
    failed = [c["name"] for c in result["checks"] + defended["checks"]
              if not c["passed"]]
    print("checks failed:", ", ".join(failed) or "none")


if __name__ == "__main__":
    main()
