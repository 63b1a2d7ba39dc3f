"""A user's attack function as an attack object, its budget enforced.

`vaekeras.attacks.register` wraps each registered function with
`maker`, so it is built, batched and scored like a built-in attack.
"""

import functools

import numpy as np
from keras import ops

from vaekeras import backend
from vaekeras import checks
from vaekeras.attacks import budget


class FunctionAttack:
    """`fn(model, x, eps, *, norm, seed)` behind `generate(x)`.

    Whatever `fn` returns is projected onto the eps-ball of `norm` around
    `x` and the pixel box [0, 1] (`budget.fit_to_budget`), so a user's
    attack never exceeds its budget.

    Args:
        fn: the registered function.
        model: what `fn` attacks (passed through unchanged).
        eps: a budget or a list of budgets.
        norm: 2 or np.inf.
        seed: the seed passed to `fn` (the run's seed plus the attack's
            stream).
    """

    def __init__(self, fn, model, eps, norm, seed):
        self.fn = fn
        self.model = model
        self.eps_list, self._scalar_eps = checks.budgets(eps)
        self.eps = eps
        self.norm = checks.norm(norm)
        self.seed = seed

    def generate(self, x, x_target=None):
        """Adversarial images for `x` (one array per eps for a list).

        Raises:
            ValueError: for target images (a function attack is
                untargeted) or a result of another shape than `x`.
        """
        if x_target is not None:
            raise ValueError(
                f"The attack {self.fn.__name__} is untargeted: pass no "
                "`x_target`."
            )
        x = np.asarray(backend.as_numpy(x), "float32")
        results = [self._one(x, eps) for eps in self.eps_list]
        return results[0] if self._scalar_eps else results

    def _one(self, x, eps):
        x_adv = np.asarray(backend.as_numpy(self.fn(
            self.model, x, eps, norm=self.norm, seed=self.seed
        )), "float32")
        if x_adv.shape != x.shape:
            raise ValueError(
                f"The attack {self.fn.__name__} returned images of shape "
                f"{x_adv.shape}; expected the shape of x, {x.shape}."
            )
        x_adv = np.nan_to_num(x_adv, nan=0.0, posinf=1.0, neginf=0.0)
        delta = budget.fit_to_budget(
            ops.convert_to_tensor(x), ops.convert_to_tensor(x_adv - x),
            ops.convert_to_tensor(eps, "float32"), self.norm, 0.0, 1.0,
        )
        return x + np.asarray(backend.as_numpy(delta), "float32")


def maker(fn):
    """`make(model, eps, settings)` for an `AttackSpec` of `fn`."""
    def make(model, eps, settings):
        return FunctionAttack(fn, model, eps, settings.norm, settings.seed)

    return functools.wraps(fn)(make)
