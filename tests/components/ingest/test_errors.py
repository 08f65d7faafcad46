"""Bad input: one InputError line naming the file, line or column, and nothing left behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edgeship.components.ingest._csv import SAMPLE_ROWS, Record, parse_float
from edgeship.components.ingest._rows import BadRow
from edgeship.components.ingest._tabular import parse_row
from edgeship.components.ingest.executor import run_ingest
from tests.helpers.checks import assert_nothing_written, one_line_error


def _fails(tmp_path: Path, pattern: str, call: Callable[[str], object]) -> str:
    """Run ``call(output_dir)``, expect one-line InputError matching ``pattern``, no leftovers."""
    out = tmp_path / "out" / "examples"
    message = one_line_error(lambda: call(str(out)), pattern)
    assert_nothing_written(out.parent)
    return message


def _csv(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("kind", ["tabular", "sensor", "image"])
def test_missing_file_or_folder(tmp_path: Path, kind: str) -> None:
    missing = str(tmp_path / "nowhere.csv")
    _fails(tmp_path, r"nowhere\.csv: no such", lambda out: run_ingest(kind, missing, out))


def test_empty_file(tmp_path: Path) -> None:
    src = _csv(tmp_path, "")
    _fails(tmp_path, r"data\.csv: empty file", lambda out: run_ingest("tabular", src, out))


def test_header_without_rows(tmp_path: Path) -> None:
    src = _csv(tmp_path, "a,b,label\n\n")
    _fails(tmp_path, r"data\.csv: no data rows", lambda out: run_ingest("tabular", src, out))


def test_missing_label_column_lists_the_columns(tmp_path: Path) -> None:
    src = _csv(tmp_path, "a,b,kind\n1,2,x\n")
    message = _fails(
        tmp_path,
        r"data\.csv: label column 'label' not found; columns are: a, b, kind",
        lambda out: run_ingest("sensor", src, out),
    )
    assert message.startswith(src)


@pytest.mark.parametrize(
    "header,pattern",
    [
        ("a,a,label", r"line 1: duplicate column name\(s\) a"),
        ("a,,label", r"line 1: column 2 has no name"),
        ("label,y,target", r"column 'label' clashes with the label feature"),
    ],
)
def test_header_problems(tmp_path: Path, header: str, pattern: str) -> None:
    src = _csv(tmp_path, f"{header}\n1,2,3\n")
    _fails(tmp_path, pattern, lambda out: run_ingest("tabular", src, out, label="target"))


def test_folder_of_csvs_with_different_headers(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    _csv(folder, "a,label\n1,x\n", "1.csv")
    _csv(folder, "b,label\n1,x\n", "2.csv")
    _fails(tmp_path, r"2\.csv line 1: columns", lambda out: run_ingest("tabular", str(folder), out))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("caf\xe9,label\n".encode("latin-1"))
    src = str(path)
    _fails(tmp_path, r"latin\.csv: not UTF-8", lambda out: run_ingest("tabular", src, out))


def test_bytes_that_are_not_utf8_after_the_header_end_the_step(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    # Long rows put the bad bytes far past what sampling the first rows decodes, so the Beam
    # workers meet them: a fatal problem, not a droppable row.
    pad = "n" * 100
    rows = "".join(f"{i},{pad},{'ab'[i % 2]}\n" for i in range(SAMPLE_ROWS + 100)).encode()
    path.write_bytes(b"x,note,label\n" + rows + b"3,caf\xe9,a\n")
    src = str(path)
    _fails(
        tmp_path,
        r"mixed\.csv: not UTF-8",
        lambda out: run_ingest("tabular", src, out, max_bad_rows=100),
    )


def test_column_types_must_name_columns_and_types(tmp_path: Path) -> None:
    src = _csv(tmp_path, "a,label\n1,x\n")
    _fails(
        tmp_path,
        "column_types names column 'zz'",
        lambda out: run_ingest("tabular", src, out, column_types={"zz": "float"}),
    )
    _fails(
        tmp_path,
        r"column_types\['a'\] is 'int'",
        lambda out: run_ingest("tabular", src, out, column_types={"a": "int"}),
    )


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"kind": "audio"}, "kind: 'audio', must be one of tabular, sensor, image"),
        ({"kind": "tabular", "eval_ratio": 1.0}, r"eval_ratio: 1.0, must be between 0 and 1"),
        ({"kind": "sensor", "window": 1}, "window: 1, must be >= 2"),
        ({"kind": "image", "channels": 4}, r"channels: 4, must be 1 \(grey\), 3 \(RGB\), or 0"),
        ({"kind": "tabular", "max_bad_rows": -1}, "max_bad_rows: -1, must be >= 0"),
        ({"kind": "tabular", "windw": 3}, r"unknown parameter\(s\) windw \(known: kind, "),
        ({"kind": "tabular", "data_path": "builtin:audio"}, "unknown bundled dataset"),
        ({"kind": "tabular", "data_path": "builtin:vision"}, "is image data, not tabular"),
    ],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict, pattern: str) -> None:
    kind = kwargs.pop("kind")
    data = kwargs.pop("data_path", str(tmp_path))
    _fails(tmp_path, pattern, lambda out: run_ingest(kind, data, out, **kwargs))


def test_missing_label_value_is_a_bad_row() -> None:
    bad = parse_row(Record("t.csv", 9, ["1.0", " "]), ["x", "y"], {"x": "float"}, "y")
    assert isinstance(bad, BadRow) and bad.where() == "t.csv line 9"
    assert bad.reason == "missing label in column 'y'"


def test_non_numeric_value_fails_naming_file_line_and_column(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20))
    src = _csv(tmp_path, f"x,label\n{rows}1.5e,a\n")
    _fails(
        tmp_path,
        r"data\.csv line 22: column 'x': '1\.5e' is not a number; set max_bad_rows",
        lambda out: run_ingest("tabular", src, out, column_types={"x": "float"}),
    )


@pytest.mark.parametrize("text", ["1e39", "-3.5e38", "1e400"])
def test_a_number_beyond_float32_is_a_bad_value(text: str) -> None:
    bad = parse_row(Record("t.csv", 7, [text, "a"]), ["x", "y"], {"x": "float"}, "y")
    assert isinstance(bad, BadRow) and bad.where() == "t.csv line 7"
    assert bad.reason.startswith(f"column 'x': '{text}' is ")
    assert parse_float("3.4e38") == 3.4e38 and parse_float("-1e-50") == -1e-50


def test_a_number_beyond_float32_fails_naming_file_line_and_column(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20))
    src = _csv(tmp_path, f"x,label\n{rows}1e39,a\n")
    _fails(
        tmp_path,
        r"data\.csv line 22: column 'x': '1e39' is outside the float32 range",
        lambda out: run_ingest("tabular", src, out, column_types={"x": "float"}),
    )


def test_a_single_class_is_refused(tmp_path: Path) -> None:
    src = _csv(tmp_path, "x,label\n" + "".join(f"{i},same\n" for i in range(10)))
    _fails(
        tmp_path,
        r"data\.csv: found only class 'same'; need at least 2 classes",
        lambda out: run_ingest("tabular", src, out),
    )


def test_a_window_longer_than_every_recording_says_so(tmp_path: Path) -> None:
    """Once a garbled list of every class with '(0 in eval)'."""
    rows = [f"m{m},{t},{t * 0.1},{'ok' if m % 2 else 'bad'}" for m in range(6) for t in range(8)]
    src = _csv(tmp_path, "machine,t,x,state\n" + "\n".join(rows) + "\n")
    _fails(
        tmp_path,
        r"data\.csv: no recording has a run of one label at least window=20 rows long, so no "
        r"window could be cut; lower window",
        lambda out: run_ingest("sensor", src, out, label="state", group_column="machine",
                               time_column="t", window=20, stride=1),
    )


def test_a_class_without_training_windows_is_named(tmp_path: Path) -> None:
    rows = [f"m{m},{t},{t * 0.1},ok" for m in range(6) for t in range(8)]
    rows += [f"m9,{t},0.5,rare" for t in range(3)]  # 3 rows: too short for one window of 4
    src = _csv(tmp_path, "machine,t,x,state\n" + "\n".join(rows) + "\n")
    _fails(
        tmp_path,
        r"data\.csv: class 'rare' \(0 in eval\) has no examples in the train split",
        lambda out: run_ingest(
            "sensor",
            src,
            out,
            label="state",
            group_column="machine",
            time_column="t",
            window=4,
            stride=2,
        ),
    )
