"""`targeted`: moves q(z|x) towards q(z|x_target) (Kuzina et al.)."""

from vaekeras.attacks import methods
from vaekeras.attacks import registry


def make(model, eps, settings):
    return methods.TargetedLatentAttack(
        model, eps=eps, norm=settings.norm, max_iter=settings.max_iter,
        seed=settings.seed, batch_size=settings.batch_size,
    )


SPEC = registry.add(registry.AttackSpec(
    "targeted", make=make, family="targeted", needs_target=True,
    marker="*",
    help="PGD towards the posterior of a target image (symmetric KL).",
), __name__)
