"""The evaluation protocol: the strongest attacks, per image, with checks.

`evaluate_robustness` is the one measurement every study, app and
documented number uses. It follows AutoAttack (Croce & Hein 2020: a
parameter-free ensemble of diverse attacks, each image scored by its
worst), Carlini et al. (2019), "On evaluating adversarial robustness",
and Tramer et al. (2020), "On adaptive attacks to adversarial example
defenses":

- an ensemble of attacks, each image scored by the worst of them at each
  budget (not the largest of the attacks' means), every budget of the
  curve attacked in one batch;
- the damage itself attacked by Auto-PGD (step schedule, momentum, runs
  from next to x, random points and latent warm starts), beside APGD on
  the latent KL, the metric's eigen attacks, random directions and a
  score-based black-box attack (Square, Andriushchenko et al. 2020);
- adaptive through a defense: with `defense=`, the damage APGD
  differentiates through the defended reconstruction, averaging over the
  defense's randomness (expectation over transformation, Athalye et al.
  2018), when the defense offers `attack_encode` (as
  `vaekeras.purification.MCMCReconstruction` does); a defense that offers
  only `reconstruct` is attacked through the bare model's gradient (a
  differentiable surrogate whose images transfer) and by the black-box
  attack, which queries the defense itself;
- checks that turn a weak or masked evaluation into one marked
  `reliable: False` (`vaekeras.attacks.sanity`).

The members are registered attacks (`vaekeras.attacks.registry`); the
default ones (`ENSEMBLE`) are those registered with `ensemble=True`:
`apgd_damage`, `apgd_kl`, `eigen_fisher`, `eigen_output`, `random` and
`square`. Any registered attack, a user's too, can be added by name; its
images are projected onto the budget and the box and scored like the
others. Every member's adversarial images are scored through the
defense when one is given.
"""

import dataclasses
import time

import numpy as np

from vaekeras import backend
from vaekeras import checks
from vaekeras import latent
from vaekeras.attacks import damage as damage_module
from vaekeras.attacks import registry
from vaekeras.attacks import sanity
from vaekeras.attacks import scoring

# The default members: every registered attack whose spec says
# `ensemble=True`. A user's attack joins one evaluation by name:
# `attacks=ENSEMBLE + ("my_attack",)`.
ENSEMBLE = registry.ensemble_names()
# Extra rounds of the adaptive attack, each with twice the iterations,
# while its convergence check fails.
ADAPTIVE_ROUNDS = 2


def evaluate_robustness(
    model, x, eps, norm=2, defense=None, seed=0, attacks=ENSEMBLE,
    pgd_iter=100, restarts=3, eot_samples=2, spsa_iter=20, spsa_samples=16,
    batch_size=512, sanity_checks=True, tolerance=0.05, square_queries=1000,
    score_draws=8, surrogate=None,
):
    """Per-image worst-case damage over an ensemble of attacks, checked.

    Damage is the reconstruction's per-pixel MSE against the clean image,
    minus the clean reconstruction's (both through `defense` when given).

    Args:
        model: a vaekeras VAE or anything `vaekeras.latent.LatentModel`
            accepts that has a decoder.
        x: clean images `(B, H, W, C)` in [0, 1].
        eps: a budget > 0 or a strictly increasing list of them.
        norm: 2 or np.inf.
        defense: None, or a test-time defense with `reconstruct(x)`
            (e.g. `MCMCReconstruction`); with `attack_encode` and
            `attack_draws` the damage PGD goes through it (EOT).
        seed: seeds every random start, direction and draw.
        attacks: the members to run: registered attack names (default
            `ENSEMBLE`); untargeted attacks only.
        pgd_iter: iterations of each (A)PGD run.
        restarts: runs of the damage attack, >= 1: the first from next
            to the clean image, then random points of the ball and
            latent warm starts in turn (`apgd_attack.start_kinds`).
        eot_samples: defense draws averaged per gradient (adaptive PGD).
        spsa_iter, spsa_samples: iterations and perturbation pairs per
            iteration of `spsa` (when it is a member).
        square_queries: damage queries per image and budget of the
            Square attack.
        score_draws: through a randomized defense (one with
            `attack_draws`, or `stochastic = True`), each image's damage,
            the clean error too, is the mean over this many fresh
            reconstructions.
        surrogate: None, or a differentiable stand-in for `model` (one
            computing nearly the same function with honest gradients,
            e.g. without a rounding layer): the `transfer` member runs
            Auto-PGD on it and its images join the worst case, scored on
            `model`.
        batch_size: images per compiled call.
        sanity_checks: run the checks (they cost about two PGD runs of
            twice the iterations at every budget, one at the whole box and
            a few gradients); without them the result is not
            `reliable`.
        tolerance: relative slack of the convergence and gradient-free
            checks.

    Returns:
        Dict: `eps` (list), `norm`, `worst_damage` `(len(eps), B)` (each
        image's largest damage over every member and restart),
        `mean_worst_damage` (list), `area` (the mean worst damage's area
        over log eps, `vaekeras.curves`' definition), `clean_mse` `(B,)`,
        `attacks` (per member: `damage` and `latent_kl`, the means at
        each eps, and `worst_share`, the fraction of images it was the
        worst for), `checks` (a list of `{"name", "passed", "detail",
        "seconds"}`) and `settings`; `reliable` (True when every check
        passed: only then is the damage more than a lower bound of
        unknown quality) and `reliability`, the reason; `seconds`, the
        wall time of each member and of `"checks"` (with the adaptive
        attack's extra rounds): where an evaluation's time goes.

    Raises:
        ValueError: for a bad budget, norm, attack name or image batch, or
            a model without a decoder.

    Examples:
        >>> result = evaluate_robustness(model, x[:100], [0.5, 1.0, 2.0])
        >>> result["mean_worst_damage"], result["checks"]
    """
    eps_list = list(checks.grid(
        [eps] if np.isscalar(eps) else eps, "eps"
    ))
    norm = checks.norm(norm)
    members = _check_members(attacks)
    if surrogate is not None and "transfer" not in members:
        members += ("transfer",)
    restarts = checks.positive_int("restarts", restarts)
    pgd_iter = checks.positive_int("pgd_iter", pgd_iter)
    eot_samples = checks.positive_int("eot_samples", eot_samples)
    spsa_iter = checks.positive_int("spsa_iter", spsa_iter)
    spsa_samples = checks.positive_int("spsa_samples", spsa_samples)
    square_queries = checks.positive_int("square_queries", square_queries)
    score_draws = checks.positive_int("score_draws", score_draws)
    tolerance = checks.non_negative("tolerance", tolerance)
    adapter = latent.LatentModel.of(model)
    adapter.require_decoder()
    x = np.asarray(backend.as_numpy(
        adapter.check_inputs(np.asarray(backend.as_numpy(x), "float32"))
    ), "float32")
    if defense is not None and not hasattr(defense, "reconstruct"):
        raise ValueError(
            "Invalid value received for argument `defense`: expected an "
            "object with `reconstruct(x)`. Received: "
            f"defense={type(defense).__name__}"
        )
    scorer = scoring.Scorer(adapter, x, defense, batch_size, score_draws)
    runner = Runner(
        model, adapter, defense, norm, seed, pgd_iter, restarts,
        eot_samples, spsa_iter, spsa_samples, batch_size, scorer,
        square_queries, surrogate,
    )

    per_member, seconds = {}, {}
    for name in members:
        start = time.perf_counter()
        per_member[name] = _scored_runs(runner, name, x, eps_list)
        seconds[name] = time.perf_counter() - start
    result = {
        "eps": eps_list,
        "norm": checks.norm_name(norm),
        **_aggregate(per_member, eps_list, scorer),
        "checks": [],
        "settings": {
            "attacks": list(members), "pgd_iter": pgd_iter,
            "restarts": restarts, "eot_samples": eot_samples,
            "spsa_iter": spsa_iter, "spsa_samples": spsa_samples,
            "square_queries": square_queries,
            "score_draws": scorer.draws, "seed": seed,
            "tolerance": tolerance,
            "defense": None if defense is None else type(defense).__name__,
            "adaptive": runner.adaptive,
            "surrogate": surrogate is not None,
        },
        "reliable": False,
        "reliability": "not checked (sanity_checks=False)",
        "seconds": seconds,
    }
    if sanity_checks:
        start = time.perf_counter()
        _check_until_converged(result, per_member, runner, x)
        seconds["checks"] = time.perf_counter() - start
    return result


def _scored_runs(runner, name, x, eps_list, **settings):
    """The member's runs, each a list over eps of per-image scores."""
    return [
        [runner.scorer.score(x_adv) for x_adv in run]
        for run in runner.run(name, x, eps_list, **settings)
    ]


def _aggregate(per_member, eps_list, scorer):
    """The result's per-image worst case and the members' summaries."""
    worst, owner = _worst(per_member, len(eps_list), len(scorer.x))
    mean_worst = [float(v) for v in worst.mean(axis=1)]
    return {
        "worst_damage": worst,
        "mean_worst_damage": mean_worst,
        "area": damage_module.log_eps_area(eps_list, mean_worst),
        "clean_mse": scorer.clean_mse,
        "attacks": _summaries(per_member, owner),
    }


def _check_until_converged(result, per_member, runner, x):
    """Runs the checks. Through a randomized defense the attack on the
    damage runs again with twice the iterations, joining the worst case,
    until the convergence check passes (at most `ADAPTIVE_ROUNDS` more
    times): EOT through a chain converges slowly, and a verdict must not
    rest on an attack stopped early. A round reruns only the checks of
    the result; those of the model's gradients stand."""
    found = ()
    for round_ in range(ADAPTIVE_ROUNDS + 1):
        found = sanity.run_checks(
            result, runner, runner.scorer, x, previous=found
        )
        converged = all(c["passed"] for c in found if c["name"] == "converged")
        if converged or not runner.adaptive or round_ == ADAPTIVE_ROUNDS:
            break
        runner = dataclasses.replace(runner, pgd_iter=2 * runner.pgd_iter)
        for name in registry.with_role("damage", list(per_member)):
            per_member[name] += _scored_runs(
                runner, name, x, result["eps"], seed=runner.seed + round_ + 1
            )
        result.update(_aggregate(per_member, result["eps"], runner.scorer))
    result["checks"] = found
    result["settings"]["adaptive_rounds"] = round_
    result["reliable"], result["reliability"] = sanity.reliability(found)


def _check_members(attacks):
    """`attacks` as a tuple of registered, untargeted attack names."""
    members = (attacks,) if isinstance(attacks, str) else tuple(attacks)
    if not members:
        raise ValueError(
            "Invalid value received for argument `attacks`: expected at "
            f"least one of {registry.names()}. Received: attacks={attacks!r}"
        )
    for name in members:
        if registry.get(name, "attacks").needs_target:
            raise ValueError(
                "Invalid value received for argument `attacks`: the "
                f"protocol runs untargeted attacks; {name!r} needs target "
                f"images. Received: attacks={attacks!r}"
            )
    return members


@dataclasses.dataclass(frozen=True)
class Runner:
    """Makes each member's adversarial images; one object per evaluation,
    so the checks rerun members with the same settings. It is the
    `context` an `AttackSpec.runs` receives."""

    model: object
    adapter: object
    defense: object
    norm: float
    seed: int
    pgd_iter: int
    restarts: int
    eot_samples: int
    spsa_iter: int
    spsa_samples: int
    batch_size: int
    scorer: object
    square_queries: int = 1000
    surrogate: object = None

    @property
    def adaptive(self):
        """Whether gradient attacks go through the defense (EOT)."""
        return self.defense is not None and hasattr(
            self.defense, "attack_encode"
        )

    def run(self, name, x, eps_list, pgd_iter=None, restarts=None, seed=None):
        """The member's adversarial images: a list over runs (restarts)
        of lists over eps."""
        context = dataclasses.replace(
            self, pgd_iter=pgd_iter or self.pgd_iter,
            restarts=restarts or self.restarts,
        )
        spec = registry.get(name, "attacks")
        seed = (self.seed if seed is None else seed) + spec.seed_stream
        if spec.runs is not None:
            return spec.runs(context, x, eps_list, seed)
        settings = registry.AttackSettings(
            norm=self.norm, seed=seed, max_iter=context.pgd_iter,
            batch_size=self.batch_size,
        )
        return [spec.make(self.model, eps_list, settings).generate(x)]


def _worst(per_member, n_eps, n_images):
    """Per-image maxima over every member and run, and which member."""
    worst = np.full((n_eps, n_images), -np.inf)
    owner = np.empty((n_eps, n_images), dtype=object)
    for name, runs in per_member.items():
        for run in runs:
            for e in range(n_eps):
                better = run[e]["damage"] > worst[e]
                worst[e] = np.where(better, run[e]["damage"], worst[e])
                owner[e][better] = name
    return worst, owner


def _summaries(per_member, owner):
    out = {}
    for name, runs in per_member.items():
        n_eps = len(runs[0])
        best = [
            np.max([run[e]["damage"] for run in runs], axis=0)
            for e in range(n_eps)
        ]
        kl = [
            np.max([run[e]["latent_kl"] for run in runs], axis=0)
            for e in range(n_eps)
        ]
        out[name] = {
            "damage": [float(np.mean(v)) for v in best],
            "latent_kl": [float(np.mean(v)) for v in kl],
            "worst_share": [float(np.mean(owner[e] == name))
                            for e in range(n_eps)],
        }
    return out
