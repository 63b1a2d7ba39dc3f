"""How much a randomized defense's own draws move the measured damage.

Through test-time MCMC, an adversarial image's damage depends on the
chain's draws. This crafts damage-PGD images through the chain (EOT, the
protocol's adaptive member) for the first test images at one budget,
scores the same images with `--draws` fresh chains, and prints the mean
damage per draw, the per-image relative spread, and how much the
per-image maximum over two draws exceeds one draw: the upward bias of a
per-image worst case over candidates scored with one draw each, and what
the protocol's `converged` check cannot tell apart from a stronger
attack when it reruns through a randomized defense.

Usage:
    python benchmarks/bench_defense_noise.py --run_dir=<a run folder>
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vaekeras import artifacts
from vaekeras import data  # noqa: E402
from vaekeras import defenses  # noqa: E402
from vaekeras import latent  # noqa: E402
from vaekeras.attacks import adaptive  # noqa: E402
from vaekeras.attacks import protocol  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--eps", type=float, default=0.8231)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--draws", type=int, default=6)
    args = parser.parse_args()
    model, flags = artifacts.load_model_or_export(args.run_dir)
    x = data.load_run_test_arrays(flags)[0][:args.examples]
    adapter = latent.LatentModel.of(model)

    def chain(seed):
        return defenses.MCMCReconstruction(
            model, steps=args.steps, seed=seed, method="hmc"
        )

    [x_adv] = adaptive.adaptive_damage_pgd(
        adapter, chain(0), x, [args.eps], 2, iterations=20, samples=2,
        random_init=False, seed=0, batch_size=128,
    )
    damage = np.array([
        protocol.Scorer(adapter, x, chain(100 + s), 128).damage(x_adv)
        for s in range(args.draws)
    ])  # (draws, images)
    spread = np.median(damage.std(axis=0) / np.abs(damage.mean(axis=0)))
    pairs = [
        np.maximum(damage[i], damage[i + 1]).mean() / damage[i].mean()
        for i in range(0, args.draws - 1, 2)
    ]
    print(f"{args.run_dir}: {args.examples} images, L2 eps {args.eps:g}, "
          f"{args.steps} HMC steps, {args.draws} fresh chains")
    print("mean damage per draw: "
          + ", ".join(f"{v:.5f}" for v in damage.mean(axis=1)))
    print(f"per-image relative std over draws (median): {spread:.3f}")
    print("mean of the per-image max over two draws / one draw: "
          + ", ".join(f"{v:.3f}" for v in pairs))


if __name__ == "__main__":
    main()
