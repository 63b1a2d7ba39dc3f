"""`transfer`: Auto-PGD on a differentiable surrogate, its images scored
on the model.

Where the model's own gradient is not to be trusted (a layer without a
useful gradient, a gradient the finite-difference check rejects), the
attack follows a stand-in that computes nearly the same function with
honest gradients (e.g. the model without its rounding layer), and the
images transfer (Athalye et al. 2018, BPDA; Carlini et al. 2019, 4.4).
`evaluate_robustness(..., surrogate=...)` adds it to the ensemble.
`make_attack("transfer", surrogate, ...)` builds the attack on the
surrogate; its images are then scored on any model.
"""

from vaekeras.attacks import apgd_attack
from vaekeras.attacks import registry


def make(model, eps, settings):
    return apgd_attack.APGD.from_settings(model, eps, settings, "damage")


def runs(context, x, eps_list, seed):
    """`context.restarts` runs on `context.surrogate`."""
    if context.surrogate is None:
        raise ValueError(
            "Invalid value received for argument `attacks`: `transfer` "
            "attacks a surrogate; pass evaluate_robustness(..., "
            "surrogate=<a differentiable stand-in>). Received: "
            "surrogate=None"
        )
    return apgd_attack.APGD(
        context.surrogate, eps_list, norm=context.norm, objective="damage",
        iterations=context.pgd_iter, restarts=context.restarts, seed=seed,
        batch_size=context.batch_size,
    ).runs(x)


SPEC = registry.add(registry.AttackSpec(
    "transfer", make=make, runs=runs, family="transfer", marker="<",
    help="Auto-PGD on a differentiable surrogate, scored on the model.",
), __name__)
