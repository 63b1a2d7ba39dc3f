"""Latent KL reached and time taken by each attack at the same L2 budget.

Trains a small beta-VAE on the offline mnist_5k data (or loads
`--run_dir`), then attacks test examples with EigenAttack (one step along
the top eigenvector of the Fisher pullback metric, exact and matrix-free
with 1, 2, 3 and 10 Lanczos iterations), LatentPGD at 10 and 50
iterations and RandomAttack, all at L2 norm eps. Prints the mean latent
KL(q(z|x_adv) || q(z|x)), the median time over repeats, and the ratios to
PGD-50 measured in the same run.

Usage:
    python benchmarks/bench_attacks.py
    python benchmarks/bench_attacks.py --run_dir=saved_models/mnist_5k_mlp_beta1
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaekeras import artifacts
from vaekeras import attacks  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras import defenses


def trained_model(run_dir, epochs, beta):
    if run_dir:
        return artifacts.load_run(run_dir)[0]
    keras.utils.set_random_seed(0)
    train, _ = data.load_arrays("mnist_5k", "train")
    model = defenses.build_vae((28, 28, 1), latent_dim=16, beta=beta, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(train, epochs=epochs, batch_size=128, verbose=0)
    return model


def attacks_to_time(model, eps, batch_size):
    """The attacks the benchmark compares, by the name its table prints."""
    return {
        "EigenAttack(fisher, exact)": attacks.EigenAttack(
            model, eps=eps, kind="fisher", batch_size=batch_size,
            method="exact",
        ),
        **{
            f"EigenAttack(fisher, lanczos {n})": attacks.EigenAttack(
                model, eps=eps, kind="fisher", batch_size=batch_size,
                method="lanczos", lanczos_iterations=n,
            )
            for n in (1, 2, 3, 10)
        },
        "LatentPGD(max_iter=10)": attacks.LatentPGD(
            model, eps=eps, max_iter=10, seed=0, batch_size=batch_size
        ),
        "LatentPGD(max_iter=50)": attacks.LatentPGD(
            model, eps=eps, max_iter=50, seed=0, batch_size=batch_size
        ),
        "RandomAttack": attacks.RandomAttack(
            eps=eps, seed=0, batch_size=batch_size
        ),
    }


def median_seconds(call, x, repeats):
    """The median wall time of `repeats` calls of `call(x)`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def print_table(rows, model, eps, num_examples):
    """Each attack's latent KL and time, as ratios to 50-step PGD."""
    pgd_kl, pgd_time = rows["LatentPGD(max_iter=50)"]
    print(
        f"backend={keras.backend.backend()} L2 eps={eps} "
        f"examples={num_examples} beta={getattr(model, 'beta', '?')}"
    )
    print(
        f"{'attack':36s} {'latent KL':>10s} {'KL/PGD50':>9s} "
        f"{'median ms':>10s} {'time/PGD50':>11s}"
    )
    for name, (kl, seconds) in rows.items():
        print(
            f"{name:36s} {kl:10.4f} {kl / pgd_kl:9.3f} "
            f"{seconds * 1e3:10.1f} {seconds / pgd_time:11.4f}"
        )
    for name in ("EigenAttack(fisher, exact)",
                 "EigenAttack(fisher, lanczos 1)",
                 "EigenAttack(fisher, lanczos 2)"):
        eigen_kl, eigen_time = rows[name]
        print(
            f"targets, {name}: KL / PGD-50 KL = {eigen_kl / pgd_kl:.3f} "
            f"(>= 0.9); time / PGD-50 time = {eigen_time / pgd_time:.4f} "
            "(<= 0.1)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_dir", default=None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--eps", type=float, default=0.25)
    parser.add_argument("--num_examples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = trained_model(args.run_dir, args.epochs, args.beta)
    x = data.load_arrays("mnist_5k", "test")[0][: args.num_examples]
    rows = {}
    for name, attack in attacks_to_time(model, args.eps, len(x)).items():
        x_adv = attack.generate(x)  # warm-up: traces and compiles
        seconds = median_seconds(attack.generate, x, args.repeats)
        kl = attacks.evaluate_attack(model, x, x_adv)["means"]["latent_kl"]
        rows[name] = (kl, seconds)
    print_table(rows, model, args.eps, len(x))
    # A new attack object at a new budget reuses the model's compiled step.
    first = []
    for i in range(args.repeats):
        fresh = attacks.LatentPGD(
            model, eps=args.eps * (2 + i), max_iter=10, seed=0,
            batch_size=len(x),
        )
        first.append(median_seconds(fresh.generate, x, 1))
    repeated = rows["LatentPGD(max_iter=10)"][1]
    print(
        f"new LatentPGD(max_iter=10) object at a new eps, first call: "
        f"{np.median(first) * 1e3:.1f} ms = "
        f"{np.median(first) / repeated:.2f}x a repeated call"
    )


if __name__ == "__main__":
    main()
