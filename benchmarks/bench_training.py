"""Training overhead of vaekeras against a bare loop, and data loading.

Every train and test step counts the batch's NaN, inf and out-of-range
pixels (`vaekeras.models.screen_batch`) so that a bad batch anywhere in a
data set stops training. This times epochs of the default MLP VAE three
ways, interleaved: `fit` on `vaekeras.data.load_dataset` with the check,
the same with the check replaced by the identity, and a bare loop (a
`tf.function` step under `tf.GradientTape` with Adam, over the same
arrays shuffled by `tf.data`), and prints the ratios. For
`--dataset=fashion_mnist` (60,000 images) it also times
`data.load_arrays` against a plain numpy read of the four IDX files.

Usage:
    python benchmarks/bench_training.py --epochs 10 --repeats 5
    python benchmarks/bench_training.py --dataset=fashion_mnist \
        --epochs 2 --repeats 3
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from vaekeras import data  # noqa: E402
from vaekeras import defenses  # noqa: E402
from vaekeras import idx  # noqa: E402
from vaekeras import models  # noqa: E402


def _bare(x):
    return x, ops.zeros(())


def build():
    keras.utils.set_random_seed(0)
    model = defenses.build_vae((28, 28, 1), latent_dim=16, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def epoch_seconds(dataset, epochs, checked):
    original = models.screen_batch
    if not checked:
        models.screen_batch = _bare
    try:
        model = build()
        ds = data.load_dataset(dataset, "train", 128, seed=0)
        model.fit(ds, epochs=1, verbose=0, shuffle=False)  # compiles
        start = time.perf_counter()
        model.fit(ds, epochs=epochs, verbose=0, shuffle=False)
        return (time.perf_counter() - start) / epochs
    finally:
        models.screen_batch = original


def tape_epoch_seconds(dataset, epochs):
    """The same model and loss in a hand-written GradientTape loop."""
    import tensorflow as tf

    model = build()
    optimizer = keras.optimizers.Adam(1e-3)
    images, _ = data.load_arrays(dataset, "train")
    ds = tf.data.Dataset.from_tensor_slices(images).shuffle(
        len(images), seed=0, reshuffle_each_iteration=True
    ).batch(128).prefetch(tf.data.AUTOTUNE)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            recon, kl, _ = model.elbo_terms(x, training=True)
            loss = tf.reduce_mean(recon) + model.beta * tf.reduce_mean(kl)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                      variables))
        return loss

    for x in ds:  # compiles, and one epoch of warm-up as for fit
        step(x)
    start = time.perf_counter()
    for _ in range(epochs):
        for x in ds:
            step(x)
    return (time.perf_counter() - start) / epochs


def loading_seconds(dataset):
    """`data.load_arrays` (cache cleared) against a plain numpy read."""
    import gzip

    data._idx_split.cache_clear()
    start = time.perf_counter()
    data.load_arrays(dataset, "train")
    vaekeras_seconds = time.perf_counter() - start
    start = time.perf_counter()
    folder = idx.DEBIAN_FOLDERS[dataset]
    images_file, labels_file = idx.FILES[dataset]["train"]
    with gzip.open(idx.find(folder, images_file), "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)
    with gzip.open(idx.find(folder, labels_file), "rb") as f:
        np.frombuffer(f.read(), np.uint8, offset=8)
    (images.astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    return vaekeras_seconds, time.perf_counter() - start


def _rss_mb(field):
    """This process' resident memory (VmRSS) or its peak (VmHWM), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_mb(dataset):
    """Resident memory the train split adds: after `load_arrays`, after
    `load_dataset`, and the peak over one pass of the shuffled batches
    (Linux only; run before anything else so the peak is the data's)."""
    import tensorflow as tf

    tf.constant(0.0)  # the runtime's own memory is not the data's
    base = _rss_mb("VmRSS")
    images, _ = data.load_arrays(dataset, "train")
    size = images.nbytes / 2**20
    arrays = _rss_mb("VmRSS") - base
    del images
    ds = data.load_dataset(dataset, "train", 128, seed=0)
    dataset_mb = _rss_mb("VmRSS") - base
    for _ in ds:
        pass
    return size, arrays, dataset_mb, _rss_mb("VmHWM") - base


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist_5k")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    memory = memory_mb(args.dataset)
    times = {"bare": [], "checked": [], "tape": []}
    for _ in range(args.repeats):
        times["tape"].append(tape_epoch_seconds(args.dataset, args.epochs))
        times["bare"].append(epoch_seconds(args.dataset, args.epochs, False))
        times["checked"].append(
            epoch_seconds(args.dataset, args.epochs, True)
        )
    tape = np.median(times["tape"])
    bare, checked = np.median(times["bare"]), np.median(times["checked"])
    n = len(data.load_arrays(args.dataset, "train")[0])
    print(f"backend={keras.backend.backend()} {args.dataset} ({n} images) "
          "MLP, batch 128")
    print(f"{'step':34s} {'median s/epoch':>15s} {'x tape':>8s}")
    print(f"{'GradientTape loop (tf.data)':34s} {tape:15.3f} {1.0:8.3f}")
    print(f"{'fit, no input check':34s} {bare:15.3f} {bare / tape:8.3f}")
    print(f"{'fit, checked (vaekeras)':34s} {checked:15.3f} "
          f"{checked / tape:8.3f}")
    print(f"target: checked / tape = {checked / tape:.3f} (<= 1.10); "
          f"checked / no check = {checked / bare:.3f}")
    size, arrays, dataset_mb, peak = memory
    print(f"memory: the float32 images {size:.0f} MB; resident after "
          f"load_arrays +{arrays:.0f} MB, after load_dataset "
          f"+{dataset_mb:.0f} MB, peak over one shuffled epoch +{peak:.0f} "
          f"MB ({peak / size:.1f}x the images)")
    if args.dataset in idx.FILES:
        ours, plain = loading_seconds(args.dataset)
        print(f"loading the train split: load_arrays {ours:.2f} s, numpy "
              f"read of the IDX files {plain:.2f} s ({ours / plain:.2f}x)")


if __name__ == "__main__":
    main()
