"""Training overhead of vaekeras' per-batch input checks.

Every train and test step counts the batch's NaN, inf and out-of-range
pixels (`vaekeras.models.screen_batch`) so that a bad batch anywhere in a
data set stops training. This times `fit` epochs of the default MLP VAE on
`mnist_5k` with the check and with it replaced by the identity (a bare
step), interleaved, and prints the ratio.

Usage:
    python benchmarks/bench_training.py --epochs 10 --repeats 5
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from vaekeras import data  # noqa: E402
from vaekeras import defenses
from vaekeras import models  # noqa: E402


def _bare(x):
    return x, ops.zeros(())


def epoch_seconds(epochs, checked):
    original = models.screen_batch
    if not checked:
        models.screen_batch = _bare
    try:
        keras.utils.set_random_seed(0)
        model = defenses.build_vae((28, 28, 1), latent_dim=16, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        ds = data.load_dataset("mnist_5k", "train", 128, seed=0)
        model.fit(ds, epochs=1, verbose=0, shuffle=False)  # compiles
        start = time.perf_counter()
        model.fit(ds, epochs=epochs, verbose=0, shuffle=False)
        return (time.perf_counter() - start) / epochs
    finally:
        models.screen_batch = original


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for checked in (False, True):
            times[checked].append(epoch_seconds(args.epochs, checked))
    bare, checked = np.median(times[False]), np.median(times[True])
    print(f"backend={keras.backend.backend()} mnist_5k MLP, batch 128")
    print(f"{'step':28s} {'median s/epoch':>15s} {'x bare':>8s}")
    print(f"{'bare (no input check)':28s} {bare:15.3f} {1.0:8.3f}")
    print(f"{'checked (vaekeras)':28s} {checked:15.3f} {checked / bare:8.3f}")
    print(f"target: checked / bare = {checked / bare:.3f} (<= 1.10)")


if __name__ == "__main__":
    main()
