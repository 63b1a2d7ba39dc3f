"""The hypermodel of a beta (and mixup alpha) sweep."""

import math

import keras
import keras_tuner as kt
import numpy as np

from vaekeras import attacks
from vaekeras import defenses
from vaekeras import geometry
from vaekeras import scores


def check_betas(betas):
    """A non-empty list of finite betas >= 0, or a clear ValueError."""
    try:
        values = [float(b) for b in betas]
    except (TypeError, ValueError):
        values = None
    if not values or any(not math.isfinite(b) or b < 0 for b in values):
        raise ValueError(
            "Invalid value received for argument `betas`: expected a "
            f"non-empty list of numbers >= 0. Received: betas={betas!r}"
        )
    return values


class BetaHyperModel(kt.HyperModel):
    """Builds and trains vaekeras VAEs over beta (and mixup alpha).

    Args:
        input_shape: `(H, W, C)`.
        betas: list of betas for `hp.Choice("beta", ...)`; or None with
            `beta_range=(lo, hi)` for `hp.Float(..., sampling="log")`.
        beta_range: `(lo, hi)`, both > 0, used when `betas` is None.
        mixup_alphas: values of `hp.Choice("mixup_alpha", ...)`; `(0.0,)`
            (default) tunes no mixup.
        latent_dim, architecture, likelihood: model settings.
        learning_rate: Adam learning rate.
        robustness_images: held-out images `(N, H, W, C)`; when given, `fit`
            also reports `val_spectral_radius` (median over them),
            `val_entropy` (mean trace-normalised von Neumann entropy) and the
            eigen attack's damage `val_eigen_attack_kl` and
            `val_eigen_attack_mse` at L2 `attack_eps`.
        attack_eps: budget of that eigen attack.
        tradeoff_weight: w in `tradeoff = val_reconstruction_loss + w *
            val_spectral_radius`.
        seed: seed of weights and samplers.

    Raises:
        ValueError: for bad betas, alphas or ranges.
    """

    def __init__(
        self,
        input_shape,
        betas=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        beta_range=None,
        mixup_alphas=(0.0,),
        latent_dim=16,
        architecture="mlp",
        likelihood="bernoulli",
        learning_rate=1e-3,
        robustness_images=None,
        attack_eps=1.0,
        tradeoff_weight=10.0,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_shape = tuple(input_shape)
        if betas is None:
            lo, hi = beta_range or (None, None)
            if not (lo and hi and 0 < lo < hi):
                raise ValueError(
                    "Invalid value received for argument `beta_range`: "
                    "expected (lo, hi) with 0 < lo < hi. Received: "
                    f"beta_range={beta_range!r}"
                )
            self.betas = None
        else:
            self.betas = check_betas(betas)
        self.beta_range = beta_range
        alphas = list(mixup_alphas)
        if not alphas or any(
            not isinstance(a, (int, float)) or a < 0 for a in alphas
        ):
            raise ValueError(
                "Invalid value received for argument `mixup_alphas`: expected "
                f"numbers >= 0. Received: mixup_alphas={mixup_alphas!r}"
            )
        self.mixup_alphas = [float(a) for a in alphas]
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.likelihood = likelihood
        self.learning_rate = learning_rate
        self.robustness_images = robustness_images
        self.attack_eps = attack_eps
        self.tradeoff_weight = tradeoff_weight
        self.seed = seed

    def build(self, hp):
        if self.betas is not None:
            beta = hp.Choice("beta", self.betas, ordered=True)
        else:
            beta = hp.Float(
                "beta", self.beta_range[0], self.beta_range[1],
                sampling="log",
            )
        alpha = (
            hp.Choice("mixup_alpha", self.mixup_alphas, ordered=True)
            if self.mixup_alphas != [0.0] else 0.0
        )
        keras.utils.set_random_seed(self.seed)
        # build_vae calls the model on a batch, so KerasTuner can reload
        # the best trial's weights into a freshly built model.
        model = defenses.build_vae(
            self.input_shape, latent_dim=self.latent_dim,
            architecture=self.architecture, beta=beta, mixup_alpha=alpha,
            likelihood=self.likelihood, seed=self.seed,
        )
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        # Built now, so a trial checkpoint (which holds the optimizer's
        # slots) reloads into it without Keras skipping the optimizer.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, *args, validation_data=None, **kwargs):
        model.fit(*args, validation_data=validation_data, **kwargs)
        results = {}
        if validation_data is not None:
            evaluated = model.evaluate(
                validation_data, return_dict=True, verbose=0
            )
            results = {f"val_{k}": float(v) for k, v in evaluated.items()}
        if self.robustness_images is not None:
            results.update(self.robustness(model))
            if "val_reconstruction_loss" in results:
                results["tradeoff"] = results["val_reconstruction_loss"] + (
                    self.tradeoff_weight * results["val_spectral_radius"]
                )
        return results

    def robustness(self, model):
        """Scores and eigen-attack damage on the held-out images."""
        x = self.robustness_images
        values = keras.ops.convert_to_numpy(geometry.eigenvalues(model, x))
        per_point = scores.robustness_scores(values, "trace")
        x_adv = attacks.EigenAttack(model, eps=self.attack_eps).generate(x)
        damage = attacks.evaluate_attack(model, x, x_adv)["means"]
        return {
            "val_spectral_radius": float(
                np.median(per_point["spectral_radius"])
            ),
            "val_entropy": float(
                np.mean(per_point["von_neumann_entropy_trace"])
            ),
            "val_eigen_attack_kl": damage["latent_kl"],
            "val_eigen_attack_mse": damage["reconstruction_mse"],
        }
