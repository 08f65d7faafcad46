"""Sensor example shape from the user's recordings: an inferred window when the default does not
fit, whole recordings when they are short and of varying length, a given window kept as given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeship.components.ingest import _sensor
from edgeship.components.ingest._rows import in_eval
from edgeship.components.ingest.executor import run_ingest
from edgeship.components.summaries import step_line
from edgeship.errors import InputError
from tests.helpers.records import read_split

GROUPS = [f"s{i:02d}" for i in range(12)]
#: Utterance-like lengths: 7 to 29 rows, two recordings (one per class) per group.
VARYING = [7, 29, 12, 18, 9, 25, 14, 21, 8, 27, 16, 11, 23, 10, 19, 13, 26, 15, 22, 17, 24, 20,
           28, 9]


def _varying() -> dict[tuple[str, str], int]:
    return {(g, s): VARYING[2 * i + j] for i, g in enumerate(GROUPS)
            for j, s in enumerate(("idle", "run"))}


def _csv(path: Path, lengths: dict[tuple[str, str], int]) -> Path:
    """One recording per (group, label), ``lengths`` rows each, "idle" before "run" in time;
    channel x is the time (0... idle, 1000... run), y the group's number, so each example says
    where it came from."""
    lines = ["sess,t,x,y,state"]
    for (group, state), n in lengths.items():
        for step in range(n):
            base = 0.0 if state == "idle" else 1000.0
            lines.append(f"{group},{base + step},{base + step},{GROUPS.index(group)},{state}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _ingest(src: Path, out: Path, window: int = 0) -> dict:
    return run_ingest("sensor", str(src), str(out), label="state", group_column="sess",
                      time_column="t", eval_ratio=0.3, window=window)


def _meta(out: Path) -> dict:
    return json.loads((out / "examples_meta.json").read_text())


def test_even_recordings_shorter_than_the_default_get_a_window_of_their_length(
    tmp_path: Path,
) -> None:
    lengths = {(g, s): 20 for g in GROUPS for s in ("idle", "run")}
    summary = _ingest(_csv(tmp_path / "d.csv", lengths), tmp_path / "out")
    assert summary["sensor_shape"] == (
        "window 20, stride 10 (the shortest recording; default 128 is longer than 24 of 24 "
        "recordings)"
    )
    meta = _meta(tmp_path / "out")
    assert (meta["window"], meta["stride"], meta["sensor_mode"]) == (20, 10, "windows")
    assert [f["shape"] for f in meta["features"]] == [[20], [20]]
    assert sum(meta["counts"].values()) == 24  # one window per 20-row recording
    assert meta["recordings"] == "24 recordings (label runs per group) of 20 rows"
    # the run table's ingest line says it too
    assert step_line("ingest", summary).endswith(f"2 classes; {summary['sensor_shape']}")


def test_short_recordings_of_varying_length_are_each_one_example(tmp_path: Path) -> None:
    lengths = _varying()
    summary = _ingest(_csv(tmp_path / "d.csv", lengths), tmp_path / "out")
    assert summary["sensor_shape"] == (
        "whole recordings, resampled to 29 rows (recordings vary from 7 to 29 rows, so each is "
        "one example; default 128 is longer than 24 of 24 recordings)"
    )
    out = tmp_path / "out"
    meta = _meta(out)
    assert (meta["window"], meta["stride"], meta["sensor_mode"]) == (29, 0, "whole")
    examples = read_split(out, "train") + read_split(out, "eval")
    assert len(examples) == len(lengths)
    for example in examples:
        group, state = example["sess"][0], ("idle", "run")[example["label"][0]]
        n = lengths[(group, state)]
        base = 0.0 if state == "idle" else 1000.0
        assert len(example["x"]) == 29
        # the whole recording, ends kept: its first step to its last
        assert example["x"][0] == pytest.approx(base)
        assert example["x"][-1] == pytest.approx(base + n - 1)
        assert set(example["y"]) == {GROUPS.index(group)}
    for split in ("train", "eval"):  # split by group: no recording on both sides
        groups = {e["sess"][0] for e in read_split(out, split)}
        assert groups and all(in_eval(g, 0.3) == (split == "eval") for g in groups)


def test_a_given_window_is_never_overridden(tmp_path: Path) -> None:
    lengths = _varying()
    src = _csv(tmp_path / "d.csv", lengths)
    summary = _ingest(src, tmp_path / "out", window=6)
    assert summary["sensor_shape"] == "window 6, stride 3 (given)"
    meta = _meta(tmp_path / "out")
    assert [f["shape"] for f in meta["features"]] == [[6], [6]]
    expected = sum((n - 6) // 3 + 1 for n in lengths.values())
    assert sum(meta["counts"].values()) == expected


def test_a_given_window_that_fits_nothing_fails_naming_the_lengths(tmp_path: Path) -> None:
    lengths = _varying()
    out = tmp_path / "out"
    with pytest.raises(InputError, match=(
        r"d\.csv: no recording has a run of one label at least window=50 rows long.*"
        r"found 24 recordings \(label runs per group\) of 7 to 29 rows, median 17\.5")):
        _ingest(_csv(tmp_path / "d.csv", lengths), out, window=50)
    assert not out.exists()


def test_recordings_long_enough_keep_the_default_window(tmp_path: Path) -> None:
    """Most recordings at least 128 rows: windows of 128 every 64, as before (a short one gives
    no window)."""
    lengths = {(g, s): 200 for g in GROUPS[:6] for s in ("idle", "run")}
    lengths[(GROUPS[6], "idle")] = 50
    lengths[(GROUPS[6], "run")] = 50
    summary = _ingest(_csv(tmp_path / "d.csv", lengths), tmp_path / "out")
    assert summary["sensor_shape"] == "window 128, stride 64 (the default)"
    meta = _meta(tmp_path / "out")
    assert [f["shape"] for f in meta["features"]] == [[128], [128]]
    assert sum(meta["counts"].values()) == 24  # 12 recordings of 200 rows: windows at 0, 64


# The rule itself, on lengths alone


def test_choose_shape_rule() -> None:
    assert _sensor.choose_shape([100] * 40) == _sensor.Shape(
        "windows", 100, 50,
        "the shortest recording; default 128 is longer than 40 of 40 recordings")
    assert _sensor.choose_shape([300, 300, 50]).describe() == "window 128, stride 64 (the default)"
    assert _sensor.choose_shape([300, 50, 50]).mode == "whole"
    assert _sensor.choose_shape([90, 100, 110]).length == 90  # within 80 %: a window
    assert _sensor.choose_shape([7, 29, 500, 12, 14]).length == 128  # resampled to at most 128
    assert _sensor.choose_shape([]).reason == "the default"
    assert _sensor.choose_shape([7, 29], stride=5) == _sensor.Shape(
        "whole", 29, 0, "recordings vary from 7 to 29 rows, so each is one example; default 128 "
        "is longer than 2 of 2 recordings")
    assert _sensor.choose_shape([100] * 4, window=128, stride=0).describe() == (
        "window 128, stride 64 (given)")
    assert _sensor.choose_shape([3, 3], window=0).mode == "windows"


@given(st.lists(st.integers(1, 400), min_size=1, max_size=60),
       st.sampled_from([0, 2, 16, 128, 300]), st.sampled_from([0, 1, 7]))
def test_choose_shape_keeps_a_given_window_and_fits_what_it_infers(
    lengths: list[int], window: int, stride: int
) -> None:
    shape = _sensor.choose_shape(lengths, window, stride)
    assert shape.length >= 2 and (shape.stride >= 1) == (shape.mode == "windows")
    if window:
        assert (shape.mode, shape.length, shape.reason) == ("windows", window, "given")
        assert shape.stride == (stride or window // 2)
    elif shape.mode == "windows" and shape.length != _sensor.DEFAULT_WINDOW:
        assert shape.length == min(lengths)  # an inferred window fits every recording
    elif shape.mode == "windows":  # the default: most recordings hold a window
        assert 2 * sum(n >= 128 for n in lengths) >= len(lengths)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40), st.integers(2, 130))
def test_resample_keeps_ends_and_stays_within_the_values(values: list[float], length: int) -> None:
    out = _sensor.resample(values, length)
    assert len(out) == length
    assert out[0] == pytest.approx(values[0]) and out[-1] == pytest.approx(values[-1])
    assert all(min(values) - 1e-6 <= v <= max(values) + 1e-6 for v in out)


def test_whole_mode_without_group_column_keys_each_recording_by_position() -> None:
    columns = _sensor.Columns(("t", "x", "label"), "label", ("x",), "", "t")
    rows = [(float(i), "f.csv", i + 2, c, (float(i),)) for i, c in enumerate("aaabbbbb")]
    shape = _sensor.Shape("whole", 3, 0, "test")
    items = _sensor.make_examples("f.csv", rows, columns, shape)
    assert [(key, cls, feats["x"]) for key, cls, feats in items] == [
        ("f.csv@0", "a", [0.0, 1.0, 2.0]),
        ("f.csv@3", "b", [3.0, 5.0, 7.0]),
    ]


@pytest.mark.slow
def test_train_takes_whole_recordings_at_the_shape_ingest_chose(tmp_path: Path) -> None:
    """Train reads the example shape from the examples' meta: whole recordings of 7 to 29 rows
    become a model over [29 rows, 2 channels], one prediction per recording."""
    from edgeship.components._serving import predict
    from edgeship.components.artifacts import MODEL_META
    from edgeship.components.train.executor import run_train

    out = tmp_path / "examples"
    _ingest(_csv(tmp_path / "d.csv", _varying()), out)
    run_train(str(out), str(tmp_path / "model"), epochs=2, min_steps=0)
    model_meta = json.loads((tmp_path / "model" / MODEL_META).read_text())
    assert model_meta["input_shape"] == [29, 2]
    examples = read_split(out, "eval")
    batch = np.asarray([list(zip(e["x"], e["y"], strict=True)) for e in examples], np.float32)
    assert predict(str(tmp_path / "model"), batch).shape == (len(examples), 2)
