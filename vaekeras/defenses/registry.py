"""The defense registry: every defense by name, and what derives from it.

A defense is a `vaekeras.VAE` subclass that declares its options once
(`options`, a tuple of `Option`) and adds a loss term (`extra_loss`).
Each built-in one is a file of `vaekeras/defenses/members/`, named as it
registers itself; a user's is registered from the user's own module:

    @vaekeras.defenses.register("smooth")
    class SmoothVAE(vaekeras.VAE):
        options = (vaekeras.defenses.Option(
            "smooth_weight", 0.1, "weight of a latent penalty.",
            vaekeras.checks.non_negative),)

        def extra_loss(self, x, encoding, training=False):
            return self.smooth_weight * ops.mean(ops.sum(
                ops.square(encoding.z_mean), axis=-1))

Its options then reach `build_defended_vae`, `.keras` saving, the train
app's flags, `flags.json`, the reports' legends and the contract tests
with no other edit.

Pure Python until a defense itself is needed: `names()` reads the
built-in files' names without importing a backend.
"""

import dataclasses

from vaekeras import checks
from vaekeras import registry as registry_module

DEFENSES = registry_module.Registry("defense", "vaekeras.defenses.members")


@dataclasses.dataclass(frozen=True)
class DefenseSpec:
    """One registered defense.

    Attributes:
        name: its name (`--defense`, `build_defended_vae`, reports).
        cls: the model class, a `vaekeras.VAE` subclass.
        label: its family's name in reports and legends.
        marker: its matplotlib marker in figures.
    """

    name: str
    cls: type
    label: str
    marker: str = "o"

    @property
    def options(self):
        """The class's `Option`s."""
        return tuple(self.cls.options)

    def defaults(self):
        """`{option name: default}`."""
        return {option.name: option.default for option in self.options}


def register(name, *, label=None, marker="o", seed_stream=None):
    """Registers a VAE subclass as the defense `name` (a class decorator).

    Also registers the class with Keras (package `"vaekeras"`), so a
    model of it survives a `.keras` save and load, and gives it its own
    random stream (`seed_stream`, added to the model's seed by
    `VAE.stream_seed`) unless it declares one.

    Args:
        name: a Python identifier not registered yet.
        label: its name in reports; default `name`.
        marker: its matplotlib marker.
        seed_stream: default: the class's own `seed_stream`, else one
            derived from the name.

    Returns:
        The decorator; it returns the class.

    Raises:
        ValueError: for a bad or taken name, a class that is not a VAE,
            or an option name another defense declares.
    """
    def decorator(cls):
        import keras

        from vaekeras.models import VAE

        if not (isinstance(cls, type) and issubclass(cls, VAE)):
            raise ValueError(
                f"A defense is a subclass of vaekeras.VAE. Received: {cls!r}"
            )
        if seed_stream is not None:
            cls.seed_stream = seed_stream
        elif "seed_stream" not in vars(cls) and cls is not VAE:
            cls.seed_stream = registry_module.seed_stream(name)
        _check_option_names(name, cls)
        keras.saving.register_keras_serializable(package="vaekeras")(cls)
        DEFENSES.add(
            name, DefenseSpec(name, cls, label or name, marker),
            registry_module.origin_of(cls),
        )
        return cls

    return decorator


def _check_option_names(name, cls):
    """Option names are flags and config fields: unique across defenses."""
    for other, spec in DEFENSES.registered().items():
        if other == name:
            continue
        shared = {o.name for o in spec.options} & {
            o.name for o in cls.options
        }
        if shared:
            raise ValueError(
                f"The defense {name!r} declares option(s) {sorted(shared)} "
                f"that {other!r} declares too: option names must be unique "
                "(each is a flag and a config field)."
            )


def names():
    """Every defense's name; imports nothing heavy."""
    return DEFENSES.names()


def get(name, argument="defense"):
    """The `DefenseSpec` called `name` (a `ValueError` names `argument`)."""
    return DEFENSES.get(name, argument)


def specs():
    """`{name: DefenseSpec}` of every registered defense."""
    return DEFENSES.entries()


def styles():
    """`{label: (marker, colour)}` of every defense, for figures.

    The marker is the registered one; colours follow registration order.
    """
    return {
        spec.label: (spec.marker, f"C{i % 10}")
        for i, spec in enumerate(specs().values())
    }


def load_builtins():
    """Imports every built-in defense (registers their Keras classes)."""
    DEFENSES.load()


# What a built-in defense's file may import for its `OPTIONS` to be read
# without a backend (`Registry.declaration`).
LIGHT_MODULES = (
    "math", "vaekeras.checks", "vaekeras.choices", "vaekeras.defenses.options",
)


def declared_options(name):
    """The `Option`s of the defense `name`; a built-in one is not imported.

    A registered class's own `options`; a built-in defense not imported
    yet is read from its file's `OPTIONS` (no backend loads).
    """
    registered = DEFENSES.registered()
    if name in registered:
        return registered[name].options
    try:
        return tuple(DEFENSES.declaration(name, "OPTIONS", LIGHT_MODULES))
    except LookupError:
        return ()


def options():
    """`{option name: (defense, Option)}` over every defense.

    Imports no backend (`declared_options`), so the apps define a flag per
    option before TensorFlow loads.
    """
    return {
        option.name: (name, option)
        for name in names() for option in declared_options(name)
    }


def resolve(defense, given_options):
    """`(defense, its options checked, defaults filled in)`.

    Options set to None are left at their defaults. `mixup_alpha` > 0
    with `defense="none"` means mixup (the train app's `--mixup_alpha`),
    and `mixup_alpha=0` means no mixup with any defense.

    Raises:
        ValueError: for an unknown defense, an option of another defense
            (naming both) or an invalid value (naming it).
    """
    get(defense)
    given = {k: v for k, v in given_options.items() if v is not None}
    alpha = given.get("mixup_alpha")
    if alpha is not None and not isinstance(alpha, bool) and alpha == 0:
        if defense == "mixup":
            raise checks.invalid(
                "mixup_alpha", "a number > 0 with defense='mixup'", alpha
            )
        given.pop("mixup_alpha")
    elif alpha is not None and defense == "none":
        defense = "mixup"
    known = options()
    for name, value in given.items():
        if name not in known:
            raise ValueError(
                f"Unknown defense option `{name}`. Options: {sorted(known)}"
            )
        owner, option = known[name]
        if owner != defense:
            raise ValueError(
                f"Invalid value received for argument `{name}`: it is an "
                f"option of defense={owner!r}, not of defense={defense!r}. "
                f"Received: {name}={value!r}"
            )
        given[name] = option.validate(value)
    return defense, {**get(defense).defaults(), **given}


def check_defense_options(defense, given_options):
    """The defense's full options: its defaults, updated with the given.

    Raises:
        ValueError: as `resolve`.
    """
    return resolve(defense, given_options)[1]
