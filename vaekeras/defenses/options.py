"""A defense's option: declared once, on its class, with its check.

Each defense class lists its options as `options = (Option(...), ...)`;
`vaekeras.defenses.registry` derives everything else from that tuple:
the defaults `build_defended_vae` fills in, the checks, `TrainConfig`'s
fields, the train app's flags and what `flags.json` records.

Examples:
    >>> Option("adv_eps", 1.0, "radius of the training attack", checks.positive)
"""

import dataclasses
import typing

from vaekeras import checks


@dataclasses.dataclass(frozen=True)
class Option:
    """One typed, validated option of a defense.

    Attributes:
        name: the constructor argument, config field and flag.
        default: its value when not given.
        help: one line for `--help`.
        check: `(name, value) -> value` (see `vaekeras.checks`); None
            with `choices` checks membership.
        choices: the allowed values (an enum flag), or None.
    """

    name: str
    default: typing.Any
    help: str
    check: typing.Callable | None = None
    choices: tuple | None = None

    def validate(self, value):
        """`value` checked and normalised, or a `ValueError` naming it."""
        if self.check is not None:
            return self.check(self.name, value)
        return checks.choice(self.name, value, self.choices)

    def spell(self, value):
        """`value` as JSON and flags spell it (np.inf as "inf")."""
        return "inf" if value == float("inf") else value

    @property
    def type(self):
        """`int`, `float` or `str`: the flag and config field type."""
        if self.choices is not None:
            return str
        return int if isinstance(self.default, int) else float


def norm_option(name, value):
    """A norm option: 2 or np.inf, from any spelling `checks.norm` takes."""
    return checks.norm(value, name)
