"""`APGD`: Auto-PGD runs from diverse starts, on every budget at once.

The runs differ in where they start (Croce & Hein 2020 restart from
random points; on a VAE a start already far along in latent space finds
damage a start next to x misses):

- `"clean"`: next to x (a tiny seeded perturbation, since the damage's
  gradient can vanish at x itself);
- `"random"`: uniform in the ball (inside the box);
- `"latent"`: a quarter of the iterations of APGD that pulls q(z|x)
  toward the posterior of another image of the batch (a different one
  per run), then APGD on the objective from there.

Through a randomized test-time defense that offers `attack_encode` the
objective is the damage through the defense, each gradient averaged
over fresh draws (expectation over transformation).
"""

import functools

import keras
import numpy as np

from vaekeras import backend
from vaekeras import checks
from vaekeras import latent
from vaekeras.attacks import apgd
from vaekeras.attacks import scoring
from vaekeras.attacks import steps

OBJECTIVES = ("damage", "kl")
START_CYCLE = ("random", "latent")


def start_kinds(restarts):
    """The start of each run: `"clean"` first, then random and latent in
    turn."""
    return ["clean"] + [
        START_CYCLE[r % len(START_CYCLE)] for r in range(restarts - 1)
    ]


def random_start(x, eps, norm, rng, scale=1.0):
    """Uniform points of each image's ball (radius `scale * eps`), in the
    box (clipping only shortens a perturbation)."""
    shape = x.shape
    eps = (scale * eps).reshape(-1, *([1] * (x.ndim - 1)))
    if norm == np.inf:
        delta = rng.uniform(-1.0, 1.0, shape) * eps
    else:
        direction = rng.standard_normal(shape)
        flat = direction.reshape(len(x), -1)
        direction /= np.maximum(
            np.linalg.norm(flat, axis=-1), 1e-12
        ).reshape(eps.shape)
        radius = rng.uniform(size=len(x)) ** (1.0 / flat.shape[1])
        delta = direction * radius.reshape(eps.shape) * eps
    return np.clip(x + delta, 0.0, 1.0).astype("float32")


class APGD:
    """Auto-PGD on the damage or the latent KL, every budget in one batch.

    Args:
        model: a vaekeras VAE or anything `vaekeras.latent.LatentModel`
            accepts (with a decoder for `"damage"`).
        eps: a budget > 0 or a list of them.
        norm: 2 or np.inf.
        objective: `"damage"` (squared error of dec(mu(x_adv)) against
            the clean x) or `"kl"` (KL(q(z|x_adv) || q(z|x))).
        iterations: APGD steps per run.
        restarts: runs, started as `start_kinds(restarts)` says.
        seed: seeds every start.
        batch_size: images per compiled call.
        defense: None, or a test-time defense with `attack_encode`,
            `attack_draws` and `attack_key` (`"damage"` only).
        eot_samples: defense draws averaged per gradient.

    Raises:
        ValueError: for any invalid argument, naming it.

    Examples:
        >>> attack = APGD(model, eps=[0.5, 1.0, 2.0], restarts=3)
        >>> x_05, x_10, x_20 = attack.generate(x[:100])
    """

    def __init__(self, model, eps, norm=2, objective="damage",
                 iterations=100, restarts=1, seed=0, batch_size=128,
                 defense=None, eot_samples=1):
        self.adapter = latent.LatentModel.of(model)
        self.eps_list, self._scalar_eps = checks.budgets(eps)
        self.eps = eps
        self.norm = checks.norm(norm)
        self.objective = checks.choice("objective", objective, OBJECTIVES)
        if objective == "damage":
            self.adapter.require_decoder()
        self.iterations = checks.positive_int("iterations", iterations)
        self.restarts = checks.positive_int("restarts", restarts)
        self.seed = seed
        self.batch_size = checks.positive_int("batch_size", batch_size)
        self.eot_samples = checks.positive_int("eot_samples", eot_samples)
        if defense is not None and objective != "damage":
            raise ValueError(
                "Invalid value received for argument `defense`: only the "
                "damage is attacked through a defense. Received: "
                f"objective={objective!r}"
            )
        self.defense = defense

    @classmethod
    def from_settings(cls, model, eps, settings, objective):
        """One run with `make_attack`'s settings (an `AttackSettings`)."""
        return cls(
            model, eps, norm=settings.norm, objective=objective,
            iterations=settings.max_iter, seed=settings.seed,
            batch_size=settings.batch_size,
        )

    def generate(self, x, x_target=None):
        """The best point of all runs per image (by the objective)."""
        if x_target is not None:
            raise ValueError("APGD is untargeted: pass no `x_target`.")
        x = self._checked(x)
        runs = self.runs(x)
        scorer = scoring.Scorer(self.adapter, x, None, self.batch_size)
        out = []
        for e in range(len(self.eps_list)):
            values = np.stack([
                scorer.score(run[e])[
                    "damage" if self.objective == "damage" else "latent_kl"
                ] for run in runs
            ])
            pick = values.argmax(axis=0)
            out.append(np.stack(
                [runs[r][e][i] for i, r in enumerate(pick)]
            ) if len(x) else x.copy())
        return out[0] if self._scalar_eps else out

    def _checked(self, x):
        x = np.asarray(backend.as_numpy(x), "float32")
        checks.finite_array(x, "x")
        checks.pixel_range(x, "x", 0.0, 1.0)
        return np.asarray(backend.as_numpy(self.adapter.check_inputs(x)))

    def runs(self, x):
        """Every run's images: a list over runs of lists over budgets."""
        x = np.asarray(x, "float32")
        tiles, eps = apgd.tiled(x, self.eps_list)
        z_mean, z_log_var = scoring.encode_numpy(
            self.adapter, tiles, self.batch_size
        )
        out = []
        for r, kind in enumerate(start_kinds(self.restarts)):
            rng = np.random.default_rng([self.seed, r])
            start = self._start(kind, r, x, tiles, eps, rng)
            out.append(apgd.untiled(
                self._attack(tiles, start, eps, (z_mean, z_log_var), r),
                len(self.eps_list),
            ))
        return out

    def _start(self, kind, r, x, tiles, eps, rng):
        if kind == "clean":
            return random_start(tiles, eps, self.norm, rng, scale=1e-3)
        start = random_start(tiles, eps, self.norm, rng)
        if kind == "random":
            return start
        mean, log_var = scoring.encode_numpy(
            self.adapter, np.roll(x, r, axis=0), self.batch_size
        )
        target = [np.concatenate([a] * len(self.eps_list))
                  for a in (mean, log_var)]
        return apgd.run(
            self.adapter, tiles, random_start(
                tiles, eps, self.norm, rng, scale=1e-3
            ), eps, target, objective="approach",
            iterations=max(1, self.iterations // 4), norm=self.norm,
            batch_size=self.batch_size,
        )

    def _attack(self, tiles, start, eps, encoding, r):
        if self.defense is not None:
            return eot_run(
                self.adapter, self.defense, tiles, start, eps,
                iterations=self.iterations, samples=self.eot_samples,
                norm=self.norm, seed=self.seed + 7919 * (r + 1),
                batch_size=self.batch_size,
            )
        args = (tiles,) if self.objective == "damage" else encoding
        return apgd.run(
            self.adapter, tiles, start, eps, args,
            objective=self.objective, iterations=self.iterations,
            norm=self.norm, batch_size=self.batch_size,
        )


def _eot_loop(view, x, start, eps, noise, momenta, uniforms, *, defense,
              samples, **kw):
    """APGD on the defended damage; round i * samples + s of the draws
    feeds sample s of pass i, so every gradient sees fresh randomness."""
    def loss_at(i, x_adv):
        total = 0.0
        for s in range(samples):
            draws = tuple(
                keras.ops.take(t, i * samples + s, axis=1)
                for t in (noise, momenta, uniforms)
            )
            z, _ = defense.attack_encode(view, x_adv, draws)
            total = total + steps.damage(view.decode(z), x)
        return total / samples

    return apgd.apgd_loop(view, x, start, eps, loss_at, **kw)


def eot_run(adapter, defense, x, start, eps, *, iterations, samples, norm,
            seed, batch_size, clip_min=0.0, clip_max=1.0):
    """`apgd.run` on the damage through `defense`, EOT over `samples`
    draws per gradient (numpy in, numpy out)."""
    fn = adapter.function(
        functools.partial(
            _eot_loop, defense=defense, samples=samples,
            iterations=iterations, norm=norm, clip_min=clip_min,
            clip_max=clip_max,
        ),
        ("apgd_eot", defense.attack_key(), samples, iterations, norm,
         clip_min, clip_max),
    )
    generator = keras.random.SeedGenerator(seed)
    eps = np.asarray(eps, "float32")
    parts = []
    for i in range(0, len(x), batch_size):
        part = slice(i, i + batch_size)
        z_mean, _ = adapter.encode(x[part])
        draws = defense.attack_draws(
            len(x[part]), keras.ops.shape(z_mean)[1],
            (iterations + 1) * samples, generator,
        )
        parts.append(backend.as_numpy(
            fn(x[part], start[part], eps[part], *draws)
        ))
    return np.concatenate(parts).reshape(x.shape)
