"""Keras callbacks that watch a VAE's encoder geometry while it trains."""

import keras
import numpy as np

from vaekeras import backend
from vaekeras import checks
from vaekeras import geometry
from vaekeras import scores


class GeometryMonitor(keras.callbacks.Callback):
    """Logs the pullback metric's scores on a fixed batch after each epoch.

    After every `every`-th epoch, computes the eigenvalues of the pullback
    metric on `x_val` (a few dozen held-out images are enough and cost
    little) and adds to the epoch's logs, so the History, TensorBoard and
    any later callback see them:
    - `geometry_spectral_radius`: the median spectral radius;
    - `geometry_entropy`: the mean von Neumann entropy (`lambda /
      lambda_max` normalisation, as the paper's code).
    Place it before `keras.callbacks.TensorBoard` in the callbacks list so
    TensorBoard writes them too. `self.history` holds the monitored epochs
    and values (the History's lists skip unmonitored epochs).

    Args:
        x_val: float32 images `(N, H, W, C)` in [0, 1], kept fixed.
        kind: pullback metric kind (see `vaekeras.geometry`).
        every: monitor every this many epochs (>= 1).
        method: eigensolver (see `geometry.eigenspectrum`).

    Raises:
        ValueError: for an empty `x_val`, a bad kind or `every`.

    Examples:
        >>> monitor = GeometryMonitor(test_images[:64], kind="stochastic")
        >>> model.fit(train_ds, epochs=10, callbacks=[monitor])
        >>> monitor.history["geometry_spectral_radius"]
    """

    def __init__(self, x_val, kind="stochastic", every=1, method="auto"):
        super().__init__()
        x_val = np.asarray(x_val, dtype="float32")
        if x_val.ndim != 4 or len(x_val) == 0:
            raise ValueError(
                "Invalid value received for argument `x_val`: expected a "
                "non-empty batch of images (N, H, W, C). Received: "
                f"x_val.shape={x_val.shape}"
            )
        checks.choice("kind", kind, geometry.KINDS)
        checks.choice("method", method, geometry.METHODS)
        checks.positive_int("every", every)
        self.x_val = x_val
        self.kind = kind
        self.every = every
        self.method = method
        self.history = {
            "epoch": [], "geometry_spectral_radius": [],
            "geometry_entropy": [],
        }

    def measure(self):
        """`{"geometry_spectral_radius", "geometry_entropy"}` now.

        Both are NaN when the model's weights are not finite (a diverged
        run), rather than an error from the eigensolver.
        """
        if not all(
            np.all(np.isfinite(backend.as_numpy(w)))
            for w in self.model.weights
        ):
            return {
                "geometry_spectral_radius": float("nan"),
                "geometry_entropy": float("nan"),
            }
        values = keras.ops.convert_to_numpy(geometry.eigenvalues(
            self.model, self.x_val, self.kind, method=self.method
        ))
        per_point = scores.robustness_scores(values)
        return {
            "geometry_spectral_radius": float(
                np.median(per_point["spectral_radius"])
            ),
            "geometry_entropy": float(
                np.mean(per_point["von_neumann_entropy_max"])
            ),
        }

    def on_epoch_end(self, epoch, logs=None):
        # A run stopped for a NaN loss has nothing left worth measuring.
        if (epoch + 1) % self.every or self.model.stop_training:
            return
        measured = self.measure()
        self.history["epoch"].append(epoch + 1)
        for key, value in measured.items():
            self.history[key].append(value)
        if logs is not None:
            logs.update(measured)
