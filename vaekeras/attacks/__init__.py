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

Modules: `budget` (balls, box, projection), `steps` (the compiled
steps), `methods` (the classes, `make_attack`), `damage`
(`evaluate_attack`, `damage_curve`), `adaptive` (PGD through a defense,
SPSA), `sanity` (the protocol's checks), `protocol`
(`evaluate_robustness`).
"""

from vaekeras.attacks.budget import NORMS
from vaekeras.attacks.budget import check_eps
from vaekeras.attacks.budget import check_norm
from vaekeras.attacks.budget import fit_to_budget
from vaekeras.attacks.budget import gaussian_kl
from vaekeras.attacks.budget import gaussian_w2
from vaekeras.attacks.budget import symmetric_kl
from vaekeras.attacks.damage import damage_curve
from vaekeras.attacks.damage import evaluate_attack
from vaekeras.attacks.damage import log_eps_area
from vaekeras.attacks.damage import ssim
from vaekeras.attacks.methods import ATTACK_NAMES
from vaekeras.attacks.methods import NAMED_EIGEN_ATTACKS
from vaekeras.attacks.methods import EigenAttack
from vaekeras.attacks.methods import LatentPGD
from vaekeras.attacks.methods import RandomAttack
from vaekeras.attacks.methods import TargetedLatentAttack
from vaekeras.attacks.methods import make_attack
from vaekeras.attacks.protocol import ENSEMBLE
from vaekeras.attacks.protocol import evaluate_robustness
from vaekeras.attacks.steps import OBJECTIVES
from vaekeras.attacks.steps import worst_case_inputs

__all__ = [
    "ATTACK_NAMES", "ENSEMBLE", "EigenAttack", "LatentPGD",
    "NAMED_EIGEN_ATTACKS", "NORMS", "OBJECTIVES", "RandomAttack",
    "TargetedLatentAttack",
    "check_eps", "check_norm", "damage_curve", "evaluate_attack",
    "evaluate_robustness", "fit_to_budget", "gaussian_kl", "gaussian_w2",
    "log_eps_area",
    "make_attack", "ssim", "symmetric_kl",
    "worst_case_inputs",
]
