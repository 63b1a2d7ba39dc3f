"""Latent-space attacks on VAE encoders, with an ART-style interface.

Every attack validates its parameters at construction, and
`generate(x, x_target=None)` returns adversarial images within the budget
(`||x_adv - x|| <= eps` in the attack's norm) and inside
`[clip_min, clip_max]`, processed in batches of `batch_size`. `eps` may be
a number or a list: a list returns one `x_adv` per eps (as foolbox does).

The model may be anything `vaekeras.latent.LatentModel` accepts: a vaekeras
`VAE`, a Keras encoder (`x -> [z_mean, z_log_var]`), a SavedModel loaded
with `tf.saved_model.load`, or a callable. Each attack step is compiled
once per model (see `vaekeras.latent`) with eps, the step size and the
target as tensor arguments, so new attack objects and new budgets reuse
the same trace, and the weights are read at every call.

- `LatentPGD`: projected gradient ascent on the latent divergence from the
  clean encoding (`"kl"`: KL(q(z|x+delta) || q(z|x)); `"mean"`:
  ||mu(x+delta) - mu(x)||^2), L2 or Linf ball.
- `EigenAttack`: one step (or `iterations` sub-steps) along an eigenvector
  of the pullback metric, the paper's attack.
- `RandomAttack`: a random direction of the same norm, the baseline.
- `TargetedLatentAttack`: moves q(z|x+delta) towards q(z|x_target) by
  minimising their symmetric KL plus `reg * ||delta||_2` (Kuzina et al.).

L2 perturbations are projected exactly onto the intersection of the
eps-ball and the pixel box (`fit_to_budget`); the eigen and random attacks
also stretch their direction until the clipped perturbation uses the whole
budget, so that no attack is weakened by the box.
"""

import functools
import math
import numbers

import keras
import numpy as np
from keras import ops

from vaekeras import geometry
from vaekeras import latent
from vaekeras.layers import clip_log_var

NORMS = (2, np.inf)
OBJECTIVES = ("kl", "mean", "reconstruction")
ATTACK_NAMES = ("pgd", "eigen", "random", "targeted")
# Rounds of the L2 ball-and-box fit. Each round adds the coordinates that
# saturate before the next iterate; on MNIST at eps 0.05-5 it is exact
# after 3 (measured), and every iterate is feasible whatever the count.
_FIT_ROUNDS = 6


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
    """`(list of floats, was_scalar)` or a `ValueError` naming `eps`."""
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


def check_norm(norm):
    """2 or np.inf, from those or from "2", "l2", "inf", "linf"."""
    names = {"2": 2, "l2": 2, "inf": np.inf, "linf": np.inf}
    if isinstance(norm, str):
        norm = names.get(norm.strip().lower(), norm)
    if isinstance(norm, bool) or norm not in NORMS:
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


def _flat(v):
    return ops.reshape(v, (ops.shape(v)[0], -1))


def _flat_norm(delta, norm):
    flat = _flat(delta)
    if norm == 2:
        return ops.sqrt(ops.sum(ops.square(flat), axis=-1))
    return ops.max(ops.abs(flat), axis=-1)


def _per_sample(v, like):
    """Reshapes `(B,)` to broadcast against `like` `(B, H, W, C)`."""
    return ops.reshape(v, (-1,) + (1,) * (len(like.shape) - 1))


def _unit(direction, norm):
    """Steepest-ascent step of unit `norm` for a gradient `direction`."""
    if norm == np.inf:
        return ops.sign(direction)
    n = ops.maximum(_flat_norm(direction, 2), 1e-12)
    return direction / _per_sample(n, direction)


def fit_to_budget(x, delta, eps, norm, clip_min, clip_max, grow=False):
    """Moves `x + delta` into the box and the eps-ball of `norm` around `x`.

    Linf: clips delta to [-eps, eps], then `x + delta` to the box (the exact
    projection). L2: returns `clip(x + t * delta) - x` for the largest
    t in (0, 1] (the exact Euclidean projection onto the ball-box
    intersection: coordinate-wise the KKT solution is a clipped scaling of
    delta) or, with `grow`, the largest t >= 0, which stretches the
    direction until the clipped perturbation has norm eps wherever the box
    allows. t comes from a monotone fixed-point iteration on the set of
    saturated coordinates (every iterate feasible; exact once that set
    stops growing, in a few rounds).

    Args:
        x: clean images `(B, H, W, C)` inside the box.
        delta: perturbations of the same shape.
        eps: scalar budget (a tensor keeps one trace for every value).
        norm: 2 or np.inf.
        clip_min, clip_max: the box.
        grow: stretch L2 perturbations to the full budget.

    Returns:
        The new perturbation, `x + result` inside the box and the ball.
    """
    if norm == np.inf:
        delta = ops.clip(delta, -eps, eps)
        return ops.clip(x + delta, clip_min, clip_max) - x
    y, xf = _flat(delta), _flat(x)
    room_up, room_down = clip_max - xf, xf - clip_min  # >= 0
    room = ops.where(y > 0, room_up, room_down)  # (B, D)
    size = ops.abs(y)
    size2, room2 = ops.square(size), ops.square(room)
    length = ops.sqrt(ops.sum(size2, axis=-1, keepdims=True))
    # Never clipped beyond t = eps / |y|: a feasible start.
    t = eps / ops.maximum(length, 1e-30)
    if grow:
        # Every coordinate saturates at t = room / size.
        t_high = ops.max(
            ops.where(size > 0, room / ops.maximum(size, 1e-30), 0.0),
            axis=-1, keepdims=True,
        )
    else:
        t_high = ops.ones_like(t)
    t = ops.minimum(t, t_high)
    for _ in range(_FIT_ROUNDS):
        # With the coordinates saturated at t held saturated, |clip(x + s y)
        # - x|^2 <= R + s^2 S for s >= t; solving R + s^2 S = eps^2 gives a
        # feasible s >= t. The sequence only grows and is exact once the
        # saturated set stops growing.
        saturated = t * size >= room
        fixed = ops.sum(ops.where(saturated, room2, 0.0), -1, keepdims=True)
        free = ops.sum(ops.where(saturated, 0.0, size2), -1, keepdims=True)
        t_next = ops.sqrt(
            ops.maximum(eps**2 - fixed, 0.0) / ops.maximum(free, 1e-30)
        )
        t = ops.where(
            free > 0, ops.maximum(t, ops.minimum(t_next, t_high)), t_high
        )
    t = ops.where(length > 0, t, 0.0)
    moved = ops.clip(xf + t * y, clip_min, clip_max) - xf
    return ops.reshape(moved, ops.shape(x))


def _objective(view, name, x_adv, args):
    """Per-sample objective of the attack called `name`."""
    mean, log_var = view.encode(x_adv)
    if name == "mean":
        z_mean, _ = args
        return ops.sum(ops.square(mean - z_mean), axis=-1)
    if name == "reconstruction":
        z_mean, _ = args
        change = view.decode(mean) - view.decode(z_mean)
        return ops.sum(ops.square(_flat(change)), axis=-1)
    if name == "kl":
        return gaussian_kl(mean, log_var, *args)
    x, target_mean, target_log_var, reg = args  # "targeted"
    distance = gaussian_kl(
        mean, log_var, target_mean, target_log_var
    ) + gaussian_kl(target_mean, target_log_var, mean, log_var)
    # Smoothed at 0, where the gradient of the norm is undefined.
    penalty = ops.sqrt(ops.sum(ops.square(_flat(x_adv - x)), axis=-1) + 1e-12)
    return distance + reg * penalty


def _gradient_step(
    view, x, x_adv, best, best_loss, eps, step, *args, objective, norm,
    ascend, clip_min, clip_max,
):
    """One projected step; keeps the best iterate seen per sample."""
    loss, grad = view.value_and_grad(
        lambda x_: _objective(view, objective, x_, args), x_adv
    )
    improved = loss > best_loss if ascend else loss < best_loss
    best = ops.where(_per_sample(improved, x), x_adv, best)
    best_loss = ops.where(improved, loss, best_loss)
    sign = 1.0 if ascend else -1.0
    delta = fit_to_budget(
        x, x_adv - x + sign * step * _unit(grad, norm), eps, norm, clip_min,
        clip_max,
    )
    return ops.clip(x + delta, clip_min, clip_max), best, best_loss


def _gradient_loop(view, x, start, eps, step, passes, *args, ascend, **kw):
    """`passes` calls of `_gradient_step` from `start`; the best iterate.

    The last pass only scores the final iterate.
    """
    worst = -np.inf if ascend else np.inf
    best_loss = ops.full((ops.shape(x)[0],), worst, "float32")

    def body(_, state):
        x_adv, best, best_loss = state
        return _gradient_step(
            view, x, x_adv, best, best_loss, eps, step, *args,
            ascend=ascend, **kw,
        )

    _, best, _ = ops.fori_loop(0, passes, body, (start, start, best_loss))
    return best


def _eigen_step(
    view, x, x_adv, z_mean, z_log_var, budget, step, *, kind, direction,
    norm, objective, clip_min, clip_max, method, lanczos_iterations,
):
    """Moves along the `direction`-th eigenvector, more damaging sign."""
    _, vectors = geometry.spectrum_in_view(
        view, x_adv, kind, direction, method=method,
        iterations=lanczos_iterations,
    )
    u = step * _unit(ops.reshape(vectors[:, :, -1], ops.shape(x)), norm)
    # The sign is chosen on the two steps clipped into the box; only the
    # chosen one is then fitted to the budget.
    plus, minus = (
        _objective(
            view, objective, ops.clip(x_adv + s * u, clip_min, clip_max),
            (z_mean, z_log_var),
        )
        for s in (1.0, -1.0)
    )
    sign = ops.where(_per_sample(plus >= minus, x), 1.0, -1.0)
    return ops.clip(x + fit_to_budget(
        x, x_adv - x + sign * u, budget, norm, clip_min, clip_max, grow=True
    ), clip_min, clip_max)


def _random_fit(x, delta, eps, norm, clip_min, clip_max):
    return ops.clip(
        x + fit_to_budget(x, delta, eps, norm, clip_min, clip_max, grow=True),
        clip_min, clip_max,
    )


def _pgd_start(x, eps, norm, random_init, seed):
    """PGD's starting perturbation: tiny, or uniform in the ball."""
    shape = ops.shape(x)
    if norm == np.inf:
        scale = eps if random_init else 1e-3 * eps
        return keras.random.uniform(shape, -scale, scale, seed=seed)
    direction = _unit(keras.random.normal(shape, seed=seed), 2)
    if not random_init:
        return 1e-3 * eps * direction
    # Uniform in the L2 ball: radius ~ eps * U^(1/D).
    dim = int(np.prod(shape[1:]))
    radius = eps * keras.random.uniform((shape[0],), seed=seed) ** (
        1.0 / dim
    )
    return direction * _per_sample(radius, x)


def worst_case_inputs(
    encoder, x, z_mean, z_log_var, eps, norm=2, steps=1, seed=None,
    clip_min=0.0, clip_max=1.0,
):
    """`LatentPGD` on the KL, as a traceable function for training steps.

    The same projected steps as `LatentPGD` (`steps` of them, step size
    2.5 * eps / steps, best iterate kept), written to run inside a
    compiled `train_step` on every backend: on the live weights, with no
    compilation of its own. The result carries no gradient.

    Args:
        encoder: Keras model `x -> [z_mean, z_log_var]`.
        x: images `(B, H, W, C)`.
        z_mean, z_log_var: the clean encoding of `x`, each `(B, d)`.
        eps: L2 or Linf budget (a Python number > 0).
        norm: 2 or np.inf.
        steps: PGD steps >= 1.
        seed: a `keras.random.SeedGenerator` (or int) for the start.
        clip_min, clip_max: pixel range.

    Returns:
        `x_adv` `(B, H, W, C)`, within eps of `x`, with
        KL(q(z|x_adv) || q(z|x)) as large as the steps found.

    Example:

    >>> x_adv = worst_case_inputs(encoder, x, *encoder(x), eps=1.0)
    """
    view = latent.LatentModel.of(encoder).live_view()
    start = ops.clip(
        x + _pgd_start(x, eps, norm, False, seed), clip_min, clip_max
    )
    x_adv = _gradient_loop(
        view, x, start, eps, 2.5 * eps / steps, steps + 1,
        ops.stop_gradient(z_mean), ops.stop_gradient(z_log_var),
        objective="kl", norm=norm, ascend=True, clip_min=clip_min,
        clip_max=clip_max,
    )
    return ops.stop_gradient(x_adv)


class _Attack:
    """Shared parameters, input checks, batching and the eps loop."""

    def __init__(self, eps, norm, clip_min, clip_max, batch_size, seed):
        self.eps_list, self._scalar_eps = check_eps(eps)
        self.eps = eps
        self.norm = check_norm(norm)
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
            ValueError: for x that is not finite or outside the clip range,
                or a bad `x_target`.
        """
        x = self._check_images(x, "x")
        x_target = self._check_target(x, x_target)
        results = []
        for eps in self.eps_list:
            eps_t = ops.convert_to_tensor(eps, "float32")
            out = []
            for start in range(0, len(x), self.batch_size):
                stop = start + self.batch_size
                xb = ops.convert_to_tensor(x[start:stop])
                tb = None if x_target is None else ops.convert_to_tensor(
                    x_target[start:stop]
                )
                out.append(latent.as_numpy(self._generate(xb, tb, eps, eps_t)))
            results.append(
                np.concatenate(out) if out else np.zeros_like(x)
            )
        return results[0] if self._scalar_eps else results

    def _check_images(self, x, argument):
        x = np.asarray(latent.as_numpy(x), dtype="float32")
        if x.ndim < 2:
            raise ValueError(
                f"Invalid value received for argument `{argument}`: expected "
                f"a batch. Received: {argument}.shape={x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError(
                f"Invalid value received for argument `{argument}`: it holds "
                "non-finite values (NaN or inf)."
            )
        if x.size and (x.min() < self.clip_min or x.max() > self.clip_max):
            raise ValueError(
                f"Invalid value received for argument `{argument}`: values "
                f"must lie in [{self.clip_min:g}, {self.clip_max:g}]. "
                f"Received: min={x.min():g}, max={x.max():g}"
            )
        return x

    def _check_target(self, x, x_target):
        if x_target is not None:
            raise ValueError(
                f"{type(self).__name__} is untargeted: pass no `x_target`."
            )
        return None

    def _generate(self, x, x_target, eps, eps_t):
        raise NotImplementedError


class _EncoderAttack(_Attack):
    def __init__(self, model, objective, **kwargs):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES:
            raise ValueError(
                "Invalid value received for argument `objective`: expected one "
                f"of {OBJECTIVES}. Received: objective={objective!r}"
            )
        self.model = model
        self.objective = objective
        self.latent = latent.LatentModel.of(model)
        if objective == "reconstruction":
            self.latent.require_decoder()

    def _check_images(self, x, argument):
        x = super()._check_images(x, argument)
        self.latent.check_inputs(x[:1], argument)
        return x

    def divergence(self, x_adv, z_mean, z_log_var):
        """Per-sample latent divergence of `x_adv` from a clean encoding."""
        mean_adv, log_var_adv = self.latent.encode(x_adv)
        if self.objective == "mean":
            return ops.sum(ops.square(mean_adv - z_mean), axis=-1)
        if self.objective == "reconstruction":
            change = self.latent.decode(mean_adv) - self.latent.decode(z_mean)
            return ops.sum(ops.square(_flat(change)), axis=-1)
        return gaussian_kl(mean_adv, log_var_adv, z_mean, z_log_var)

    def _descend(self, x, start, eps_t, step, objective, args, ascend):
        """`max_iter` projected steps from `start`; the best iterate.

        The whole loop is one compiled call (`keras.ops.fori_loop`), with
        the iteration count, eps and the step size as tensors.
        """
        fn = self.latent.function(
            functools.partial(
                _gradient_loop, objective=objective, norm=self.norm,
                ascend=ascend, clip_min=self.clip_min, clip_max=self.clip_max,
            ),
            ("gradient_loop", objective, self.norm, ascend, self.clip_min,
             self.clip_max),
        )
        return fn(
            x, start, eps_t, ops.convert_to_tensor(step, "float32"),
            ops.convert_to_tensor(self.max_iter + 1, "int32"), *args,
        )


class LatentPGD(_EncoderAttack):
    """Projected gradient ascent on the latent divergence.

    The divergence has zero gradient at delta = 0 (its minimum), so without
    `random_init` the search starts from a tiny seeded random perturbation
    (norm 1e-3 * eps); with it, from a uniform draw in the ball. Each step
    is projected exactly onto the intersection of the ball and the box.
    The best iterate per sample is returned.

    Args:
        model: see the module docstring.
        norm: 2 or np.inf.
        eps: budget (> 0) or list of budgets.
        eps_step: step size; defaults to 2.5 * eps / max_iter.
        max_iter: iterations >= 1.
        objective: `"kl"`, `"mean"` or `"reconstruction"` (the squared L2
            change of the deterministic reconstruction dec(mu(x)); needs
            a decoder).
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
        model,
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
            model, objective, eps=eps, norm=norm, clip_min=clip_min,
            clip_max=clip_max, batch_size=batch_size, seed=seed,
        )
        self.max_iter = _check_positive_int("max_iter", max_iter)
        self.eps_step = _check_eps_step(eps_step)
        self.random_init = bool(random_init)

    def _generate(self, x, x_target, eps, eps_t):
        step = self.eps_step or 2.5 * eps / self.max_iter
        z_mean, z_log_var = self.latent.encode(x)
        start = ops.clip(
            x + _pgd_start(
                x, eps, self.norm, self.random_init, self._seed_generator
            ), self.clip_min, self.clip_max,
        )
        return self._descend(
            x, start, eps_t, step, self.objective, (z_mean, z_log_var),
            ascend=True,
        )


class EigenAttack(_EncoderAttack):
    """Step along an eigenvector of the encoder's pullback metric.

    Each of `iterations` sub-steps recomputes the metric at the current
    point and moves along its `direction`-th eigenvector (1 = top), with
    the sign that gives the larger latent divergence. After sub-step i the
    perturbation is stretched (L2) to use i / iterations of eps wherever
    the box allows. For `norm=np.inf` the step is
    `sign(u) * eps / iterations`.

    Args:
        model: see the module docstring.
        eps: budget (> 0) or list of budgets.
        norm: 2 (default) or np.inf.
        kind: metric kind, `"stochastic"` (default), `"fisher"`, `"mean"`
            or `"output"` (reconstruction damage; needs a decoder).
        direction: which eigenvector, 1-based, at most the rank bound.
        iterations: sub-steps >= 1.
        objective: divergence used to choose the sign.
        clip_min, clip_max, batch_size: as in `LatentPGD`.
        method: how the eigenvector is found: `"exact"` (the encoder's
            Jacobian), `"lanczos"` (matrix-free: `lanczos_iterations`
            products G v, each one JVP and one VJP) or `"auto"` (default;
            as in `geometry.eigenspectrum`).
        lanczos_iterations: Krylov dimension of `"lanczos"`; default
            `2 * direction`. An attack needs only a good direction, not a
            converged eigenpair: on the benchmark MLP 2 iterations reach
            0.94 of PGD-50's latent KL (the exact eigenvector 0.97), so no
            residual check is made (see
            `geometry.matrix_free_eigenspectrum` for one).

    Raises:
        ValueError: for any invalid parameter, naming it.

    Example:

    >>> attack = EigenAttack(model, eps=1.0, kind="fisher")
    >>> x_adv = attack.generate(test_images[:100])
    """

    def __init__(
        self,
        model,
        eps=1.0,
        norm=2,
        kind="stochastic",
        direction=1,
        iterations=1,
        objective="kl",
        clip_min=0.0,
        clip_max=1.0,
        batch_size=128,
        method="auto",
        lanczos_iterations=None,
    ):
        super().__init__(
            model, objective, eps=eps, norm=norm, clip_min=clip_min,
            clip_max=clip_max, batch_size=batch_size, seed=None,
        )
        geometry.check_kind(kind)
        geometry.check_method(method)
        if kind == "output":
            self.latent.require_decoder()
        self.kind = kind
        self.direction = _check_positive_int("direction", direction)
        self.iterations = _check_positive_int("iterations", iterations)
        self.method = method
        self.lanczos_iterations = (
            None if lanczos_iterations is None
            else _check_positive_int("lanczos_iterations", lanczos_iterations)
        )

    def _generate(self, x, x_target, eps, eps_t):
        bound = geometry.rank_bound(self.kind, self.latent.latent_dim(x))
        if self.direction > bound:
            raise ValueError(
                "Invalid value received for argument `direction`: expected at "
                f"most {bound}, the rank bound of kind={self.kind!r}. "
                f"Received: direction={self.direction}"
            )
        method = geometry.resolve_method(self.method, self.latent, x, self.kind)
        size = int(np.prod(x.shape[1:]))
        lanczos_iterations = None
        if method == "lanczos":
            lanczos_iterations = min(
                size, self.lanczos_iterations or 2 * self.direction
            )
            if lanczos_iterations < self.direction:
                raise ValueError(
                    "Invalid value received for argument "
                    "`lanczos_iterations`: expected at least direction="
                    f"{self.direction}. Received: lanczos_iterations="
                    f"{self.lanczos_iterations}"
                )
        fn = self.latent.function(
            functools.partial(
                _eigen_step, kind=self.kind, direction=self.direction,
                norm=self.norm, objective=self.objective,
                clip_min=self.clip_min, clip_max=self.clip_max,
                method=method, lanczos_iterations=lanczos_iterations,
            ),
            ("eigen_step", self.kind, self.direction, self.norm,
             self.objective, self.clip_min, self.clip_max, method,
             lanczos_iterations),
        )
        z_mean, z_log_var = self.latent.encode(x)
        step = ops.convert_to_tensor(eps / self.iterations, "float32")
        x_adv = x
        for i in range(1, self.iterations + 1):
            budget = ops.convert_to_tensor(eps * i / self.iterations, "float32")
            x_adv = fn(x, x_adv, z_mean, z_log_var, budget, step)
        return x_adv


class RandomAttack(_Attack):
    """A random perturbation of norm eps: the baseline every attack must beat.

    L2: a uniformly random direction, stretched until the perturbation
    clipped into the pixel range has norm eps (wherever the box allows), so
    the baseline spends the same budget as the attacks. Linf: random signs
    times eps (a random vertex of the cube), clipped.

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

    def _generate(self, x, x_target, eps, eps_t):
        noise = keras.random.normal(ops.shape(x), seed=self._seed_generator)
        fit = latent.compile_function(
            functools.partial(
                _random_fit, norm=self.norm, clip_min=self.clip_min,
                clip_max=self.clip_max,
            ),
            ("random_fit", self.norm, self.clip_min, self.clip_max),
        )
        return fit(x, eps_t * _unit(noise, self.norm), eps_t)


class TargetedLatentAttack(_EncoderAttack):
    """Moves the encoding of x towards that of a target image.

    Projected gradient descent (within the eps ball) on
    `KL(q(z|x+delta) || q(z|x_t)) + KL(q(z|x_t) || q(z|x+delta))
    + reg * ||delta||_2`.

    Args:
        model: see the module docstring.
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
        model,
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
            model, "kl", eps=eps, norm=norm, clip_min=clip_min,
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
        x_target = self._check_images(x_target, "x_target")
        if x_target.shape != x.shape:
            raise ValueError(
                "Invalid value received for argument `x_target`: expected "
                f"shape {x.shape}. Received: x_target.shape={x_target.shape}"
            )
        return x_target

    def distance(self, x_adv, target_mean, target_log_var):
        """Symmetric KL between q(z|x_adv) and the target posterior."""
        mean, log_var = self.latent.encode(x_adv)
        return gaussian_kl(
            mean, log_var, target_mean, target_log_var
        ) + gaussian_kl(target_mean, target_log_var, mean, log_var)

    def _generate(self, x, x_target, eps, eps_t):
        step = self.eps_step or 2.5 * eps / self.max_iter
        target_mean, target_log_var = self.latent.encode(x_target)
        reg = ops.convert_to_tensor(self.reg, "float32")
        return self._descend(
            x, x, eps_t, step, "targeted",
            (x, target_mean, target_log_var, reg), ascend=False,
        )


def make_attack(
    name, model, eps, norm=2, kind="stochastic", max_iter=50, seed=0,
    batch_size=128,
):
    """Builds the attack called `name` (one of `ATTACK_NAMES`).

    Args:
        name: `"pgd"`, `"eigen"`, `"random"` or `"targeted"`.
        model: see the module docstring (unused by `"random"`).
        eps: budget or list of budgets.
        norm: 2 or np.inf.
        kind: metric kind of the eigen attack.
        max_iter: iterations of PGD and the targeted attack.
        seed: seed of random starts and directions.
        batch_size: images per batch.

    Returns:
        An attack object.

    Raises:
        ValueError: for an unknown name or bad parameters.
    """
    if name == "pgd":
        return LatentPGD(
            model, norm=norm, eps=eps, max_iter=max_iter, seed=seed,
            batch_size=batch_size,
        )
    if name == "eigen":
        return EigenAttack(
            model, eps=eps, norm=norm, kind=kind, batch_size=batch_size
        )
    if name == "random":
        return RandomAttack(
            eps=eps, norm=norm, seed=seed, batch_size=batch_size
        )
    if name == "targeted":
        return TargetedLatentAttack(
            model, eps=eps, norm=norm, max_iter=max_iter, seed=seed,
            batch_size=batch_size,
        )
    raise ValueError(
        "Invalid value received for argument `attack`: expected one of "
        f"{ATTACK_NAMES}. Received: attack={name!r}"
    )


def damage_curve(
    attack, model, x, x_target=None, batch_size=256, defense=None
):
    """Runs `attack` at each of its budgets; the mean damage per eps.

    Args:
        attack: an attack object (its `eps` list is the curve's grid).
        model: the model the damage is measured on (see `evaluate_attack`).
        x: clean images.
        x_target: targets, for a targeted attack.
        batch_size: images per forward pass of the evaluation.
        defense: a test-time defense the damage is measured through (see
            `evaluate_attack`); the attack itself sees only `model`.

    Returns:
        `(rows, x_advs)`: one dict per eps, `{"eps", **means}` of
        `evaluate_attack` (with `budget_fraction`), and the adversarial
        images of each eps.
    """
    generated = attack.generate(x, x_target=x_target)
    if attack._scalar_eps:
        generated = [generated]
    rows = []
    for eps, x_adv in zip(attack.eps_list, generated):
        damage = evaluate_attack(
            model, x, x_adv, batch_size, eps=eps, norm=attack.norm,
            defense=defense,
        )
        rows.append({"eps": eps, **damage["means"]})
    return rows, generated


def _gaussian_window(size, sigma):
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter(images, window):
    """Separable 'valid' Gaussian filtering of `(N, H, W, C)` images."""
    size = len(window)
    rows = np.lib.stride_tricks.sliding_window_view(images, size, axis=1)
    images = np.einsum("nhwck,k->nhwc", rows, window)
    cols = np.lib.stride_tricks.sliding_window_view(images, size, axis=2)
    return np.einsum("nhwck,k->nhwc", cols, window)


def ssim(a, b, max_val=1.0):
    """Structural similarity per image, as `tf.image.ssim` computes it.

    Gaussian window of size min(11, H, W) and sigma 1.5 * size / 11 ('valid'
    filtering), k1 = 0.01, k2 = 0.03, averaged over the map and channels.
    Plain numpy, so every backend gets the same numbers.

    Args:
        a, b: image batches `(N, H, W, C)` of the same shape.
        max_val: the dynamic range of the pixels.

    Returns:
        float64 array `(N,)`; 1 for identical images.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    size = int(min(11, a.shape[1], a.shape[2]))
    window = _gaussian_window(size, 1.5 * size / 11)
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mean_a, mean_b = _filter(a, window), _filter(b, window)
    var_a = _filter(a * a, window) - mean_a**2
    var_b = _filter(b * b, window) - mean_b**2
    cov = _filter(a * b, window) - mean_a * mean_b
    luminance = (2 * mean_a * mean_b + c1) / (mean_a**2 + mean_b**2 + c1)
    structure = (2 * cov + c2) / (var_a + var_b + c2)
    return np.mean(luminance * structure, axis=(1, 2, 3))


def evaluate_attack(
    model, x, x_adv, batch_size=256, eps=None, norm=2, defense=None
):
    """Damage done by adversarial inputs, measured against the clean input.

    Args:
        model: a vaekeras VAE or a loaded SavedModel (anything with a
            decoder that `vaekeras.latent.LatentModel` accepts).
        x: clean images `(N, H, W, C)` in [0, 1].
        x_adv: adversarial images of the same shape.
        batch_size: images per forward pass.
        eps: the attack's budget; when given, `budget_fraction` reports the
            perturbation's norm over eps.
        norm: the norm of that budget, 2 or np.inf.
        defense: None, or a test-time defense standing between the inputs
            and the model (e.g. `vaekeras.defenses.MCMCReconstruction`):
            anything with `encode(x) -> (z_mean, z_log_var)` and
            `decode(z)`. Clean and adversarial inputs then both go through
            it, as they would in deployment.

    Returns:
        Dict of per-point float arrays `(N,)`:
        - `latent_kl`: KL(q(z|x_adv) || q(z|x));
        - `latent_mean_shift`: ||mu(x_adv) - mu(x)||;
        - `reconstruction_mse`: mean squared error of dec(mu(x_adv)) against
          the clean x (per pixel);
        - `clean_reconstruction_mse`: the same for dec(mu(x));
        - `ssim`: SSIM of dec(mu(x_adv)) against dec(mu(x)) (`ssim`);
        - `perturbation_l2`, `perturbation_linf`: norms of x_adv - x;
        - `budget_fraction` (with `eps`): that norm over eps;
        and `"means"`: the mean of each of those, as floats.

    Raises:
        ValueError: for mismatched shapes or a model without a decoder.

    Example:

    >>> damage = evaluate_attack(model, x, EigenAttack(model, 1.0).generate(x))
    >>> damage["means"]["reconstruction_mse"]
    """
    x = np.asarray(latent.as_numpy(x), dtype="float32")
    x_adv = np.asarray(latent.as_numpy(x_adv), dtype="float32")
    if x.shape != x_adv.shape:
        raise ValueError(
            "Invalid value received for argument `x_adv`: expected the shape "
            f"of x, {x.shape}. Received: x_adv.shape={x_adv.shape}"
        )
    adapter = latent.LatentModel.of(model)
    adapter.require_decoder()
    encode, decode = adapter.encode, adapter.decode
    if defense is not None:
        encode, decode = defense.encode, defense.decode
    parts = {name: [] for name in (
        "latent_kl", "latent_mean_shift", "reconstruction_mse",
        "clean_reconstruction_mse", "ssim",
    )}
    for start in range(0, len(x), batch_size):
        xb = adapter.check_inputs(x[start:start + batch_size])
        ab = adapter.check_inputs(x_adv[start:start + batch_size], "x_adv")
        mean, log_var = encode(xb)
        mean_a, log_var_a = encode(ab)
        recon = latent.as_numpy(decode(mean))
        recon_a = latent.as_numpy(decode(mean_a))
        clean = x[start:start + batch_size]
        recon, recon_a = recon.reshape(clean.shape), recon_a.reshape(
            clean.shape
        )
        axes = tuple(range(1, clean.ndim))
        parts["latent_kl"].append(latent.as_numpy(
            gaussian_kl(mean_a, log_var_a, mean, log_var)
        ))
        parts["latent_mean_shift"].append(np.linalg.norm(
            latent.as_numpy(mean_a) - latent.as_numpy(mean), axis=-1
        ))
        parts["reconstruction_mse"].append(
            np.mean((recon_a - clean) ** 2, axis=axes)
        )
        parts["clean_reconstruction_mse"].append(
            np.mean((recon - clean) ** 2, axis=axes)
        )
        parts["ssim"].append(ssim(recon, recon_a))
    result = {
        name: np.concatenate(v).astype("float64") if v else np.zeros(0)
        for name, v in parts.items()
    }
    delta = (x_adv - x).reshape(len(x), -1).astype("float64")
    result["perturbation_l2"] = np.linalg.norm(delta, axis=-1)
    result["perturbation_linf"] = np.abs(delta).max(axis=-1, initial=0.0)
    if eps is not None:
        key = "perturbation_l2" if check_norm(norm) == 2 else (
            "perturbation_linf"
        )
        result["budget_fraction"] = result[key] / float(eps)
    result["means"] = {
        name: float(np.mean(values)) for name, values in result.items()
    }
    return result
