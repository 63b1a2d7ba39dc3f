"""`pgd_damage`: projected gradient ascent on the reconstruction damage.

Through a test-time defense that offers `attack_encode` the gradient
goes through the defense's own computation, averaged over its
randomness (EOT); the protocol's convergence checks rerun this attack.
"""

from vaekeras.attacks import adaptive
from vaekeras.attacks import methods
from vaekeras.attacks import registry


def make(model, eps, settings):
    return methods.LatentPGD(
        model, norm=settings.norm, eps=eps, max_iter=settings.max_iter,
        objective="damage", seed=settings.seed,
        batch_size=settings.batch_size,
    )


def _run(context, x, eps_list, restart, seed):
    if context.adaptive:
        return adaptive.adaptive_damage_pgd(
            context.adapter, context.defense, x, eps_list, context.norm,
            context.pgd_iter, context.eot_samples, restart > 0, seed,
            context.batch_size,
        )
    return methods.LatentPGD(
        context.model, norm=context.norm, eps=eps_list,
        max_iter=context.pgd_iter, objective="damage",
        random_init=restart > 0, seed=seed, batch_size=context.batch_size,
    ).generate(x)


def runs(context, x, eps_list, seed):
    """The first run from next to x, the others from random points."""
    return [
        _run(context, x, eps_list, restart, seed + restart)
        for restart in range(context.restarts)
    ]


SPEC = registry.add(registry.AttackSpec(
    "pgd_damage", make=make, runs=runs, family="pgd", role="damage",
    marker="s",
    help="PGD on the reconstruction error itself (through a defense).",
), __name__)
