"""The study registry: every study `apps/report.py --study=` runs.

A study is a `vaekeras.studies.Study` subclass (its runs, measurements,
claims and report). Each built-in one registers itself from a file of
`vaekeras/studies/members/`, named as it registers; a user's registers
from the user's own module:

    @vaekeras.studies.register("ablation")
    class Ablation(vaekeras.studies.Study):
        ...

Pure Python until a study itself is needed.
"""

import dataclasses

from vaekeras import registry as registry_module

STUDIES = registry_module.Registry("study", "vaekeras.studies.members")


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """One registered study.

    Attributes:
        name: its name (`--study`).
        make: `() -> Study`.
        help: one line for `--help`.
    """

    name: str
    make: object
    help: str = ""


def register(name, *, help="", make=None):
    """Registers a `Study` subclass as the study `name` (a decorator).

    Args:
        name: a Python identifier not registered yet.
        help: one line for the report app's `--help`.
        make: what builds the study; default the class called with no
            argument (a variant of one class passes e.g. a lambda).

    Returns:
        The decorator; it returns the class.

    Raises:
        ValueError: for a bad or taken name, or a class that is not a
            `Study`.
    """
    def decorator(cls):
        from vaekeras.studies.base import Study

        if not (isinstance(cls, type) and issubclass(cls, Study)):
            raise ValueError(
                "A study is a subclass of vaekeras.studies.Study. "
                f"Received: {cls!r}"
            )
        STUDIES.add(
            name, StudySpec(name, make or cls, help),
            f"{registry_module.origin_of(cls)}:{name}",
        )
        return cls

    return decorator


def names():
    """Every study's name; imports nothing heavy."""
    return STUDIES.names()


def get(name, argument="study"):
    """The `StudySpec` called `name` (a `ValueError` names `argument`)."""
    return STUDIES.get(name, argument)
