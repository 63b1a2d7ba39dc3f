"""How tight is the Lipschitz certificate? Attacks inside the radius.

For a trained run folder, computes `certified_radius` at reconstruction
change r for the test images, then attacks each image at exactly its
radius with every attack vaekeras has (latent PGD on the reconstruction
change itself, PGD on the KL, the eigen attack, random) and prints the
largest reconstruction change each reached, over r: a sound certificate
keeps every number <= 1; the closer to 1, the tighter it is.

Usage:
    python apps/train.py --defense=lipschitz
    python benchmarks/bench_certificate.py \\
        --run_dir=saved_models/mnist_5k_mlp_beta1_lipschitz
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vaekeras import artifacts
from vaekeras import attacks  # noqa: E402
from vaekeras import backend
from vaekeras import data  # noqa: E402
from vaekeras import defenses  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--r", type=float, default=1.0)
    parser.add_argument("--num_examples", type=int, default=200)
    args = parser.parse_args()
    model, flags = artifacts.load_run(args.run_dir)
    x = data.load_run_test_arrays(flags)[0][:args.num_examples]
    constants = defenses.lipschitz_constants(model)
    radius = defenses.certified_radius(model, x, args.r)
    eps = float(np.median(radius))
    print(f"run {args.run_dir}: {type(model).__name__}")
    print(", ".join(f"L_{k} {v:.4g}" for k, v in constants.items()))
    print(f"certified radius at r = {args.r:g}: median {eps:.4g} "
          f"(L2, {len(x)} test images)")
    clean = backend.as_numpy(model.reconstruct(x))
    made = {
        "PGD on the reconstruction change (100 steps)": attacks.LatentPGD(
            model, eps=eps, objective="reconstruction", max_iter=100, seed=0
        ),
        "PGD on the KL (100 steps)": attacks.LatentPGD(
            model, eps=eps, max_iter=100, seed=0
        ),
        "eigen (output metric)": attacks.EigenAttack(
            model, eps=eps, kind="output"
        ),
        "eigen (fisher metric)": attacks.EigenAttack(
            model, eps=eps, kind="fisher"
        ),
        "random": attacks.RandomAttack(eps=eps, seed=0),
    }
    print(f"{'attack at the certified radius':46s} {'max change / r':>14s}")
    for name, attack in made.items():
        x_adv = attack.generate(x)
        change = backend.as_numpy(model.reconstruct(x_adv)) - clean
        largest = np.linalg.norm(change.reshape(len(x), -1), axis=1).max()
        print(f"{name:46s} {largest / args.r:14.3f}")


if __name__ == "__main__":
    main()
