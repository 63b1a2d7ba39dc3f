"""`square`: the Square Attack, random search from queries alone.

Andriushchenko et al. (2020) (`vaekeras.attacks.square`), L2 or Linf by
the evaluation's norm. It queries the (defended) reconstruction only, so
a model or defense that hides or shatters its gradient cannot hide from
it: the protocol's masking checks compare it with the gradient attacks
at every budget.
"""

import numpy as np

from vaekeras import checks
from vaekeras import latent
from vaekeras.attacks import apgd
from vaekeras.attacks import registry
from vaekeras.attacks import scoring
from vaekeras.attacks import square

# Damage queries per image and budget.
QUERIES = 1000


class SquareAttack:
    """The Square Attack on the bare model's damage, for `make_attack`.

    Args:
        model: a model with a decoder (`vaekeras.latent.LatentModel`).
        eps: a budget or a list of them.
        norm: 2 or np.inf.
        queries: damage queries per image and budget.
        seed: seeds every random choice.
        batch_size: images per forward pass.
        defense: None or a test-time defense with `reconstruct(x)`.
    """

    def __init__(self, model, eps, norm=2, queries=QUERIES, seed=0,
                 batch_size=128, defense=None):
        self.adapter = latent.LatentModel.of(model)
        self.adapter.require_decoder()
        self.eps_list, self._scalar_eps = checks.budgets(eps)
        self.eps = eps
        self.norm = checks.norm(norm)
        self.queries = checks.positive_int("queries", queries)
        self.seed = seed
        self.batch_size = checks.positive_int("batch_size", batch_size)
        self.defense = defense

    def generate(self, x, x_target=None):
        if x_target is not None:
            raise ValueError("Square is untargeted: pass no `x_target`.")
        x = np.asarray(x, "float32")
        checks.finite_array(x, "x")
        checks.pixel_range(x, "x", 0.0, 1.0)
        out = self.run(x)
        return out[0] if self._scalar_eps else out

    def run(self, x):
        """One array per budget, all budgets attacked in one batch."""
        tiles, eps = apgd.tiled(x, self.eps_list)
        scorer = scoring.Scorer(
            self.adapter, tiles, self.defense, self.batch_size
        )
        x_adv = square.square_attack(
            scorer.damage, tiles, eps, self.norm, queries=self.queries,
            seed=self.seed,
        )
        return apgd.untiled(x_adv, len(self.eps_list))


def make(model, eps, settings):
    return SquareAttack(
        model, eps, norm=settings.norm, seed=settings.seed,
        batch_size=settings.batch_size,
    )


def runs(context, x, eps_list, seed):
    """One run through the protocol's defense."""
    return [SquareAttack(
        context.model, eps_list, norm=context.norm,
        queries=context.square_queries, seed=seed,
        batch_size=context.batch_size, defense=context.defense,
    ).run(x)]


SPEC = registry.add(registry.AttackSpec(
    "square", make=make, runs=runs, family="black-box",
    role="gradient_free", ensemble=True, needs_gradients=False,
    marker="D",
    help="Square Attack: random search on the damage from queries.",
), __name__)
