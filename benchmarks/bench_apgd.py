"""`evaluate_robustness` against an independent APGD, in one run.

Trains (or reuses) three small mnist_5k MLP VAEs of 10 epochs: beta 1,
an adversarially trained one (eps 2) and a Lipschitz VAE (decoder bound
10), then measures on the same test digits and L2 budgets:

- `protocol`: `evaluate_robustness` with its defaults (checks included);
- `before`: the ensemble and settings the studies used before Auto-PGD
  (PGD on the KL and on the damage, 20 iterations, 2 restarts, eigen,
  random, SPSA; no checks);
- `independent`: `independent_apgd.py` (no vaekeras attack code; 9 runs
  of 100 APGD iterations per image and budget).

It prints each one's worst-damage area (the mean worst damage's mean
over log eps), its ratio to the independent attack's and its time.

Usage:
    python benchmarks/bench_apgd.py --runs_dir=/tmp/bench_apgd
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import independent_apgd  # noqa: E402
from vaekeras import artifacts  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras import training  # noqa: E402
from vaekeras.attacks import damage  # noqa: E402
from vaekeras.attacks import evaluate_robustness  # noqa: E402

MODELS = {
    "beta 1": {"beta": 1.0},
    "adversarial eps=2": {"defense": "adversarial", "adv_eps": 2.0},
    "lipschitz dec=10": {"defense": "lipschitz", "decoder_lipschitz": 10.0},
}
BEFORE = dict(
    attacks=("pgd_kl", "pgd_damage", "eigen_fisher", "eigen_output",
             "random", "spsa"),
    pgd_iter=20, restarts=2, spsa_iter=20, spsa_samples=8,
    sanity_checks=False,
)


def model_for(runs_dir, name, settings, epochs):
    folder = os.path.join(runs_dir, name.replace(" ", "_").replace("=", ""))
    config = training.TrainConfig.from_settings(
        epochs=epochs, output_dir=folder, verbose=0, seed=0, **settings
    )
    training.train(config)
    return artifacts.load_model_or_export(folder)[0]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs_dir", required=True)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    images, labels = data.load_arrays("mnist_5k", "test")
    x, y = images[:args.examples], labels[:args.examples]
    eps = [0.5, 1.0, 2.0, 4.0]
    print(f"{len(x)} mnist_5k test digits, L2 eps {eps}\n")
    print("| model | attack | area | / independent | seconds | reliable |")
    print("|---|---|---:|---:|---:|---|")
    for name, settings in MODELS.items():
        model = model_for(args.runs_dir, name, settings, args.epochs)
        oracle = independent_apgd.DamageModel(model.encoder, model.decoder)
        worst, t_ind = timed(lambda: [
            independent_apgd.worst_damage(oracle, x, y, e, seed=1)
            for e in eps
        ])
        reference = damage.log_eps_area(eps, [np.mean(w) for w in worst])
        protocol, t_protocol = timed(
            lambda: evaluate_robustness(model, x, eps, seed=0)
        )
        before, t_before = timed(
            lambda: evaluate_robustness(model, x, eps, seed=0, **BEFORE)
        )
        for label, result, seconds in (
            ("protocol", protocol, t_protocol),
            ("before", before, t_before),
        ):
            print(
                f"| {name} | {label} | {result['area']:.5f} | "
                f"{result['area'] / reference:.3f} | {seconds:.0f} | "
                f"{result['reliable'] if result['checks'] else '-'} |"
            )
        print(f"| {name} | independent | {reference:.5f} | 1.000 | "
              f"{t_ind:.0f} | - |")


if __name__ == "__main__":
    main()
