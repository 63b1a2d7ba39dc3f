"""The attack registry: every attack by name, and what derives from it.

Each built-in attack is one file of `vaekeras/attacks/members/`, named as
it registers itself. A user's attack is a function registered from the
user's own module:

    @vaekeras.attacks.register("my_shift")
    def my_shift(model, x, eps, *, norm, seed):
        return x_adv  # numpy, the shape of x

`make_attack`, the protocol's members (`ensemble_names`) and checks, the
attack app's choices and the contract tests read this registry; no list
of attack names is kept anywhere else.

Pure Python: the names are read without importing a backend.
"""

import dataclasses
import typing

from vaekeras import registry as registry_module

ATTACKS = registry_module.Registry("attack", "vaekeras.attacks.members")
# What an attack does for the protocol's checks (`vaekeras.attacks.sanity`).
ROLES = (
    "member",  # scored in the per-image worst case, nothing more
    "damage",  # attacks the damage itself; the convergence checks rerun it
    "baseline",  # random directions: every gradient attack must beat it
    "gradient_free",  # queries only: must not beat the gradient attacks
)


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """The settings every attack is built with (`make_attack`'s).

    Attributes:
        norm: 2 or np.inf.
        seed: the run's seed; an attack adds its `seed_stream`.
        kind: metric kind of the eigen attack.
        max_iter: iterations of iterative attacks.
        batch_size: images per compiled call.
    """

    norm: float = 2
    seed: int = 0
    kind: str = "stochastic"
    max_iter: int = 50
    batch_size: int = 128


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One registered attack.

    Attributes:
        name: its name in results, flags and reports.
        make: `(model, eps, settings) -> attack`: an object whose
            `generate(x, x_target=None)` returns adversarial images (one
            array per eps for a list of budgets).
        runs: the protocol's use of it, `(context, x, eps_list, seed) ->
            runs`, a list (restarts) of lists (budgets) of images; None
            runs `make(...)` once. `context` is the protocol's
            `vaekeras.attacks.protocol.Runner`.
        family: its group in reports (`"pgd"`, `"eigen"`, `"random"`,
            `"black-box"`, `"user"`).
        role: one of `ROLES`.
        ensemble: whether `evaluate_robustness` runs it by default.
        needs_gradients: whether it follows the model's gradient (the
            gradient-masking checks compare such attacks with the others).
        needs_target: whether `generate` takes target images.
        seed_stream: added to the run's seed, so no two attacks share a
            random stream.
        marker: its matplotlib marker in figures.
        help: one line for `--help` and the docs.
    """

    name: str
    make: typing.Callable
    runs: typing.Callable | None = None
    family: str = "user"
    role: str = "member"
    ensemble: bool = False
    needs_gradients: bool = True
    needs_target: bool = False
    seed_stream: int = 0
    marker: str = "o"
    help: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(
                f"Invalid value received for argument `role`: expected one "
                f"of {ROLES}. Received: role={self.role!r}"
            )


def add(spec, origin):
    """Registers a built `AttackSpec` (the built-in members' way in)."""
    ATTACKS.add(spec.name, spec, origin)
    return spec


def register(
    name, *, family="user", role="member", needs_gradients=True,
    seed_stream=None, marker="X", help="",
):
    """Registers a function attack under `name` (a decorator).

    The function is called once per budget as `fn(model, x, eps, *,
    norm, seed)` with numpy images `x` `(B, H, W, C)` in [0, 1] and must
    return images of that shape. Whatever it returns is projected onto the
    budget's ball and the pixel box before it is scored, so an attack
    cannot exceed its budget. `evaluate_robustness(..., attacks=ENSEMBLE
    + (name,))` makes it a member of the per-image worst case, and
    `make_attack(name, ...)` and the attack app build it.

    Args:
        name: a Python identifier not registered yet.
        family, role, needs_gradients, marker, help: see `AttackSpec`.
        seed_stream: default: derived from the name.

    Returns:
        The decorator; it returns the function unchanged.

    Raises:
        ValueError: for a bad or taken name or an unknown role.

    Example:
        >>> @vaekeras.attacks.register("my_shift")
        ... def my_shift(model, x, eps, *, norm, seed):
        ...     return x + eps / np.sqrt(x[0].size)
    """
    def decorator(fn):
        from vaekeras.attacks import function_attack

        add(AttackSpec(
            name, make=function_attack.maker(fn), family=family, role=role,
            needs_gradients=needs_gradients,
            seed_stream=(
                registry_module.seed_stream(name) if seed_stream is None
                else seed_stream
            ),
            marker=marker, help=help or (fn.__doc__ or "").strip()[:80],
        ), registry_module.origin_of(fn))
        return fn

    return decorator


def names():
    """Every attack's name; imports nothing heavy."""
    return ATTACKS.names()


def get(name, argument="attack"):
    """The `AttackSpec` called `name` (a `ValueError` names `argument`)."""
    return ATTACKS.get(name, argument)


def specs():
    """`{name: AttackSpec}` of every registered attack."""
    return ATTACKS.entries()


def ensemble_names():
    """The protocol's default members, in registration order."""
    return tuple(n for n, s in specs().items() if s.ensemble)


def with_role(role, members):
    """The names among `members` whose spec has `role`."""
    return [n for n in members if get(n).role == role]


def gradient_members(members):
    """The names among `members` that follow the gradient."""
    return [n for n in members if get(n).needs_gradients]


def make_attack(
    name, model, eps, norm=2, kind="stochastic", max_iter=50, seed=0,
    batch_size=128,
):
    """Builds the registered attack called `name`.

    Args:
        name: a registered attack (`names()`): `"pgd_kl"`,
            `"pgd_damage"`, `"eigen"` (of metric `kind`), `"eigen_fisher"`,
            `"eigen_output"`, `"random"`, `"spsa"`, `"targeted"` or a
            user's.
        model: see the package docstring (unused by `"random"`).
        eps: budget or list of budgets.
        norm: 2 or np.inf.
        kind: metric kind of `"eigen"`.
        max_iter: iterations of iterative attacks.
        seed: the run's seed; the attack adds its own `seed_stream`.
        batch_size: images per batch.

    Returns:
        An attack object: `generate(x, x_target=None)` returns the
        adversarial images (one array per eps for a list of budgets).

    Raises:
        ValueError: for an unknown name or bad parameters.

    Example:
        >>> attack = make_attack("pgd_kl", model, eps=[0.5, 1.0])
        >>> x_adv_05, x_adv_10 = attack.generate(x_test[:100])
    """
    spec = get(name)
    settings = AttackSettings(
        norm=norm, seed=seed + spec.seed_stream, kind=kind,
        max_iter=max_iter, batch_size=batch_size,
    )
    return spec.make(model, eps, settings)
