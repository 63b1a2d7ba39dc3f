"""Generated dSprites: rendering the whole grid, and the input pipeline
against a preloaded array, in one run.

1. `dsprites.render` over all 737,280 images in chunks (target: under a
   minute on 2 cores);
2. iterating `load_dataset("dsprites", "train")` against iterating a
   `tf.data` pipeline over the same number of images already in memory
   (target: within 1.10x).

Usage:
    python benchmarks/bench_dsprites.py --batches=400
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vaekeras import data  # noqa: E402
from vaekeras import dsprites  # noqa: E402


def render_all(chunk=16384):
    start = time.perf_counter()
    on = 0.0
    for first in range(0, dsprites.NUM_IMAGES, chunk):
        indices = np.arange(first, min(first + chunk, dsprites.NUM_IMAGES))
        on += float(dsprites.render(dsprites.factors_of(indices)).sum())
    return time.perf_counter() - start, on / dsprites.NUM_IMAGES


def iterate(dataset, batches):
    iterator = iter(dataset)
    next(iterator)  # the first batch builds the pipeline
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return time.perf_counter() - start


def main():
    import tensorflow as tf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    seconds, mean_on = render_all()
    print(f"render all {dsprites.NUM_IMAGES:,} images: {seconds:.1f} s "
          f"({mean_on:.0f} pixels on per image)")
    generated = data.load_dataset(
        "dsprites", "train", batch_size=args.batch_size
    )
    count = (args.batches + 1) * args.batch_size
    preloaded = dsprites.render(dsprites.sample_factors(count))
    in_memory = tf.data.Dataset.from_tensor_slices(preloaded).batch(
        args.batch_size
    ).prefetch(tf.data.AUTOTUNE)
    t_generated = iterate(generated, args.batches)
    t_memory = iterate(in_memory, args.batches)
    print(f"{args.batches} batches of {args.batch_size}: generated "
          f"{t_generated:.2f} s, preloaded {t_memory:.2f} s, ratio "
          f"{t_generated / t_memory:.2f}")


if __name__ == "__main__":
    main()
