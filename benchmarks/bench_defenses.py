"""Epoch time of each defense over the plain VAE's, in one run.

Default MLP (784 -> 512 -> 256 -> 2 x 16) on the offline mnist_5k train
split (4,000 images), batch 128. Each model trains `--epochs` epochs; the
first (tracing) is dropped and the median of the rest is reported, with
the ratio to the plain beta-VAE measured in the same run.

Usage:
    python benchmarks/bench_defenses.py --epochs 6
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaekeras import architectures  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras import defenses  # noqa: E402
from vaekeras import models  # noqa: E402


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.times = []


def build(name, shape):
    keras.utils.set_random_seed(0)
    if name.startswith("LipschitzVAE"):
        return defenses.build_lipschitz_vae(shape, latent_dim=16, seed=0)
    if name.startswith("AdversarialVAE"):
        steps = int(name.split("(")[1].split()[0])
        return defenses.build_defended_vae(
            shape, "adversarial", latent_dim=16, seed=0, adv_steps=steps
        )
    encoder = architectures.build_encoder(shape, latent_dim=16)
    decoder = architectures.build_decoder(shape, latent_dim=16)
    if name == "plain VAE":
        return models.VAE(encoder, decoder, seed=0)
    if name == "TCVAE (tc_weight 4)":
        return defenses.TCVAE(
            encoder, decoder, tc_weight=4.0, dataset_size=4000, seed=0
        )
    penalty, extra = {
        "geometry (trace, 1 probe)": ("trace", {}),
        "geometry (spectral radius, 3 power steps)": (
            "spectral_radius", {}
        ),
    }[name]
    return defenses.GeometryRegularizedVAE(
        encoder, decoder, metric_weight=1.0, penalty=penalty, seed=0,
        **extra,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    images = data.load_arrays("mnist_5k", "train")[0]
    shape = images.shape[1:]
    names = (
        "plain VAE", "geometry (trace, 1 probe)",
        "geometry (spectral radius, 3 power steps)", "TCVAE (tc_weight 4)",
        "LipschitzVAE (spectral norm)", "AdversarialVAE (1 PGD step)",
        "AdversarialVAE (5 PGD steps)",
    )
    rows = {}
    for name in names:
        model = build(name, shape)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        timer = EpochTimes()
        model.fit(images, epochs=args.epochs, batch_size=128, verbose=0,
                  callbacks=[timer])
        rows[name] = float(np.median(timer.times[1:]))
    plain = rows["plain VAE"]
    print(f"backend={keras.backend.backend()} MLP, mnist_5k, batch 128")
    print(f"{'model':44s} {'s / epoch':>10s} {'x plain':>8s}")
    for name, seconds in rows.items():
        print(f"{name:44s} {seconds:10.3f} {seconds / plain:8.2f}")
    print("target: trace with 1 probe <= 2x the plain VAE")


if __name__ == "__main__":
    main()
