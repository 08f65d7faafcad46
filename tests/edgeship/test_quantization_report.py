"""The quantization report's reader, the quantize -> push contract: it reads what quantize
writes, refuses anything else with one line naming the file, and carries only what a device has
(no TensorFlow, no kfp, no pipeline step)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeship.errors import InputError
from edgeship.quantization_report import REPORT_JSON, REPORT_SCHEMA_VERSION, read_report
from tests.helpers import REPO
from tests.helpers.checks import one_line_error

SELF_TEST = {"variant": "int8", "input": [[0.5, 1.0]], "expected_output": [[0.1, 0.9]],
             "atol": 0.004, "rtol": 0.0}


def _report(**fields: object) -> dict[str, object]:
    return {"schema_version": REPORT_SCHEMA_VERSION, "float_accuracy": 0.9,
            "variants": {"int8": {"sha256": "ab" * 32, "accuracy": 0.89}},
            "self_test": SELF_TEST, **fields}


def _write(folder: Path, content: object) -> Path:
    path = folder / REPORT_JSON
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_reads_the_report_quantize_writes(tmp_path: Path) -> None:
    report = _report()
    assert read_report(_write(tmp_path, report)) == report
    assert read_report(_write(tmp_path, _report(self_test=None)))["self_test"] is None


@pytest.mark.parametrize("content,why", [
    (_report(schema_version=None), "schema_version None, this edgeship reads 1"),
    (_report(schema_version=2), "schema_version 2, this edgeship reads 1; quantize the model"),
    ([_report()], "must hold a JSON object"),
    (_report(variants=["int8"]), "no 'variants' object"),
    (_report(self_test={"variant": "int8", "input": [1.0]}), "'self_test' must hold variant"),
    (_report(self_test="yes"), "'self_test' must hold variant"),
    ("{not json", "not valid JSON"),
])
def test_a_report_it_cannot_read_is_one_line_naming_the_file(tmp_path: Path, content: object,
                                                             why: str) -> None:
    path = _write(tmp_path, content)
    message = one_line_error(lambda: read_report(path), match=why)
    assert message.startswith(f"{path}: ")


def test_a_missing_report_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / REPORT_JSON
    one_line_error(lambda: read_report(missing),
                   match=f"{missing}: cannot read the quantization report")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["schema_version", "variants", "self_test", "variant",
                                       "input", "expected_output", "atol", "rtol", "x"]),
                      children, max_size=6),
    max_leaves=20)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=JSON | st.fixed_dictionaries(
    {"schema_version": st.just(1), "variants": JSON, "self_test": JSON}))
def test_any_json_is_read_or_refused_with_an_input_error(tmp_path: Path, content) -> None:
    """Whatever the file holds, the reader returns a report of this version with a variants
    object (and a whole self-test, or none), or refuses it: never another exception."""
    path = _write(tmp_path, content)
    try:
        report = read_report(path)
    except InputError:
        return
    assert report["schema_version"] == REPORT_SCHEMA_VERSION
    assert isinstance(report["variants"], dict)
    assert report.get("self_test") is None or set(SELF_TEST) <= set(report["self_test"])


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64))
def test_any_bytes_are_read_or_refused_with_an_input_error(tmp_path: Path, raw: bytes) -> None:
    """Undecodable text, truncated JSON, anything: read as a report or an InputError."""
    path = tmp_path / REPORT_JSON
    path.write_bytes(raw)
    try:
        report = read_report(path)
    except InputError:
        return
    assert report["schema_version"] == REPORT_SCHEMA_VERSION


def test_importing_it_imports_only_what_a_device_has() -> None:
    code = ("import json, sys\nimport edgeship.quantization_report\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'kfp', 'numpy', 'apache_beam') or m.startswith("
            "('edgeship.components', 'edgeship.edge_pusher', 'edgeship.pipelines')))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
