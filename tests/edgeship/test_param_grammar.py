"""``--param KEY=VALUE``: one grammar for ``run`` and ``submit`` (KFP, typed by the IR) and
``run --orchestrator tfx`` (typed by the steps' dataclasses), from ``edgeship.params``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeship import cli
from edgeship.errors import UsageError
from edgeship.params import StepParams, parse_step_params
from edgeship.pipelines.submit import parse_params


@dataclasses.dataclass(frozen=True)
class Demo(StepParams):
    label: str = "label"
    epochs: int = 30
    rate: float = 0.1
    quick: bool = True
    variants: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


# The same parameters as a compiled pipeline declares them.
DECLARED = {
    "label": {"parameterType": "STRING", "defaultValue": "label"},
    "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 30},
    "rate": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.1},
    "quick": {"parameterType": "BOOLEAN", "defaultValue": True},
    "variants": {"parameterType": "LIST", "defaultValue": []},
    "extra": {"parameterType": "STRUCT", "defaultValue": {}},
}

values = st.one_of(
    st.sampled_from(["true", "False", "YES", "no", "1", "0", "maybe", "", "[]", "{}", "[1]",
                     '{"a": 1}', "nan", "1e3", "-7", "0x10", " 3", "1_000", "٣"]),
    st.integers().map(str), st.floats().map(str), st.text(max_size=12))


def _outcome(parse: Any) -> Any:
    try:
        return parse()
    except UsageError as e:
        return f"refused: {e}"


@given(name=st.sampled_from(sorted(DECLARED)), text=values)
def test_both_orchestrators_read_a_value_alike(name: str, text: str) -> None:
    kfp = _outcome(lambda: parse_params([f"{name}={text}"], DECLARED))
    tfx = _outcome(lambda: parse_step_params([f"{name}={text}"], {"demo": Demo}))
    if isinstance(tfx, dict):
        tfx = {key.removeprefix("demo__"): value for key, value in tfx.items()}
    assert repr(kfp) == repr(tfx)  # repr: nan equals nan, True differs from 1
    if isinstance(kfp, str):  # one line (whitespace folded), naming the parameter
        assert kfp.startswith(" ".join(f"refused: --param {name}={text}: expected ".split()))


@pytest.mark.parametrize("text, value", [("true", True), ("Yes", True), ("1", True),
                                         ("FALSE", False), ("no", False), ("0", False)])
def test_one_set_of_boolean_words(text: str, value: bool) -> None:
    assert parse_params([f"quick={text}"], DECLARED) == {"quick": value}
    assert parse_step_params([f"quick={text}"], {"demo": Demo}) == {"demo__quick": value}


def test_a_bad_param_on_the_kfp_route_is_a_usage_error(tmp_path: Path, capsys) -> None:
    """Exit 2 and one line naming the parameter, before any work: as argparse's own."""
    workdir = tmp_path / "run"
    assert cli.main(["run", "tabular", "--workdir", str(workdir), "--param",
                     "epochs=many"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "edgeship: error: --param epochs=many: expected an integer"]
    assert not workdir.exists()
