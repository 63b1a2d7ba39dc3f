"""Latent-space attacks on VAE encoders, with an ART-style interface.

Every attack validates its parameters at construction, and
`generate(x, x_target=None)` returns adversarial images within the budget
(`||x_adv - x|| <= eps` in the attack's norm) and inside
`[clip_min, clip_max]`, processed in batches of `batch_size`. `eps` may be
a number or a list: a list returns one `x_adv` per eps (as foolbox does).

The encoder may be a Keras encoder (`x -> [z_mean, z_log_var]`), a vaekeras
`VAE`, or the `encode` endpoint (or the whole object) of a SavedModel
loaded with `tf.saved_model.load` (TensorFlow backend).

- `LatentPGD`: projected gradient ascent on the latent divergence from the
  clean encoding (`"kl"`: KL(q(z|x+delta) || q(z|x)); `"mean"`:
  ||mu(x+delta) - mu(x)||^2), L2 or Linf ball.
- `EigenAttack`: one step (or `iterations` sub-steps) along an eigenvector
  of the pullback metric, the paper's attack.
- `RandomAttack`: a random direction of the same norm, the baseline.
- `TargetedLatentAttack`: moves q(z|x+delta) towards q(z|x_target) by
  minimising their symmetric KL plus `reg * ||delta||_2` (Kuzina et al.).
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from vaekeras import geometry
from vaekeras.layers import clip_log_var

NORMS = (2, np.inf)
OBJECTIVES = ("kl", "mean")


def as_encode_fn(encoder):
    """A callable `x -> (z_mean, z_log_var)` for any supported encoder."""
    if isinstance(encoder, keras.Model):
        inner = getattr(encoder, "encoder", None)
        model = inner if isinstance(inner, keras.Model) else encoder
    elif hasattr(encoder, "encode") and callable(encoder.encode):
        model = encoder.encode  # a loaded SavedModel
    elif callable(encoder):
        model = encoder
    else:
        raise ValueError(
            "Invalid value received for argument `encoder`: expected a Keras "
            "encoder, a vaekeras VAE or a SavedModel `encode` endpoint. "
            f"Received: encoder={encoder!r}"
        )
    return model


def encode_pair(model, x):
    """`(z_mean, z_log_var)` of `x` under an `as_encode_fn` callable."""
    return geometry.split_encoding(model(x))


def gaussian_kl(mean_a, log_var_a, mean_b, log_var_b):
    """KL(N(a) || N(b)) of diagonal Gaussians, summed over the last axis."""
    log_var_a, log_var_b = clip_log_var(log_var_a), clip_log_var(log_var_b)
    return 0.5 * ops.sum(
        log_var_b - log_var_a
        + (ops.exp(log_var_a) + ops.square(mean_a - mean_b))
        / ops.exp(log_var_b)
        - 1.0,
        axis=-1,
    )


def check_eps(eps):
    values = list(eps) if isinstance(eps, (list, tuple, np.ndarray)) else [eps]
    if not values or not all(
        isinstance(e, numbers.Real) and not isinstance(e, bool)
        and math.isfinite(e) and e > 0 for e in values
    ):
        raise ValueError(
            "Invalid value received for argument `eps`: expected a number > 0 "
            f"or a non-empty list of them. Received: eps={eps!r}"
        )
    return [float(e) for e in values], not isinstance(
        eps, (list, tuple, np.ndarray)
    )


def _check_norm(norm):
    if norm in ("inf", "np.inf"):
        norm = np.inf
    if norm not in NORMS:
        raise ValueError(
            "Invalid value received for argument `norm`: expected 2 or np.inf. "
            f"Received: norm={norm!r}"
        )
    return 2 if norm == 2 else np.inf


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
        value < 1
    ):
        raise ValueError(
            f"Invalid value received for argument `{name}`: expected an "
            f"integer >= 1. Received: {name}={value!r}"
        )
    return int(value)


def _check_eps_step(eps_step):
    if eps_step is not None and not (
        isinstance(eps_step, numbers.Real) and eps_step > 0
    ):
        raise ValueError(
            "Invalid value received for argument `eps_step`: expected a "
            f"number > 0 or None. Received: eps_step={eps_step!r}"
        )
    return eps_step


def _flat_norm(delta, norm):
    flat = ops.reshape(delta, (ops.shape(delta)[0], -1))
    if norm == 2:
        return ops.sqrt(ops.sum(ops.square(flat), axis=-1))
    return ops.max(ops.abs(flat), axis=-1)


def _per_sample(v, like):
    """Reshapes `(B,)` to broadcast against `like` `(B, H, W, C)`."""
    return ops.reshape(v, (-1,) + (1,) * (len(like.shape) - 1))


def project(delta, eps, norm):
    """Projects each perturbation onto the eps-ball of `norm`."""
    if norm == np.inf:
        return ops.clip(delta, -eps, eps)
    scale = ops.minimum(1.0, eps / ops.maximum(_flat_norm(delta, 2), 1e-12))
    return delta * _per_sample(scale, delta)


def _unit(direction, norm):
    """Steepest-ascent step of unit `norm` for a gradient `direction`."""
    if norm == np.inf:
        return ops.sign(direction)
    n = ops.maximum(_flat_norm(direction, 2), 1e-12)
    return direction / _per_sample(n, direction)


class _Attack:
    """Shared parameters, batching and eps sweeps."""

    def __init__(self, eps, norm, clip_min, clip_max, batch_size, seed):
        self.eps_list, self._scalar_eps = check_eps(eps)
        self.eps = eps
        self.norm = _check_norm(norm)
        if not (
            isinstance(clip_min, numbers.Real)
            and isinstance(clip_max, numbers.Real) and clip_min < clip_max
        ):
            raise ValueError(
                "Invalid values received for arguments `clip_min`, "
                "`clip_max`: expected numbers with clip_min < clip_max. "
                f"Received: clip_min={clip_min!r}, clip_max={clip_max!r}"
            )
        self.clip_min, self.clip_max = float(clip_min), float(clip_max)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)

    def generate(self, x, x_target=None):
        """Adversarial examples for `x` (one array per eps for a list).

        Args:
            x: images `(N, H, W, C)` in [clip_min, clip_max].
            x_target: images of the same shape, for targeted attacks.

        Returns:
            `x_adv` of the shape of `x` (numpy), or a list of them.

        Raises:
            ValueError: for x outside the clip range, or a bad `x_target`.
        """
        x = np.asarray(x, dtype="float32")
        if x.ndim < 2:
            raise ValueError(
                "Invalid value received for argument `x`: expected a batch. "
                f"Received: x.shape={x.shape}"
            )
        if x.size and (x.min() < self.clip_min or x.max() > self.clip_max):
            raise ValueError(
                "Invalid value received for argument `x`: values must lie in "
                f"[{self.clip_min:g}, {self.clip_max:g}]. Received: min="
                f"{x.min():g}, max={x.max():g}"
            )
        x_target = self._check_target(x, x_target)
        results = []
        for eps in self.eps_list:
            out = []
            for start in range(0, len(x), self.batch_size):
                stop = start + self.batch_size
                xb = ops.convert_to_tensor(x[start:stop])
                tb = None if x_target is None else ops.convert_to_tensor(
                    x_target[start:stop]
                )
                out.append(ops.convert_to_numpy(self._generate(xb, tb, eps)))
            results.append(
                np.concatenate(out) if out else np.zeros_like(x)
            )
        return results[0] if self._scalar_eps else results

    def _check_target(self, x, x_target):
        if x_target is not None:
            raise ValueError(
                f"{type(self).__name__} is untargeted: pass no `x_target`."
            )
        return None

    def _finish(self, x, delta, eps):
        """Projects onto the ball, then clips into the box (stays inside)."""
        delta = project(delta, eps, self.norm)
        return ops.clip(x + delta, self.clip_min, self.clip_max)

    def _generate(self, x, x_target, eps):
        raise NotImplementedError


class _EncoderAttack(_Attack):
    def __init__(self, encoder, objective, **kwargs):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES:
            raise ValueError(
                "Invalid value received for argument `objective`: expected one "
                f"of {OBJECTIVES}. Received: objective={objective!r}"
            )
        self.encoder = encoder
        self.objective = objective
        self._encode_fn = as_encode_fn(encoder)
        self._gradient = None

    def divergence(self, x_adv, z_mean, z_log_var):
        """Per-sample latent divergence of `x_adv` from a clean encoding."""
        mean_adv, log_var_adv = encode_pair(self._encode_fn, x_adv)
        if self.objective == "mean":
            return ops.sum(ops.square(mean_adv - z_mean), axis=-1)
        return gaussian_kl(mean_adv, log_var_adv, z_mean, z_log_var)

    def _loss_and_gradient(self, x, *args):
        if self._gradient is None:
            self._gradient = geometry.input_gradient_fn(self._loss)
        return self._gradient(x, *args)

    def _loss(self, x, *args):
        return self.divergence(x, *args)

    def _optimise(self, x, x_adv, eps, step, args, ascend):
        """Projected steepest ascent (or descent) of `_loss(x_adv, *args)`.

        Runs `max_iter` steps from `x_adv` and returns, per sample, the best
        iterate seen.
        """
        better = ops.greater if ascend else ops.less
        sign = 1.0 if ascend else -1.0
        best, best_loss = x_adv, None
        for _ in range(self.max_iter):
            loss, grad = self._loss_and_gradient(x_adv, *args)
            if best_loss is None:
                best_loss = loss
            improved = better(loss, best_loss)
            best = ops.where(_per_sample(improved, x), x_adv, best)
            best_loss = ops.where(improved, loss, best_loss)
            x_adv = self._finish(
                x, x_adv - x + sign * step * _unit(grad, self.norm), eps
            )
        final = self._loss(x_adv, *args)
        return ops.where(
            _per_sample(better(final, best_loss), x), x_adv, best
        )


class LatentPGD(_EncoderAttack):
    """Projected gradient ascent on the latent divergence.

    The divergence has zero gradient at delta = 0 (its minimum), so without
    `random_init` the search starts from a tiny seeded random perturbation
    (norm 1e-3 * eps); with it, from a uniform draw in the ball. The best
    iterate per sample is returned.

    Args:
        encoder: see the module docstring.
        norm: 2 or np.inf.
        eps: budget (> 0) or list of budgets.
        eps_step: step size; defaults to 2.5 * eps / max_iter.
        max_iter: iterations >= 1.
        objective: `"kl"` or `"mean"`.
        random_init: start from a random point of the ball.
        clip_min, clip_max: pixel range.
        batch_size: images per batch.
        seed: seed of the random start.

    Raises:
        ValueError: for any invalid parameter, naming it.

    Example:

    >>> attack = LatentPGD(model, norm=2, eps=[0.5, 1.0], max_iter=50)
    >>> x_adv_05, x_adv_10 = attack.generate(test_images[:100])
    """

    def __init__(
        self,
        encoder,
        norm=2,
        eps=1.0,
        eps_step=None,
        max_iter=50,
        objective="kl",
        random_init=False,
        clip_min=0.0,
        clip_max=1.0,
        batch_size=128,
        seed=None,
    ):
        super().__init__(
            encoder, objective, eps=eps, norm=norm, clip_min=clip_min,
            clip_max=clip_max, batch_size=batch_size, seed=seed,
        )
        self.max_iter = _check_positive_int("max_iter", max_iter)
        self.eps_step = _check_eps_step(eps_step)
        self.random_init = bool(random_init)

    def _start(self, x, eps):
        shape = ops.shape(x)
        if self.norm == np.inf:
            scale = eps if self.random_init else 1e-3 * eps
            return keras.random.uniform(
                shape, -scale, scale, seed=self._seed_generator
            )
        direction = _unit(
            keras.random.normal(shape, seed=self._seed_generator), 2
        )
        if not self.random_init:
            return 1e-3 * eps * direction
        # Uniform in the L2 ball: radius ~ eps * U^(1/D).
        dim = int(np.prod(shape[1:]))
        radius = eps * keras.random.uniform(
            (shape[0],), seed=self._seed_generator
        ) ** (1.0 / dim)
        return direction * _per_sample(radius, x)

    def _generate(self, x, x_target, eps):
        step = self.eps_step or 2.5 * eps / self.max_iter
        z_mean, z_log_var = encode_pair(self._encode_fn, x)
        start = self._finish(x, self._start(x, eps), eps)
        return self._optimise(
            x, start, eps, step, (z_mean, z_log_var), ascend=True
        )


class EigenAttack(_EncoderAttack):
    """Step along an eigenvector of the encoder's pullback metric.

    Each of `iterations` sub-steps (norm eps / iterations) recomputes the
    metric at the current point and moves along its `direction`-th
    eigenvector (1 = top), with the sign that gives the larger latent
    divergence. For `norm=np.inf` the step is `sign(u) * eps / iterations`.

    Args:
        encoder: see the module docstring.
        eps: budget (> 0) or list of budgets.
        norm: 2 (default) or np.inf.
        kind: metric kind, `"stochastic"` (default), `"fisher"` or `"mean"`.
        direction: which eigenvector, 1-based, at most the rank bound.
        iterations: sub-steps >= 1.
        objective: divergence used to choose the sign.
        clip_min, clip_max, batch_size: as in `LatentPGD`.

    Raises:
        ValueError: for any invalid parameter, naming it.

    Example:

    >>> attack = EigenAttack(model, eps=1.0, kind="fisher")
    >>> x_adv = attack.generate(test_images[:100])
    """

    def __init__(
        self,
        encoder,
        eps=1.0,
        norm=2,
        kind="stochastic",
        direction=1,
        iterations=1,
        objective="kl",
        clip_min=0.0,
        clip_max=1.0,
        batch_size=128,
    ):
        super().__init__(
            encoder, objective, eps=eps, norm=norm, clip_min=clip_min,
            clip_max=clip_max, batch_size=batch_size, seed=None,
        )
        geometry.rank_bound(kind, 1)  # validates the kind
        self.kind = kind
        self.direction = _check_positive_int("direction", direction)
        self.iterations = _check_positive_int("iterations", iterations)

    def _generate(self, x, x_target, eps):
        z_mean, z_log_var = encode_pair(self._encode_fn, x)
        step = eps / self.iterations
        x_adv = x
        for _ in range(self.iterations):
            _, vectors = geometry.eigenspectrum(
                self._encode_fn, x_adv, self.kind, k=self.direction
            )
            u = ops.reshape(vectors[:, :, -1], ops.shape(x))  # (B, H, W, C)
            u = step * _unit(u, self.norm)
            plus = self._finish(x, x_adv - x + u, eps)
            minus = self._finish(x, x_adv - x - u, eps)
            better = self.divergence(plus, z_mean, z_log_var) >= (
                self.divergence(minus, z_mean, z_log_var)
            )
            x_adv = ops.where(_per_sample(better, x), plus, minus)
        return x_adv


class RandomAttack(_Attack):
    """A random perturbation of norm eps: the baseline every attack must beat.

    L2: a uniformly random direction scaled to eps. Linf: random signs times
    eps (a random vertex of the cube). Then clipped into the pixel range.

    Args:
        eps: budget (> 0) or list of budgets.
        norm: 2 (default) or np.inf.
        seed: int or None.
        clip_min, clip_max, batch_size: as in `LatentPGD`.

    Example:

    >>> x_adv = RandomAttack(eps=1.0, seed=0).generate(test_images[:100])
    """

    def __init__(
        self, eps=1.0, norm=2, seed=None, clip_min=0.0, clip_max=1.0,
        batch_size=128,
    ):
        super().__init__(
            eps=eps, norm=norm, clip_min=clip_min, clip_max=clip_max,
            batch_size=batch_size, seed=seed,
        )

    def _generate(self, x, x_target, eps):
        noise = keras.random.normal(ops.shape(x), seed=self._seed_generator)
        return self._finish(x, eps * _unit(noise, self.norm), eps)


class TargetedLatentAttack(_EncoderAttack):
    """Moves the encoding of x towards that of a target image.

    Projected gradient descent (within the eps ball) on
    `KL(q(z|x+delta) || q(z|x_t)) + KL(q(z|x_t) || q(z|x+delta))
    + reg * ||delta||_2`.

    Args:
        encoder: see the module docstring.
        eps: budget (> 0) or list of budgets.
        max_iter: iterations >= 1.
        reg: weight of the L2 penalty, >= 0.
        norm, eps_step, clip_min, clip_max, batch_size, seed: as in
            `LatentPGD`.

    Raises:
        ValueError: for invalid parameters; `generate` without `x_target`.

    Example:

    >>> attack = TargetedLatentAttack(model, eps=2.0, max_iter=100)
    >>> x_adv = attack.generate(images_of_a_3, x_target=images_of_an_8)
    """

    def __init__(
        self,
        encoder,
        eps=1.0,
        max_iter=100,
        reg=0.0,
        norm=2,
        eps_step=None,
        clip_min=0.0,
        clip_max=1.0,
        batch_size=128,
        seed=None,
    ):
        super().__init__(
            encoder, "kl", eps=eps, norm=norm, clip_min=clip_min,
            clip_max=clip_max, batch_size=batch_size, seed=seed,
        )
        self.max_iter = _check_positive_int("max_iter", max_iter)
        if not isinstance(reg, numbers.Real) or reg < 0:
            raise ValueError(
                "Invalid value received for argument `reg`: expected a number "
                f">= 0. Received: reg={reg!r}"
            )
        self.reg = float(reg)
        self.eps_step = _check_eps_step(eps_step)

    def _check_target(self, x, x_target):
        if x_target is None:
            raise ValueError(
                "TargetedLatentAttack.generate needs `x_target`, images of the "
                "shape of `x`. Received: x_target=None"
            )
        x_target = np.asarray(x_target, dtype="float32")
        if x_target.shape != x.shape:
            raise ValueError(
                "Invalid value received for argument `x_target`: expected "
                f"shape {x.shape}. Received: x_target.shape={x_target.shape}"
            )
        return x_target

    def distance(self, x_adv, target_mean, target_log_var):
        """Symmetric KL between q(z|x_adv) and the target posterior."""
        mean, log_var = encode_pair(self._encode_fn, x_adv)
        return gaussian_kl(
            mean, log_var, target_mean, target_log_var
        ) + gaussian_kl(target_mean, target_log_var, mean, log_var)

    def _loss(self, x_adv, x, target_mean, target_log_var):
        flat = ops.reshape(x_adv - x, (ops.shape(x)[0], -1))
        # Smoothed at 0, where the gradient of the norm is undefined.
        penalty = ops.sqrt(ops.sum(ops.square(flat), axis=-1) + 1e-12)
        return self.distance(x_adv, target_mean, target_log_var) + (
            self.reg * penalty
        )

    def _generate(self, x, x_target, eps):
        step = self.eps_step or 2.5 * eps / self.max_iter
        target_mean, target_log_var = encode_pair(self._encode_fn, x_target)
        return self._optimise(
            x, x, eps, step, (x, target_mean, target_log_var), ascend=False
        )


def as_decode_fn(model):
    """A callable z -> pixel means for a VAE or a loaded SavedModel."""
    if isinstance(model, keras.Model) and hasattr(model, "decode"):
        return model.decode
    if hasattr(model, "decode") and callable(model.decode):
        return model.decode
    raise ValueError(
        "Invalid value received for argument `model`: expected a vaekeras VAE "
        "or a SavedModel with `encode` and `decode` endpoints. Received: "
        f"model={model!r}"
    )


def _ssim(a, b):
    """SSIM between image batches in [0, 1] (tf.image.ssim, per image)."""
    import tensorflow as tf

    size = int(min(11, a.shape[1], a.shape[2]))
    return tf.image.ssim(
        tf.constant(a), tf.constant(b), max_val=1.0, filter_size=size,
        filter_sigma=1.5 * size / 11,
    ).numpy()


def evaluate_attack(model, x, x_adv, batch_size=256):
    """Damage done by adversarial inputs, measured against the clean input.

    Args:
        model: a vaekeras VAE or a loaded SavedModel (`encode`, `decode`).
        x: clean images `(N, H, W, C)` in [0, 1].
        x_adv: adversarial images of the same shape.
        batch_size: images per forward pass.

    Returns:
        Dict of per-point float arrays `(N,)`:
        - `latent_kl`: KL(q(z|x_adv) || q(z|x));
        - `latent_mean_shift`: ||mu(x_adv) - mu(x)||;
        - `reconstruction_mse`: mean squared error of dec(mu(x_adv)) against
          the clean x (per pixel);
        - `clean_reconstruction_mse`: the same for dec(mu(x));
        - `ssim`: SSIM of dec(mu(x_adv)) against dec(mu(x))
          (`tf.image.ssim`; the window shrinks to the image for small ones);
        - `perturbation_l2`, `perturbation_linf`: norms of x_adv - x;
        and `"means"`: the mean of each of those, as floats.

    Raises:
        ValueError: for mismatched shapes or an unsupported model.

    Example:

    >>> damage = evaluate_attack(model, x, EigenAttack(model, 1.0).generate(x))
    >>> damage["means"]["reconstruction_mse"]
    """
    x = np.asarray(x, dtype="float32")
    x_adv = np.asarray(x_adv, dtype="float32")
    if x.shape != x_adv.shape:
        raise ValueError(
            "Invalid value received for argument `x_adv`: expected the shape "
            f"of x, {x.shape}. Received: x_adv.shape={x_adv.shape}"
        )
    encode_fn, decode_fn = as_encode_fn(model), as_decode_fn(model)
    parts = {name: [] for name in (
        "latent_kl", "latent_mean_shift", "reconstruction_mse",
        "clean_reconstruction_mse", "ssim",
    )}
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        ab = x_adv[start:start + batch_size]
        mean, log_var = encode_pair(encode_fn, ops.convert_to_tensor(xb))
        mean_a, log_var_a = encode_pair(encode_fn, ops.convert_to_tensor(ab))
        recon = ops.convert_to_numpy(decode_fn(mean)).reshape(xb.shape)
        recon_a = ops.convert_to_numpy(decode_fn(mean_a)).reshape(xb.shape)
        axes = tuple(range(1, xb.ndim))
        parts["latent_kl"].append(
            ops.convert_to_numpy(gaussian_kl(mean_a, log_var_a, mean, log_var))
        )
        parts["latent_mean_shift"].append(np.linalg.norm(
            ops.convert_to_numpy(mean_a) - ops.convert_to_numpy(mean), axis=-1
        ))
        parts["reconstruction_mse"].append(
            np.mean((recon_a - xb) ** 2, axis=axes)
        )
        parts["clean_reconstruction_mse"].append(
            np.mean((recon - xb) ** 2, axis=axes)
        )
        parts["ssim"].append(_ssim(recon, recon_a))
    result = {
        name: np.concatenate(v).astype("float64") if v else np.zeros(0)
        for name, v in parts.items()
    }
    delta = (x_adv - x).reshape(len(x), -1).astype("float64")
    result["perturbation_l2"] = np.linalg.norm(delta, axis=-1)
    result["perturbation_linf"] = np.abs(delta).max(axis=-1, initial=0.0)
    result["means"] = {
        name: float(np.mean(values)) for name, values in result.items()
    }
    return result
