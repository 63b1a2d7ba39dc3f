"""What moves the median spectral radius: epochs, architecture, matrix.

The authors report median spectral radii of 4.09, 1.02 and 0.07 at beta
0.01, 1.05 and 10 (full MNIST, their MLP, 100 epochs); vaekeras' paper
study measures far larger ones. This script measures, at those three
betas on mnist_5k, the median radius (stochastic metric, 1,000 test
digits) of: the study's setting (MLP 512-256, 50 epochs), the authors'
epoch count (100), a smaller MLP (one hidden layer of 400 units), and the
d x d matrix the authors' code sums instead of G (`authors_matrix_radius`).
Pixel scaling needs no run: inputs scaled by s divide G by s^2.

`--question=size` asks whether the training set's size moves the radii:
Fashion-MNIST (Debian's package), seeded random subsets of 4,000, 15,000
and all 60,000 training images, betas 0.01, 1 and 10, the median radius
of the stochastic and fisher metrics and the mean damage of the fisher
eigen attack at L2 eps 1 on the first 1,000 test images, each model
trained two ways: the same epochs (each image seen as often) and the same
optimizer steps as the full set (each model trained as long). Rows are
kept in `--output` as they finish; a rerun skips them.

Usage:
    python benchmarks/bench_radius_factors.py
    python benchmarks/bench_radius_factors.py --question=size \
        --output=reports/radius_size.json
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaekeras import build_vae  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras import geometry  # noqa: E402
from vaekeras.studies import paper  # noqa: E402

BETAS = (0.01, 1.05, 10.0)
SIZE_BETAS = (0.01, 1.0, 10.0)
SIZES = (4000, 15000, 60000)
BATCH = 128
SETTINGS = {
    "study (512-256, 50 epochs)": {"epochs": 50},
    "100 epochs": {"epochs": 100},
    "MLP 400, 50 epochs": {"epochs": 50, "hidden_units": (400,)},
}


def factors():
    train = data.load_arrays("mnist_5k", "train")[0]
    test = data.load_arrays("mnist_5k", "test")[0][:1000]
    rows = []
    for label, setting in SETTINGS.items():
        setting = dict(setting)
        epochs = setting.pop("epochs")
        for beta in BETAS:
            keras.utils.set_random_seed(0)
            model = build_vae(
                (28, 28, 1), latent_dim=16, beta=beta, seed=0, **setting
            )
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
            model.fit(train, epochs=epochs, batch_size=128, verbose=0)
            radius = np.median(np.asarray(
                geometry.eigenvalues(model, test, "stochastic", k=1)
            ))
            block = np.median(paper.authors_matrix_radius(model, test))
            rows.append((label, beta, radius, block))
            print(f"{label:28s} beta {beta:5g}: G {radius:9.3f}  "
                  f"authors' matrix {block:9.3f}", flush=True)
    authors = dict(zip(BETAS, (4.09, 1.02, 0.07)))
    print()
    print(f"{'setting':28s} {'beta':>6s} {'median radius':>14s} "
          f"{'authors matrix':>15s} {'authors':>8s}")
    for label, beta, radius, block in rows:
        print(f"{label:28s} {beta:6g} {radius:14.3f} {block:15.3f} "
              f"{authors[beta]:8.2f}")


def _train(train, beta, epochs):
    keras.utils.set_random_seed(0)
    model = build_vae(train.shape[1:], latent_dim=16, beta=beta, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    began = time.perf_counter()
    model.fit(train, epochs=epochs, batch_size=BATCH, verbose=0)
    return model, time.perf_counter() - began


def _measure(model, test):
    from vaekeras.attacks import evaluate_robustness

    row = {}
    for kind in ("stochastic", "fisher"):
        row[f"radius_{kind}"] = float(np.median(np.asarray(
            geometry.eigenvalues(model, test, kind, k=1)
        )))
    result = evaluate_robustness(
        model, test, [1.0], attacks=("eigen_fisher",), sanity_checks=False
    )
    row["eigen_damage"] = result["mean_worst_damage"][0]
    row["clean_mse"] = float(np.mean(result["clean_mse"]))
    return row


def size_question(dataset, sizes, epochs, output):
    """One row per (schedule, size, beta); see the module docstring."""
    images = data.load_arrays(dataset, "train")[0]
    test = data.load_arrays(dataset, "test")[0][:1000]
    order = np.random.default_rng(0).permutation(len(images))
    full_steps = -(-max(sizes) // BATCH) * epochs
    done = {}
    if output and os.path.exists(output):
        with open(output) as f:
            done = {r["key"]: r for r in json.load(f)}
    for size in sizes:
        train = images[np.sort(order[:size])]
        steps_epochs = max(1, round(full_steps / -(-size // BATCH)))
        schedules = {"same epochs": epochs, "same steps": steps_epochs}
        for schedule, n_epochs in schedules.items():
            if size == max(sizes) and schedule == "same steps":
                continue  # the same model as "same epochs"
            for beta in SIZE_BETAS:
                key = f"{schedule}|{size}|{beta:g}"
                if key in done:
                    continue
                model, seconds = _train(train, beta, n_epochs)
                row = {"key": key, "schedule": schedule, "size": size,
                       "beta": beta, "epochs": n_epochs,
                       "train_seconds": round(seconds, 1),
                       **_measure(model, test)}
                done[key] = row
                print(json.dumps(row), flush=True)
                if output:
                    os.makedirs(os.path.dirname(output) or ".",
                                exist_ok=True)
                    with open(output, "w") as f:
                        json.dump(list(done.values()), f, indent=1)
    _size_table(done, sizes, epochs)


def _size_table(done, sizes, epochs):
    print(f"\n{'schedule':12s} {'images':>7s} {'epochs':>7s} {'beta':>6s} "
          f"{'stochastic':>11s} {'fisher':>9s} {'eigen dmg':>10s} "
          f"{'clean mse':>10s}")
    for schedule in ("same epochs", "same steps"):
        for size in sizes:
            for beta in SIZE_BETAS:
                key = f"{schedule}|{size}|{beta:g}"
                if schedule == "same steps" and size == max(sizes):
                    key = f"same epochs|{size}|{beta:g}"
                row = done.get(key)
                if row is None:
                    continue
                print(f"{schedule:12s} {size:7d} {row['epochs']:7d} "
                      f"{beta:6g} {row['radius_stochastic']:11.3f} "
                      f"{row['radius_fisher']:9.3f} "
                      f"{row['eigen_damage']:10.5f} "
                      f"{row['clean_mse']:10.5f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--question", choices=("factors", "size"),
                        default="factors")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs of the full set (size question)")
    parser.add_argument("--output", default="",
                        help="JSON file of finished rows (size question)")
    args = parser.parse_args()
    if args.question == "factors":
        factors()
        return
    sizes = tuple(int(v) for v in args.sizes.split(","))
    size_question(args.dataset, sizes, args.epochs, args.output)


if __name__ == "__main__":
    main()
