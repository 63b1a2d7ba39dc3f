"""Generated dSprites: rendering the whole grid, and training on batches
drawn as needed against training on a preloaded array, in one run.

1. `dsprites.render` over all 737,280 images in chunks, on `--workers`
   processes (target: under a minute on 2 cores);
2. `fit` of the `conv64` VAE for `--steps` batches from
   `load_dataset("dsprites", "train", steps_per_epoch=...)` against the
   same number of batches of images already in memory, alternated
   `--repeats` times (target: the generated data within 1.10x).

Usage:
    python benchmarks/bench_dsprites.py --workers=2 --steps=100
"""

import argparse
import concurrent.futures
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vaekeras import dsprites  # noqa: E402


def _render_pixels_on(bounds):
    first, last = bounds
    indices = np.arange(first, last)
    return float(dsprites.render(dsprites.factors_of(indices)).sum())


def render_all(workers, chunk=16384):
    """Seconds to draw every image once; mean pixels on per image."""
    bounds = [
        (first, min(first + chunk, dsprites.NUM_IMAGES))
        for first in range(0, dsprites.NUM_IMAGES, chunk)
    ]
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        on = sum(pool.map(_render_pixels_on, bounds))
    return time.perf_counter() - start, on / dsprites.NUM_IMAGES


def fit_seconds(model, dataset):
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return time.perf_counter() - start


def training_ratio(steps, batch_size, repeats):
    """Median seconds of `steps` training batches, generated and
    preloaded, and their ratio."""
    import tensorflow as tf

    import vaekeras
    from vaekeras import data

    model = vaekeras.build_vae(
        (64, 64, 1), latent_dim=10, architecture="conv64", seed=0
    )
    model.compile(optimizer="adam")
    generated = data.load_dataset(
        "dsprites", "train", batch_size=batch_size, steps_per_epoch=steps
    )
    preloaded = tf.data.Dataset.from_tensor_slices(
        dsprites.render(dsprites.sample_factors(steps * batch_size))
    ).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    fit_seconds(model, preloaded)  # builds and traces the train step
    times = {"generated": [], "preloaded": []}
    for _ in range(repeats):
        times["generated"].append(fit_seconds(model, generated))
        times["preloaded"].append(fit_seconds(model, preloaded))
    medians = {k: float(np.median(v)) for k, v in times.items()}
    return medians, medians["generated"] / medians["preloaded"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds, mean_on = render_all(args.workers)
    print(f"render all {dsprites.NUM_IMAGES:,} images on {args.workers} "
          f"processes: {seconds:.1f} s ({mean_on:.0f} pixels on per image)")
    medians, ratio = training_ratio(
        args.steps, args.batch_size, args.repeats
    )
    print(f"fit {args.steps} batches of {args.batch_size} (median of "
          f"{args.repeats}): generated {medians['generated']:.2f} s, "
          f"preloaded {medians['preloaded']:.2f} s, ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
