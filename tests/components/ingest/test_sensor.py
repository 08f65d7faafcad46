"""Ingest of sensor CSV: time order, windows inside one group and one label, split by group."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edgeship.components.artifacts import read_examples_meta
from edgeship.components.ingest import _sensor
from edgeship.components.ingest._csv import Record
from edgeship.components.ingest._rows import BadRow, in_eval
from edgeship.components.ingest.executor import run_ingest
from edgeship.errors import InputError
from tests.helpers.records import read_split

GROUPS = [f"rec-{c}" for c in "abcdef"]
RUN = 10  # rows per label run; every session is 10 rows "idle" then 10 rows "run"
WINDOW, STRIDE = 4, 3  # windows start at 0, 3, 6 in each run: 3 per run, 6 per session


def _sensor_csv(path: Path) -> Path:
    """Channels that say where a row came from: ax = time step, ay = session, az = label run."""
    rows = []
    for g, session in enumerate(GROUPS):
        for step in range(2 * RUN):
            run = 2 * g + step // RUN
            state = "idle" if step < RUN else "run"
            rows.append(f"{session},{step * 0.01:.2f},{step},{g},{run},{state}")
    random.Random(3).shuffle(rows)  # ingest must restore time order within each session
    path.write_text("session,t,ax,ay,az,state\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sensor")
    assert len({in_eval(s, 0.5) for s in GROUPS}) == 2, "test data needs sessions in both splits"
    out = root / "examples"
    summary = run_ingest(
        "sensor",
        str(_sensor_csv(root / "sessions.csv")),
        str(out),
        label="state",
        group_column="session",
        time_column="t",
        window=WINDOW,
        stride=STRIDE,
        eval_ratio=0.5,
    )
    return out, summary


def test_meta_describes_windows_and_passthrough(ingested: tuple[Path, dict]) -> None:
    out, summary = ingested
    meta = read_examples_meta(out)
    assert meta["kind"] == "sensor"
    assert meta["classes"] == ["idle", "run"]
    assert meta["features"] == [
        {"name": c, "dtype": "float", "shape": [WINDOW]} for c in ("ax", "ay", "az")
    ]
    assert meta["passthrough"] == ["session"]
    assert meta["counts"]["train"] + meta["counts"]["eval"] == len(GROUPS) * 6
    assert summary["rows"] == meta["counts"]
    assert (meta["window"], meta["stride"], meta["group_column"]) == (WINDOW, STRIDE, "session")


def test_windows_are_time_ordered_and_never_cross_a_session_or_label(
    ingested: tuple[Path, dict],
) -> None:
    out, _ = ingested
    windows = read_split(out, "train") + read_split(out, "eval")
    starts = set()
    for w in windows:
        assert w["ax"] == [w["ax"][0] + i for i in range(WINDOW)]  # consecutive time steps
        assert len(set(w["ay"])) == 1 and len(set(w["az"])) == 1  # one session, one label run
        session = GROUPS[int(w["ay"][0])]
        assert w["session"] == [session]
        run = int(w["az"][0])
        assert w["label"] == [run % 2]  # even runs are idle (class 0), odd ones run (class 1)
        starts.add((session, run, int(w["ax"][0]) % RUN))
    assert {s for _, _, s in starts} == {0, 3, 6}
    assert len(starts) == len(windows)  # no window was written twice


def test_each_session_lands_wholly_in_the_split_its_hash_picks(
    ingested: tuple[Path, dict],
) -> None:
    out, _ = ingested
    for split in ("train", "eval"):
        sessions = {w["session"][0] for w in read_split(out, split)}
        assert sessions and all(in_eval(s, 0.5) == (split == "eval") for s in sessions)


COLUMNS = _sensor.Columns(("id", "t", "x", "y", "label"), "label", ("x", "y"), "", "t")


def _rows(labels: str) -> list[_sensor.SensorRow]:
    return [(i * 0.1, "f.csv", i + 2, c, (float(i), 0.0)) for i, c in enumerate(labels)]


def test_without_group_column_windows_key_on_position_and_respect_label_runs() -> None:
    items = _sensor.cut_windows("f.csv", _rows("aaaaabbbb"), COLUMNS, window=3, stride=1)
    assert [(key, cls, feats["x"]) for key, cls, feats in items] == [
        ("f.csv@0", "a", [0.0, 1.0, 2.0]),
        ("f.csv@1", "a", [1.0, 2.0, 3.0]),
        ("f.csv@2", "a", [2.0, 3.0, 4.0]),
        ("f.csv@5", "b", [5.0, 6.0, 7.0]),
        ("f.csv@6", "b", [6.0, 7.0, 8.0]),
    ]
    assert "id" not in items[0][2]  # no group feature without a group column


def test_a_label_run_shorter_than_a_window_gives_no_window() -> None:
    items = _sensor.cut_windows("f.csv", _rows("aabbbb"), COLUMNS, window=3, stride=3)
    assert [(cls, feats["x"][0]) for _, cls, feats in items] == [("b", 2.0)]


@pytest.mark.parametrize(
    "fields,reason",
    [
        (["m1", "0.1", "", "2", "ok"], "column 'x': missing value"),
        (["m1", "0.1", "1", "nope", "ok"], "column 'y': 'nope' is not a number"),
        (["m1", "yesterday", "1", "2", "ok"], "time 'yesterday' is neither a number nor ISO-8601"),
        (["m1", "0.1", "1", "2", ""], "missing label in column 'label'"),
        (["m1", "0.1", "1"], "expected 5 fields, found 3"),
    ],
)
def test_malformed_sensor_rows_name_their_line(fields: list[str], reason: str) -> None:
    bad = _sensor.parse_row(Record("d.csv", 17, fields), COLUMNS)
    assert isinstance(bad, BadRow)
    assert (bad.where(), bad.reason) == ("d.csv line 17", reason)


def test_iso_times_sort_like_numbers() -> None:
    early = _sensor.parse_time("2024-05-01T10:00:00.5")
    late = _sensor.parse_time("2024-05-01T10:00:01")
    assert late - early == pytest.approx(0.5)


def test_non_numeric_extra_column_asks_for_group_column(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    src.write_text("machine,t,x,label\nm1,0,1.0,a\nm1,1,2.0,a\n")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"s\.csv: column\(s\) machine are not numeric"):
        run_ingest("sensor", str(src), str(out), time_column="t")
    assert not out.exists()
