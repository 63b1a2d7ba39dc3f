"""Latent-space attacks on VAE encoders and the damage they do.

The model may be anything `vaekeras.latent.LatentModel` accepts: a vaekeras
`VAE`, a Keras encoder (`x -> [z_mean, z_log_var]`), a SavedModel loaded
with `tf.saved_model.load`, or a callable.

- `LatentPGD`: projected gradient ascent on the latent divergence from the
  clean encoding (`"kl"`: KL(q(z|x+delta) || q(z|x)); `"mean"`:
  ||mu(x+delta) - mu(x)||^2; `"reconstruction"`), L2 or Linf ball.
- `EigenAttack`: one step (or `iterations` sub-steps) along an eigenvector
  of the pullback metric, the paper's attack.
- `RandomAttack`: a random direction of the same norm, the baseline.
- `TargetedLatentAttack`: moves q(z|x+delta) towards q(z|x_target) by
  minimising their symmetric KL plus `reg * ||delta||_2` (Kuzina et al.).

L2 perturbations are projected exactly onto the intersection of the
eps-ball and the pixel box (`fit_to_budget`); the eigen and random attacks
also stretch their direction until the clipped perturbation uses the whole
budget, so that no attack is weakened by the box.

`evaluate_robustness` is the evaluation protocol: the per-image worst
case over an ensemble of these and of damage PGD with restarts, SPSA and,
through a test-time defense, adaptive PGD with EOT; with sanity checks.

Every attack is registered by name (`registry`; built-ins in `members/`,
one file each; a user's with `register`), and `make_attack`, the
protocol's members and the apps' choices come from that registry.

Modules: `registry` (`register`, `make_attack`), `members` (the built-in
attacks), `budget` (balls, box, projection), `steps` (the compiled
steps), `methods` (the classes), `function_attack` (a user's function
as an attack), `damage` (`evaluate_attack`, `damage_curve`), `adaptive`
(PGD through a defense, SPSA), `scoring` (damage and latent KL),
`sanity` (the protocol's checks), `protocol` (`evaluate_robustness`).

Names are imported on first use: importing this package imports no
backend.
"""

from vaekeras import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "NORMS": "budget", "check_eps": "budget", "check_norm": "budget",
    "fit_to_budget": "budget", "gaussian_kl": "budget",
    "gaussian_w2": "budget", "symmetric_kl": "budget",
    "damage_curve": "damage", "evaluate_attack": "damage",
    "log_eps_area": "damage", "ssim": "damage",
    "EigenAttack": "methods", "LatentPGD": "methods",
    "RandomAttack": "methods", "TargetedLatentAttack": "methods",
    "AttackSettings": "registry", "AttackSpec": "registry",
    "make_attack": "registry", "names": "registry",
    "register": "registry",
    "ENSEMBLE": "protocol", "evaluate_robustness": "protocol",
    "OBJECTIVES": "steps", "worst_case_inputs": "steps",
}, submodules=(
    "adaptive", "budget", "damage", "function_attack", "members",
    "methods", "protocol", "registry", "sanity", "scoring", "steps",
))
