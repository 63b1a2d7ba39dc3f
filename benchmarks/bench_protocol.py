"""The evaluation protocol's cost against the four-attack curves, in one run.

On one trained run folder, the same test digits and the same L2 budgets:
the four robustness curves the studies used before the protocol (KL-PGD,
eigen on the Fisher and output metrics, random; `vaekeras.curves`), and
`evaluate_robustness` (its ensemble, restarts and sanity checks); then the
protocol through test-time MCMC on fewer digits and budgets.

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

    start = time.perf_counter()
    areas = []
    for attack in curves.CURVE_ATTACKS:
        curve = curves.robustness_curve(
            model, x, attack, grid, pgd_iter=args.pgd_iter, seed=0
        )
        areas.append(curves.area_under_damage(curve))
    old = time.perf_counter() - start

    start = time.perf_counter()
    result = evaluate_robustness(
        model, x, grid, pgd_iter=args.pgd_iter, restarts=2, spsa_iter=20,
        spsa_samples=8,
    )
    new = time.perf_counter() - start

    defense = MCMCReconstruction(model, steps=20, seed=0)
    x_mcmc = images[:args.mcmc_examples]
    mcmc_eps = [0.5, 1.0, 2.0]
    start = time.perf_counter()
    defended = evaluate_robustness(
        model, x_mcmc, mcmc_eps, defense=defense, pgd_iter=args.pgd_iter,
        restarts=1, eot_samples=2, spsa_iter=10, spsa_samples=4,
    )
    mcmc = time.perf_counter() - start
    bare = evaluate_robustness(
        model, x_mcmc, mcmc_eps, pgd_iter=args.pgd_iter, restarts=2,
        spsa_iter=20, spsa_samples=8,
    )
    # The evaluation the protocol replaces: damage-PGD images crafted
    # against the bare model, then purified.
    transfer = LatentPGD(
        model, eps=mcmc_eps, max_iter=args.pgd_iter, objective="damage",
        seed=0,
    ).generate(x_mcmc)
    non_adaptive = curves.robustness_curve(
        model, x_mcmc, "pgd_kl", mcmc_eps, defense=defense, x_advs=transfer,
    )["reconstruction_damage"]

    print(f"{len(x)} digits, L2 budgets {grid[0]:g}-{grid[-1]:g} "
          f"({len(grid)}), PGD {args.pgd_iter} iterations")
    print("| evaluation | seconds | ratio | area |")
    print("|---|---:|---:|---:|")
    print(f"| four curves, largest per-attack mean area | {old:.1f} | 1.00 "
          f"| {max(areas):.4f} |")
    print(f"| protocol, per-image worst | {new:.1f} | {new / old:.2f} "
          f"| {result['area']:.4f} |")
    print(f"| protocol through 20 HMC steps ({args.mcmc_examples} digits, "
          f"eps 0.5, 1, 2) | {mcmc:.1f} | {mcmc / old:.2f} | "
          f"{defended['area']:.4f} |")
    print()
    print(f"Mean damage on the first {args.mcmc_examples} digits "
          "(eps 0.5, 1, 2):")
    print("| model | evaluation | " + " | ".join(
        f"eps {e:g}" for e in mcmc_eps) + " |")
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
    failed = [c["name"] for c in result["checks"] + defended["checks"]
              if not c["passed"]]
    print("checks failed:", ", ".join(failed) or "none")


if __name__ == "__main__":
    main()
