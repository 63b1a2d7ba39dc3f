"""How many inner PGD steps the adversarial VAE needs: the fraction of
PGD-50's squared 2-Wasserstein divergence that 1-10 steps of the training
attack (`vaekeras.attacks.worst_case_inputs`, objective "w2") reach.

Measured on trained run folders (a plain VAE and an adversarially trained
one: the inner search must be strong on the smooth encoder it produces),
on the first 256 mnist_5k test digits, at two L2 budgets.

Usage:
    python benchmarks/bench_adversarial_steps.py \
        --runs reports/defenses/runs/mnist_5k/beta1_seed0,\
reports/defenses/runs/mnist_5k/adversarial_eps2_seed0
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from vaekeras import artifacts
from vaekeras import attacks  # noqa: E402
from vaekeras import data  # noqa: E402

STEPS = (1, 2, 3, 5, 10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", required=True,
                        help="comma-separated run folders")
    parser.add_argument("--eps", default="0.5,2")
    args = parser.parse_args()
    x = data.load_arrays("mnist_5k", "test")[0][:256]
    print("| run | L2 eps | PGD-50 W2 | "
          + " | ".join(f"{k} steps" for k in STEPS) + " |")
    print("|---|---:|---:|" + "---:|" * len(STEPS))
    for run in args.runs.split(","):
        model, _ = artifacts.load_model_or_export(run)
        encoder = model.encoder
        z_mean, z_log_var = encoder(x)
        for eps in (float(e) for e in args.eps.split(",")):
            reference = attacks.LatentPGD(
                model, eps=eps, max_iter=50, objective="w2", seed=0
            ).generate(x)
            full = float(np.mean(attacks.gaussian_w2(
                *encoder(reference), z_mean, z_log_var
            )))
            fractions = []
            for k in STEPS:
                x_adv = attacks.worst_case_inputs(
                    encoder, ops.convert_to_tensor(x), z_mean, z_log_var,
                    eps=eps, steps=k, seed=keras.random.SeedGenerator(0),
                    objective="w2",
                )
                fractions.append(float(np.mean(attacks.gaussian_w2(
                    *encoder(x_adv), z_mean, z_log_var
                ))) / full)
            print(f"| {os.path.basename(os.path.normpath(run))} | {eps:g} "
                  f"| {full:.4f} | "
                  + " | ".join(f"{f:.3f}" for f in fractions) + " |")


if __name__ == "__main__":
    main()
