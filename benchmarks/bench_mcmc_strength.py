"""Does test-time MCMC's benefit survive a stronger adaptive attack?

The defenses study attacks MCMC purification through its chain with
damage PGD (20 iterations, EOT over 2 draws) and finds the chain lowers
the worst damage; its `converged` check, rerun through the chain, gains
4-17%. This asks whether a much stronger attack closes the gap to the
bare model. On the first test images of one run at one L2 budget it
measures the mean damage (each image scored with `--score_draws` fresh
chains, averaged, so no maximum over draws inflates it) of:

- damage PGD on the bare model, scored on the bare model (no defense);
- the same images scored through the chain (the non-adaptive evaluation
  the study used before the protocol);
- damage PGD through the chain at each `--settings` entry
  (iterations x EOT draws per gradient).

Usage:
    python benchmarks/bench_mcmc_strength.py --run_dir=<a run folder>
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vaekeras import artifacts
from vaekeras import data  # noqa: E402
from vaekeras import defenses  # noqa: E402
from vaekeras import latent  # noqa: E402
from vaekeras.attacks import LatentPGD  # noqa: E402
from vaekeras.attacks import adaptive  # noqa: E402
from vaekeras.attacks import protocol  # noqa: E402

BATCH = 128


def parse_settings(text):
    """`"20x2,80x6"` -> [(20, 2), (80, 6)] (iterations, EOT draws)."""
    settings = []
    for part in text.split(","):
        try:
            iterations, samples = (int(v) for v in part.split("x"))
        except ValueError:
            raise ValueError(
                "--settings: each entry is <iterations>x<draws>, e.g. "
                f"20x2; received {part!r}"
            ) from None
        settings.append((iterations, samples))
    return settings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--eps", type=float, default=0.8231)
    parser.add_argument("--steps", type=int, default=20,
                        help="HMC steps of the chain")
    parser.add_argument("--settings", default="20x2,80x2,80x6")
    parser.add_argument("--score_draws", type=int, default=4)
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    model, flags = artifacts.load_model_or_export(args.run_dir)
    x = data.load_run_test_arrays(flags)[0][:args.examples]
    adapter = latent.LatentModel.of(model)

    def chain(seed):
        return defenses.MCMCReconstruction(
            model, steps=args.steps, seed=seed, method="hmc"
        )

    def through_chain(x_adv):
        per_draw = [
            protocol.Scorer(adapter, x, chain(100 + s), BATCH).damage(x_adv)
            for s in range(args.score_draws)
        ]
        return float(np.mean(per_draw))

    rows = []
    most = max(i for i, _ in settings)
    start = time.perf_counter()
    [x_bare] = LatentPGD(
        model, norm=2, eps=[args.eps], max_iter=most, objective="damage",
        seed=0, batch_size=BATCH,
    ).generate(x)
    seconds = time.perf_counter() - start
    bare = float(np.mean(protocol.Scorer(adapter, x, None, BATCH).damage(
        x_bare
    )))
    rows.append(("bare model, no defense", most, "-", bare, seconds))
    rows.append((
        "crafted on the bare model, through MCMC", most, "-",
        through_chain(x_bare), seconds,
    ))
    for iterations, samples in settings:
        start = time.perf_counter()
        [x_adv] = adaptive.adaptive_damage_pgd(
            adapter, chain(0), x, [args.eps], 2, iterations=iterations,
            samples=samples, random_init=False, seed=0, batch_size=BATCH,
        )
        seconds = time.perf_counter() - start
        rows.append((
            "through MCMC (adaptive)", iterations, samples,
            through_chain(x_adv), seconds,
        ))
        print(f"  {iterations} iterations x {samples} draws: "
              f"{rows[-1][3]:.5f} ({seconds:.0f} s)", flush=True)
    print(f"\n{args.run_dir}: {args.examples} images, L2 eps {args.eps:g}, "
          f"{args.steps} HMC steps; damage through MCMC is the mean over "
          f"{args.score_draws} fresh chains\n")
    print("| attack | iterations | EOT draws | mean damage | / bare | "
          "craft s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, iterations, samples, value, seconds in rows:
        print(f"| {name} | {iterations} | {samples} | {value:.5f} | "
              f"{value / bare:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
