"""Each step's parameters, declared once, and the one ``KEY=VALUE`` grammar that sets them.

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
import json
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar, cast

from edgeship.errors import InputError, UsageError

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
        found: dict[str, Any] = {}
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


# --- KEY=VALUE: one grammar for every orchestrator --------------------------------------------
#
# ``edgeship run`` (kfp.local or TFX) and ``edgeship submit`` take pipeline parameters as
# ``--param KEY=VALUE``. A pipeline parameter is a step parameter by name, so both routes read
# the same names with the same types, the same boolean words and the same errors. This part
# imports nothing but the standard library: it runs in the kfp environment and in TFX's, which
# has no kfp.

#: The types a parameter may have, as both routes name them (KFP's IR types and the step
#: dataclasses' hints each map onto these).
ParamKind = Literal["string", "integer", "number", "boolean", "list", "object"]
ParamValue = str | int | float | bool | list[Any] | dict[str, Any]

#: The words a boolean parameter accepts, in any case.
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")

_EXPECTED: dict[ParamKind, str] = {
    "integer": "an integer", "number": "a number", "boolean": "a boolean (true or false)",
    "list": "a JSON list", "object": "a JSON object", "string": "text",
}


def kind_of(hint: object) -> ParamKind:
    """The kind of a step dataclass field's type hint (``int``, ``list[str]``, ...)."""
    origin = typing.get_origin(hint) or hint
    kinds: dict[object, ParamKind] = {bool: "boolean", int: "integer", float: "number",
                                      str: "string", list: "list", dict: "object"}
    if origin not in kinds:
        raise TypeError(f"a step parameter of type {hint!r} cannot be given as text")
    return kinds[origin]


def step_kinds(params: type[StepParams]) -> dict[str, ParamKind]:
    """Each parameter of a step and its kind, from the dataclass's type hints."""
    hints = typing.get_type_hints(params)
    return {name: kind_of(hints[name]) for name in params.names()}


def split_pair(pair: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (name, value); anything else is a usage error."""
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
    return key, value


def parse_value(name: str, text: str, kind: ParamKind) -> ParamValue:
    """``text`` read as a ``kind`` value; a usage error naming the parameter otherwise."""
    if kind == "string":
        return text
    if kind == "boolean":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
    else:
        try:
            if kind == "integer":
                return int(text)
            if kind == "number":
                return float(text)
            value: object = json.loads(text)
            if isinstance(value, list) and kind == "list":
                return cast("list[Any]", value)
            if isinstance(value, dict) and kind == "object":
                return cast("dict[str, Any]", value)
        except ValueError:
            pass
    raise UsageError(f"--param {name}={text}: expected {_EXPECTED[kind]}")


def parse_params(pairs: Iterable[str], declared: Mapping[str, ParamKind], *,
                 required: Iterable[str] = ()) -> dict[str, ParamValue]:
    """``KEY=VALUE`` pairs typed by ``declared`` (name -> kind).

    Unknown, repeated and missing ``required`` names are usage errors naming the parameter.
    """
    parsed: dict[str, ParamValue] = {}
    for pair in pairs:
        name, text = split_pair(pair)
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise UsageError(f"--param {name}: not a parameter of this pipeline (known: {known})")
        if name in parsed:
            raise UsageError(f"--param {name}: given more than once")
        parsed[name] = parse_value(name, text, declared[name])
    missing = sorted(set(required) - set(parsed))
    if missing:
        raise UsageError(f"missing required parameter(s): {', '.join(missing)}")
    return parsed


def parse_step_params(pairs: Iterable[str],
                      steps: Mapping[str, type[StepParams]]) -> dict[str, ParamValue]:
    """``KEY=VALUE`` pairs for a chain of steps, as ``STEP__NAME`` keys (what TFX's pipeline
    takes).

    ``NAME`` goes to the step that declares it. A name several steps declare with one meaning
    (the same kind and default, e.g. ``beam_pipeline_args``) goes to each; a name they declare
    with different meanings (``eval_examples``: evaluate's and quantize's) is refused unless
    given in the explicit form, ``STEP__NAME=VALUE``.
    """
    kinds = {step: step_kinds(params) for step, params in steps.items()}
    parsed: dict[str, ParamValue] = {}
    for pair in pairs:
        key, text = split_pair(pair)
        step, sep, name = key.partition("__")
        if sep and step in steps:
            if name not in kinds[step]:
                raise UsageError(f"--param {key}: {step} has no parameter {name!r} (known: "
                                 f"{', '.join(kinds[step])})")
            targets = [step]
        else:
            name = key
            targets = [s for s in steps if name in kinds[s]]
            if not targets:
                known = ", ".join(sorted({n for k in kinds.values() for n in k}))
                raise UsageError(f"--param {name}: not a parameter of any step (known: {known})")
            meanings = {(kinds[s][name], repr(steps[s].defaults().get(name))) for s in targets}
            if len(meanings) > 1:
                explicit = " or ".join(f"{s}__{name}" for s in targets)
                raise UsageError(f"--param {name}: {' and '.join(targets)} each have a "
                                 f"parameter {name!r}, with different meanings: give {explicit}")
        value = parse_value(key, text, kinds[targets[0]][name])
        for target in targets:
            if f"{target}__{name}" in parsed:
                raise UsageError(f"--param {key}: given more than once")
            parsed[f"{target}__{name}"] = value
    return parsed
