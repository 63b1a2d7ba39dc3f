"""`spsa`: gradient-free ascent on the damage (Uesato et al. 2018).

It queries the (defended) reconstruction only, so a defense that hides
its gradient cannot hide from it.
"""

import numpy as np

from vaekeras import checks
from vaekeras import latent
from vaekeras.attacks import adaptive
from vaekeras.attacks import registry
from vaekeras.attacks import scoring

# Perturbation pairs per iteration when built by `make_attack`.
SAMPLES = 16


class SPSAAttack:
    """SPSA on the bare model's damage, for `make_attack`."""

    def __init__(self, model, eps, settings):
        self.adapter = latent.LatentModel.of(model)
        self.adapter.require_decoder()
        self.eps_list, self._scalar_eps = checks.budgets(eps)
        self.eps = eps
        self.settings = settings

    def generate(self, x, x_target=None):
        if x_target is not None:
            raise ValueError("SPSA is untargeted: pass no `x_target`.")
        x = np.asarray(x, "float32")
        scorer = scoring.Scorer(
            self.adapter, x, None, self.settings.batch_size
        )
        out = [
            adaptive.spsa(
                scorer, x, eps, self.settings.norm, self.settings.max_iter,
                SAMPLES, seed=self.settings.seed + 1000 * i,
            )
            for i, eps in enumerate(self.eps_list)
        ]
        return out[0] if self._scalar_eps else out


def runs(context, x, eps_list, seed):
    """One run through the protocol's scorer (so through its defense)."""
    return [[
        adaptive.spsa(
            context.scorer, x, eps, context.norm, context.spsa_iter,
            context.spsa_samples, seed=seed + 1000 * i,
        )
        for i, eps in enumerate(eps_list)
    ]]


SPEC = registry.add(registry.AttackSpec(
    "spsa", make=SPSAAttack, runs=runs, family="black-box",
    role="gradient_free", needs_gradients=False, marker="d",
    help="Gradient-free ascent on the damage from paired random probes.",
), __name__)
