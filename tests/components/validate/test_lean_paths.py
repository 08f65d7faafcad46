"""Validate's two paths, in memory and with Beam, give the same statistics, schema and anomalies
on the same data; ``LEAN_MAX_ROWS`` (and a named runner, missing counts, a feature too varied
for TFDV's in-memory sketches) picks the path.

Each path is forced by setting the threshold: -1 sends every split to Beam, a large one keeps
it in memory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from edgeship.components.artifacts import EXAMPLES_META, LABEL_FEATURE, read_json, write_json
from edgeship.components.validate import _in_memory
from edgeship.components.validate import executor as validate
from tests.components.validate.test_executor import TABULAR_FEATURES, tabular_rows
from tests.helpers import builders

BEAM, LEAN = -1, 10**9


def run(examples: Path, root: Path, threshold: int, monkeypatch: pytest.MonkeyPatch,
        **kwargs: Any) -> dict[str, Any]:
    monkeypatch.setattr(validate, "LEAN_MAX_ROWS", threshold)
    return validate.run_validate(
        str(examples), str(root / "statistics"), str(root / "schema"), str(root / "anomalies"),
        **kwargs)


def as_dict(message: Any) -> dict[str, Any]:
    """A proto as a dict, every dataset's features in path order (Beam merges them in any)."""
    from google.protobuf import json_format

    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    for dataset in data.get("datasets", []):
        dataset["features"] = sorted(dataset.get("features", []), key=lambda f: str(f["path"]))
    return data


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal field by field; floats within 1e-9 relative (the two paths sum in other orders)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: fields {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def outputs(root: Path) -> dict[str, Any]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found: dict[str, Any] = {"schema": (root / "schema" / "schema.pbtxt").read_text()}
    for split_folder in sorted((root / "statistics").glob("Split-*")):
        stats = validate.load_statistics_file(split_folder / validate.STATS_FILE)
        found[f"stats {split_folder.name}"] = as_dict(stats)
    for split_folder in sorted((root / "anomalies").glob("Split-*")):
        diff = anomalies_pb2.Anomalies.FromString((split_folder / validate.ANOMALIES_FILE)
                                                  .read_bytes())
        found[f"anomalies {split_folder.name}"] = as_dict(diff)
    return found


def mixed_examples(root: Path) -> Path:
    """Numbers, strings, a 4-value vector, a feature missing from some rows, a string with
    900 distinct values (under the in-memory sketch's 1,024) and an int with repeats."""
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    for split, n, seed in (("train", 1800, 1), ("eval", 600, 2)):
        for i, row in enumerate(tabular_rows(n, seed)):
            row["window"] = [float((i * k) % 7) for k in range(4)]
            row["machine"] = f"m{(i * 7919 + seed) % 900}"
            row["count"] = i % 13
            if i % 5 == 0:
                del row["y"]
            rows[split].append(row)
    # 'machine' and 'count' are in the data, not model inputs (passthrough)
    features = [*TABULAR_FEATURES, {"name": "window", "dtype": "float", "shape": [4]}]
    return builders.write_examples(root, "tabular", features, ["low", "high"], rows)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mixed_examples(tmp_path_factory.mktemp("mixed") / "examples")


def test_both_paths_write_the_same_statistics_schema_and_anomalies(
    mixed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lean = run(mixed, tmp_path / "lean", LEAN, monkeypatch)
    beam = run(mixed, tmp_path / "beam", BEAM, monkeypatch)
    assert lean == beam
    assert lean["statistics"] == {"train": 1800, "eval": 600}
    lean_out, beam_out = outputs(tmp_path / "lean"), outputs(tmp_path / "beam")
    assert sorted(lean_out) == ["anomalies Split-eval", "anomalies Split-train", "schema",
                                "stats Split-eval", "stats Split-train"]
    assert lean_out["schema"] == beam_out["schema"]
    assert_same(lean_out, beam_out)
    # the comparison has something to compare: top values, quantiles, missing counts
    features = {f["path"]["step"][0]: f for f in
                lean_out["stats Split-train"]["datasets"][0]["features"]}
    assert features["machine"]["string_stats"]["unique"] == "900"
    assert features["y"]["num_stats"]["common_stats"]["num_missing"] == "360"
    assert features["window"]["num_stats"]["common_stats"]["max_num_values"] == "4"


def test_both_paths_find_the_same_anomalies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value outside the domain (a new colour, a label out of range) and a missing feature
    ('y' absent from eval), against the schema inferred from clean data."""
    clean = tabular_rows(120, seed=3)
    clean_dir = builders.write_examples(tmp_path / "clean", "tabular", TABULAR_FEATURES,
                                        ["low", "high"], {"train": clean, "eval": clean[:40]})
    run(clean_dir, tmp_path / "schema_run", LEAN, monkeypatch)
    schema = tmp_path / "schema_run" / "schema" / "schema.pbtxt"
    bad_eval = tabular_rows(60, seed=4)
    for i, row in enumerate(bad_eval):
        del row["y"]
        if i % 3 == 0:
            row["colour"] = "purple"
        if i == 5:
            row[LABEL_FEATURE] = 7
    bad = builders.write_examples(tmp_path / "bad", "tabular", TABULAR_FEATURES,
                                  ["low", "high"], {"train": clean, "eval": bad_eval})
    found = {}
    for name, threshold in (("lean", LEAN), ("beam", BEAM)):
        found[name] = run(bad, tmp_path / name, threshold, monkeypatch,
                          schema_path=str(schema), fail_on_anomalies=False)
    assert found["lean"] == found["beam"]
    eval_anomalies = " ".join(found["lean"]["anomalies"]["eval"])
    for expected in ("'colour'", "purple", "'y'", f"'{LABEL_FEATURE}'"):
        assert expected in eval_anomalies
    assert not found["lean"]["anomalies"]["train"]
    assert_same(outputs(tmp_path / "lean"), outputs(tmp_path / "beam"))


class Spy:
    """Records which path computed the statistics, and still computes them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        lean, beam = validate._statistics_in_memory, validate._beam_statistics

        def spied_lean(*args: Any, **kwargs: Any) -> Any:
            self.paths.append("lean")
            return lean(*args, **kwargs)

        def spied_beam(*args: Any, **kwargs: Any) -> Any:
            self.paths.append("beam")
            return beam(*args, **kwargs)

        monkeypatch.setattr(validate, "_statistics_in_memory", spied_lean)
        monkeypatch.setattr(validate, "_beam_statistics", spied_beam)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = tabular_rows(40, seed=5)
    return builders.write_examples(tmp_path_factory.mktemp("small") / "examples", "tabular",
                                   TABULAR_FEATURES, ["low", "high"],
                                   {"train": rows[:30], "eval": rows[30:]})


@pytest.mark.parametrize(("threshold", "args", "expected"), [
    (40, [], ["lean"]),  # 30 + 10 examples: at the threshold, in memory
    (39, [], ["beam"]),  # one example over
    (40, ["--runner=FnApiRunner"], ["beam"]),  # a runner named: Beam whatever the size
    (40, ["--runner", "FnApiRunner"], ["beam"]),
])
def test_the_threshold_and_a_named_runner_pick_the_path(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int,
    args: list[str], expected: list[str]
) -> None:
    spy = Spy(monkeypatch)
    summary = run(small, tmp_path, threshold, monkeypatch, beam_pipeline_args=args)
    assert spy.paths == expected
    assert summary["statistics"] == {"train": 30, "eval": 10}


def test_without_counts_in_the_metadata_beam_computes(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    examples = tmp_path / "examples"
    shutil.copytree(small, examples)
    meta = read_json(examples / EXAMPLES_META, "examples metadata")
    del meta["counts"]
    write_json(examples / EXAMPLES_META, meta)
    spy = Spy(monkeypatch)
    run(examples, tmp_path / "out", LEAN, monkeypatch)
    assert spy.paths == ["beam"]


def test_a_string_feature_beyond_the_sketch_falls_back_to_beam(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over 1,024 distinct values TFDV's in-memory top values are approximate: Beam's exact
    counts are written instead, identical to a Beam-only run."""
    rows = tabular_rows(2 * _in_memory.MG_SKETCH_SIZE, seed=6)  # 2/3 of them distinct
    for i, row in enumerate(rows):
        row["machine"] = f"m{i}" if i % 3 else "m-common"
    examples = builders.write_examples(tmp_path / "examples", "tabular", TABULAR_FEATURES,
                                       ["low", "high"], {"train": rows, "eval": rows[:50]})
    spy = Spy(monkeypatch)
    run(examples, tmp_path / "fallback", LEAN, monkeypatch)
    assert spy.paths == ["lean", "beam"]
    run(examples, tmp_path / "beam", BEAM, monkeypatch)
    assert_same(outputs(tmp_path / "fallback"), outputs(tmp_path / "beam"))
