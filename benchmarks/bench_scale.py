"""Exact against matrix-free (Lanczos) top eigenpairs at a larger scale.

A conv VAE on 64x64x3 inputs (D = 12,288) with latent d = 128, batch 16,
the default "stochastic" metric: A has 2d = 256 rows per sample, 50 MB per
batch before autodiff buffers. Two encoders: untrained (random weights,
a flat top of the spectrum: the hard case for Lanczos) and trained for
`--epochs` on the offline mnist_5k digits resized to 64x64 and repeated
over 3 channels (a dominant top eigenvalue, as the paper finds). For each
encoder and method, in a fresh process (so peak memory is its own): the
median time of the top-1 eigenpair after a warm-up call, the peak
resident memory the call added (or the GPU's peak allocation when there
is a GPU), and the eigenvalue's relative error against the exact route.

`--devices` measures data parallelism instead (`vaekeras.distribution`):
the default MLP's and the conv VAE's epoch time on mnist_5k (batch 256,
median of epochs 2-8, conv 2-4) and the Fisher metric's time on 512 test
digits, without a distribution, with data parallelism over one device
(the machinery's overhead), and over two (virtual CPU devices here, GPUs
where there are two), on JAX, each in its own process, in `--rounds`
interleaved rounds.

Usage:
    python benchmarks/bench_scale.py
    KERAS_BACKEND=jax python benchmarks/bench_scale.py
    python benchmarks/bench_scale.py --devices
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHAPE, LATENT, BATCH = (64, 64, 3), 128, 16


def _memory_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def digits_64(split):
    """mnist_5k digits resized to 64x64 and repeated over 3 channels."""
    import numpy as np
    import tensorflow as tf

    from vaekeras import data

    images = data.load_arrays("mnist_5k", split)[0]
    resized = tf.image.resize(images, SHAPE[:2]).numpy()
    return np.clip(np.tile(resized, (1, 1, 1, 3)), 0, 1).astype("float32")


def build_model():
    import keras

    from vaekeras import build_vae

    keras.utils.set_random_seed(0)
    return build_vae(
        SHAPE, latent_dim=LATENT, architecture="conv", seed=0
    )


def child(method, repeats, weights):
    import keras
    import numpy as np

    from vaekeras import geometry

    model = build_model()
    if weights:
        model.load_weights(weights)
    encoder = model.encoder
    x = digits_64("test")[:BATCH]
    gpu = keras.backend.backend() == "tensorflow" and bool(
        __import__("tensorflow").config.list_physical_devices("GPU")
    )
    before = _memory_kib("VmRSS:")

    def run():
        values, _ = geometry.eigenspectrum(
            encoder, x, k=1, method=method
        )
        return keras.ops.convert_to_numpy(values)

    values = run()  # compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    if gpu:
        import tensorflow as tf

        info = tf.config.experimental.get_memory_info("GPU:0")
        peak_mb = info["peak"] / 2**20
    else:
        peak_mb = (_memory_kib("VmHWM:") - before) / 1024
    print(json.dumps({
        "method": method, "seconds": float(np.median(times)),
        "values": values[:, 0].tolist(), "peak_mb": peak_mb,
        "device": "GPU" if gpu else "CPU",
    }))


class _EpochTimes:
    """Per-epoch wall times, as a Keras callback."""

    def __new__(cls):
        import keras

        class Times(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        return Times()


def device_child(mode, repeats, architecture="mlp"):
    """One row of the `--devices` table, printed as JSON."""
    import contextlib

    import jax
    import keras
    import numpy as np

    from vaekeras import build_vae
    from vaekeras import data
    from vaekeras import geometry

    devices = jax.devices()
    scope = contextlib.nullcontext()
    if mode != "none":
        count = int(mode)
        scope = keras.distribution.DataParallel(
            devices=devices[:count]
        ).scope()
    train = data.load_arrays("mnist_5k", "train")[0]
    train = train[:len(train) - len(train) % 256]
    test = data.load_arrays("mnist_5k", "test")[0][:512]
    with scope:
        keras.utils.set_random_seed(0)
        model = build_vae((28, 28, 1), latent_dim=16, seed=0,
                          architecture=architecture)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        timer = _EpochTimes()
        model.fit(train, epochs=8 if architecture == "mlp" else 4,
                  batch_size=256, verbose=0, shuffle=False,
                  callbacks=[timer])
        geometry.eigenvalues(model, test, "fisher")  # trace
        metric = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.asarray(geometry.eigenvalues(model, test, "fisher"))
            metric.append(time.perf_counter() - start)
    print(json.dumps({
        "epoch": float(np.median(timer.times[1:])),
        "metric": float(np.median(metric)),
        "platform": devices[0].platform,
    }))


def devices_table(repeats, rounds, architectures=("mlp", "conv")):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    import jax  # noqa: F401  (only to fail early without JAX)

    gpus = int(subprocess.run(
        [sys.executable, "-c", "import jax; print(sum(d.platform != 'cpu' "
         "for d in jax.devices()))"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1])
    if gpus < 2:
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import numpy as np

    modes = (("none", "no distribution"), ("1", "data parallel, 1 device"),
             ("2", "data parallel, 2 devices"))
    # Rounds interleave the three modes, so that a slow spell of the
    # machine hits all of them; the ratios are taken within each round.
    runs = {(arch, label): [] for arch in architectures for _, label in modes}
    for _ in range(rounds):
        for arch in architectures:
            for mode, label in modes:
                out = subprocess.run(
                    [sys.executable, __file__, f"--device_child={mode}",
                     f"--repeats={repeats}", f"--architecture={arch}"],
                    env=env, capture_output=True, text=True, check=True,
                )
                runs[arch, label].append(
                    json.loads(out.stdout.strip().splitlines()[-1])
                )
    platform = runs[architectures[0], "no distribution"][0]["platform"]
    print(f"backend=jax, mnist_5k, batch 256; devices: {platform}"
          + (" (2 virtual)" if gpus < 2 else "")
          + f"; median of {rounds} interleaved rounds (ratio range)")
    print(f"{'':5s} {'':26s} {'s / epoch':>10s} {'x none':>17s} "
          f"{'ms/step more':>12s} {'metric s':>9s} {'x none':>7s}")
    for (arch, label), rows in runs.items():
        base = runs[arch, "no distribution"]
        epoch = [r["epoch"] / b["epoch"] for r, b in zip(rows, base)]
        metric = [r["metric"] / b["metric"] for r, b in zip(rows, base)]
        # 15 steps per epoch (3,840 images, batch 256).
        extra = [(r["epoch"] - b["epoch"]) / 15 * 1000
                 for r, b in zip(rows, base)]
        print(f"{arch:5s} {label:26s} "
              f"{np.median([r['epoch'] for r in rows]):10.3f} "
              f"{np.median(epoch):7.2f} ({min(epoch):.2f}-{max(epoch):.2f})"
              f" {np.median(extra):12.1f}"
              f" {np.median([r['metric'] for r in rows]):9.3f} "
              f"{np.median(metric):7.2f}")
    print("target: data parallel on 1 device <= 1.10x no distribution")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", default=None)
    parser.add_argument("--weights", default="")
    parser.add_argument("--devices", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--architecture", default="mlp")
    parser.add_argument("--device_child", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeats, args.weights)
        return
    if args.device_child:
        device_child(args.device_child, args.repeats, args.architecture)
        return
    if args.devices:
        devices_table(args.repeats, args.rounds)
        return
    import tempfile

    import keras
    import numpy as np

    folder = tempfile.mkdtemp()
    weights = os.path.join(folder, "trained.weights.h5")
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(digits_64("train"), epochs=args.epochs, batch_size=128,
              verbose=0)
    train_seconds = time.perf_counter() - start
    model.save_weights(weights)
    print(
        f"backend={os.environ.get('KERAS_BACKEND', 'tensorflow')} conv VAE "
        f"input={SHAPE} latent={LATENT} batch={BATCH}, top-1 eigenpair, "
        f"stochastic kind; trained {args.epochs} epochs in "
        f"{train_seconds:.0f} s"
    )
    print(
        f"{'encoder':10s} {'method':8s} {'median s':>9s} {'peak MB':>9s} "
        f"{'rel. error':>10s} {'exact/this':>10s}"
    )
    for label, path in (("untrained", ""), ("trained", weights)):
        results = {}
        for method in ("exact", "lanczos"):
            out = subprocess.run(
                [sys.executable, __file__, f"--child={method}",
                 f"--repeats={args.repeats}", f"--weights={path}"],
                capture_output=True, text=True, check=True,
            )
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
        exact = results["exact"]
        for method, row in results.items():
            error = np.max(
                np.abs(np.subtract(row["values"], exact["values"]))
                / np.abs(exact["values"])
            )
            print(
                f"{label:10s} {method:8s} {row['seconds']:9.3f} "
                f"{row['peak_mb']:9.0f} {error:10.2e} "
                f"{exact['seconds'] / row['seconds']:10.1f}"
            )
    print(f"device: {exact['device']}; targets: exact/this >= 5 for "
          "lanczos, relative error < 1e-3")


if __name__ == "__main__":
    main()
