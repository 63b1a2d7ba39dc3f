"""The attack classes, with an ART-style interface.

The registered attacks (`vaekeras.attacks.members`) build them by name.

Every attack validates its parameters at construction, and
`generate(x, x_target=None)` returns adversarial images within the budget
and inside `[clip_min, clip_max]`, processed in batches of `batch_size`;
a list of budgets returns one array per budget. Each step is compiled once
per model (`vaekeras.attacks.steps`) with eps, the step size and the
target as tensors, so new attack objects and budgets reuse one trace.
"""

import functools
import numbers

import keras
import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import checks
from vaekeras import geometry
from vaekeras import latent
from vaekeras.attacks import budget
from vaekeras.attacks import steps


class _Attack:
    """Shared parameters, input checks, batching and the eps loop."""

    def __init__(self, eps, norm, clip_min, clip_max, batch_size, seed):
        self.eps_list, self._scalar_eps = checks.budgets(eps)
        self.eps = eps
        self.norm = checks.norm(norm)
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
        self.batch_size = checks.positive_int("batch_size", batch_size)
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
                out.append(backend.as_numpy(self._generate(xb, tb, eps, eps_t)))
            results.append(
                np.concatenate(out) if out else np.zeros_like(x)
            )
        return results[0] if self._scalar_eps else results

    def _check_images(self, x, argument):
        x = np.asarray(backend.as_numpy(x), dtype="float32")
        if x.ndim < 2:
            raise ValueError(
                f"Invalid value received for argument `{argument}`: expected "
                f"a batch. Received: {argument}.shape={x.shape}"
            )
        checks.finite_array(x, argument)
        checks.pixel_range(x, argument, self.clip_min, self.clip_max)
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
        checks.choice("objective", objective, steps.OBJECTIVES)
        self.model = model
        self.objective = objective
        self.latent = latent.LatentModel.of(model)
        if objective in ("reconstruction", "damage"):
            self.latent.require_decoder()

    def _check_images(self, x, argument):
        x = super()._check_images(x, argument)
        self.latent.check_inputs(x[:1], argument)
        return x

    def _descend(self, x, start, eps_t, step, objective, args, ascend):
        """`max_iter` projected steps from `start`; the best iterate.

        The whole loop is one compiled call (`keras.ops.fori_loop`), with
        the iteration count, eps and the step size as tensors.
        """
        fn = self.latent.function(
            functools.partial(
                steps.gradient_loop, objective=objective, norm=self.norm,
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
        objective: `"kl"`, `"mean"`, `"reconstruction"` (the squared L2
            change of the deterministic reconstruction dec(mu(x))) or
            `"damage"` (the squared error of dec(mu(x_adv)) against the
            clean x: the damage itself). The last two need a decoder.
        random_init: start from a random point of the ball.
        clip_min, clip_max: pixel range.
        batch_size: images per batch.
        seed: seed of the random start.

    Raises:
        ValueError: for any invalid parameter, naming it.

    Examples:
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
        self.max_iter = checks.positive_int("max_iter", max_iter)
        self.eps_step = (
            None if eps_step is None else checks.positive("eps_step", eps_step)
        )
        self.random_init = bool(random_init)

    def _generate(self, x, x_target, eps, eps_t):
        step = self.eps_step or 2.5 * eps / self.max_iter
        z_mean, z_log_var = self.latent.encode(x)
        start = ops.clip(
            x + budget.pgd_start(
                x, eps, self.norm, self.random_init, self._seed_generator
            ), self.clip_min, self.clip_max,
        )
        args = (x,) if self.objective == "damage" else (z_mean, z_log_var)
        return self._descend(
            x, start, eps_t, step, self.objective, args, ascend=True,
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

    Examples:
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
        checks.choice("kind", kind, geometry.KINDS)
        checks.choice("method", method, geometry.METHODS)
        if kind == "output":
            self.latent.require_decoder()
        self.kind = kind
        self.direction = checks.positive_int("direction", direction)
        self.iterations = checks.positive_int("iterations", iterations)
        self.method = method
        self.lanczos_iterations = (
            None if lanczos_iterations is None
            else checks.positive_int("lanczos_iterations", lanczos_iterations)
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
                steps.eigen_step, kind=self.kind, direction=self.direction,
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
            radius = ops.convert_to_tensor(eps * i / self.iterations, "float32")
            x_adv = fn(x, x_adv, z_mean, z_log_var, radius, step)
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

    Examples:
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
        fit = backend.compile_plain(
            functools.partial(
                steps.random_fit, norm=self.norm, clip_min=self.clip_min,
                clip_max=self.clip_max,
            ),
            ("random_fit", self.norm, self.clip_min, self.clip_max),
        )
        return fit(x, eps_t * budget.unit(noise, self.norm), eps_t)


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

    Examples:
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
        self.max_iter = checks.positive_int("max_iter", max_iter)
        self.reg = checks.non_negative("reg", reg)
        self.eps_step = (
            None if eps_step is None else checks.positive("eps_step", eps_step)
        )

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

    def _generate(self, x, x_target, eps, eps_t):
        step = self.eps_step or 2.5 * eps / self.max_iter
        target_mean, target_log_var = self.latent.encode(x_target)
        reg = ops.convert_to_tensor(self.reg, "float32")
        return self._descend(
            x, x, eps_t, step, "targeted",
            (x, target_mean, target_log_var, reg), ascend=False,
        )
