"""What moves the median spectral radius: epochs, architecture, matrix.

The authors report median spectral radii of 4.09, 1.02 and 0.07 at beta
0.01, 1.05 and 10 (full MNIST, their MLP, 100 epochs); vaekeras' paper
study measures far larger ones. This script measures, at those three
betas on mnist_5k, the median radius (stochastic metric, 1,000 test
digits) of: the study's setting (MLP 512-256, 50 epochs), the authors'
epoch count (100), a smaller MLP (one hidden layer of 400 units), and the
d x d matrix the authors' code sums instead of G (`authors_matrix_radius`).
Pixel scaling needs no run: inputs scaled by s divide G by s^2.

Usage:
    python benchmarks/bench_radius_factors.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaekeras import build_vae  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras import geometry  # noqa: E402
from vaekeras.studies import paper  # noqa: E402

BETAS = (0.01, 1.05, 10.0)
SETTINGS = {
    "study (512-256, 50 epochs)": {"epochs": 50},
    "100 epochs": {"epochs": 100},
    "MLP 400, 50 epochs": {"epochs": 50, "hidden_units": (400,)},
}


def main():
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


if __name__ == "__main__":
    main()
