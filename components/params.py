"""Each step's parameters, declared once.

A step's parameters are one frozen dataclass beside its executor (``IngestParams``,
``TrainParams``, ...): names, types, defaults and the checks, in one place. The KFP component
must spell the same parameters out in its own signature (KFP reads them from there), the
compiled ``component.yaml`` carries them, and the step's README lists them; a test
(``tests/components/test_parameters.py``) fails when any of those disagrees with the dataclass.

From Python, an executor takes the dataclass or the same names as keywords::

    run_train("examples", "model", TrainParams(epochs=5))
    run_train("examples", "model", epochs=5)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from edgeship.errors import InputError

P = TypeVar("P", bound="StepParams")


@dataclasses.dataclass(frozen=True)
class StepParams:
    """Base of every step's parameters: checked on construction, so a bad value is one
    :class:`~edgeship.errors.InputError` naming the parameter before any work starts."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise InputError naming the first parameter whose value cannot work."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each parameter's default; parameters without one (required) are left out."""
        found = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                found[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                found[f.name] = f.default_factory()
        return found

    @classmethod
    def build(cls: type[P], params: P | None = None, **overrides: Any) -> P:
        """``params`` (or the defaults) with ``overrides`` applied; unknown names are refused."""
        unknown = sorted(set(overrides) - set(cls.names()))
        if unknown:
            raise InputError(
                f"unknown parameter(s) {', '.join(unknown)} (known: {', '.join(cls.names())})"
            )
        try:
            return dataclasses.replace(params, **overrides) if params else cls(**overrides)
        except TypeError as err:  # a required parameter is missing
            raise InputError(f"{cls.__name__}: {err}") from None

    @classmethod
    def of(cls: type[P], values: Mapping[str, Any]) -> P:
        """The parameters from a mapping holding at least every name, e.g. a KFP component's
        ``locals()``: the component spells each parameter once, in its signature."""
        return cls(**{name: values[name] for name in cls.names()})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def require(ok: bool, name: str, value: Any, must: str) -> None:
    """One check of one parameter: ``must`` says what the value must be."""
    if not ok:
        raise InputError(f"{name}: {value!r}, must be {must}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
