"""evaluate's two paths, TFMA's results computed in memory and by TFMA in a Beam pipeline, write
the same files on the same data, and ``LEAN_MAX_EXAMPLES`` (or a named runner) picks the path.

The files are compared field by field: every metric of every slice and model (floats within
1e-6 relative: TFMA's accuracy is float32), every plot, the validation result and
``eval_config.json``; then whole ``run_evaluate`` runs on real models, one per path.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeship.components.artifacts import read_json
from edgeship.components.evaluate import _in_memory, _tfma
from edgeship.components.evaluate import executor as evaluate
from tests.components.evaluate.test_executor import setup  # noqa: F401  the shared models

CONSTANT = np.float32([0.2, 0.5, 0.3])


def tfma_files(out: str) -> dict[str, Any]:
    """Everything TFMA's loaders read from an evaluation folder, keyed for comparison."""
    from google.protobuf import json_format
    from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as w

    def by_slice(records: Any, field: str) -> dict[tuple[str, str], Any]:
        found = {}
        for record in records:
            slice_key = json_format.MessageToJson(record.slice_key, sort_keys=True)
            for entry in getattr(record, field):
                key = json_format.MessageToJson(entry.key, sort_keys=True)
                assert (slice_key, key) not in found, f"{slice_key} {key} twice"
                found[(slice_key, key)] = json_format.MessageToDict(entry.value)
        return found

    return {
        "files": sorted(os.listdir(out)),
        "metrics": by_slice(w.load_and_deserialize_metrics(out), "metric_keys_and_values"),
        "plots": by_slice(w.load_and_deserialize_plots(out), "plot_keys_and_values"),
        "attributions": sorted(json_format.MessageToJson(a, sort_keys=True)
                               for a in w.load_and_deserialize_attributions(out)),
        "validation": json_format.MessageToDict(w.load_and_deserialize_validation_result(out)),
        # parsed: a proto map's order in JSON (model_locations) varies from run to run in TFMA
        "eval_config": json.loads(Path(out, "eval_config.json").read_text()),
    }


def assert_same_files(lean: dict[str, Any], beam: dict[str, Any]) -> None:
    assert lean["files"] == beam["files"]
    assert lean["eval_config"] == beam["eval_config"]
    assert lean["validation"] == beam["validation"]
    assert lean["plots"] == beam["plots"]
    assert lean["attributions"] == beam["attributions"]
    assert sorted(lean["metrics"]) == sorted(beam["metrics"])
    for key, value in beam["metrics"].items():
        mine = lean["metrics"][key]
        if "doubleValue" in value and "doubleValue" in mine:
            a, b = float(mine["doubleValue"]), float(value["doubleValue"])
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6), key
        else:
            assert mine == value, key


def both(tmp_path: Path, labels: np.ndarray, probabilities: dict[str, np.ndarray],
         slice_feature: str = "", slice_values: list[Any] | None = None,
         min_accuracy: float = 0.0, max_decrease: float | None = None) -> dict[str, Any]:
    config = _tfma.eval_config(probabilities["candidate"].shape[1], "baseline" in probabilities,
                               slice_feature, min_accuracy, max_decrease)
    batch = _tfma.record_batch(labels, probabilities, slice_feature, slice_values)
    (tmp_path / "lean").mkdir()
    (tmp_path / "beam").mkdir()
    _in_memory.run(batch, config, str(tmp_path / "lean"))
    _tfma.run(batch, config, str(tmp_path / "beam"), [])
    lean, beam = tfma_files(str(tmp_path / "lean")), tfma_files(str(tmp_path / "beam"))
    assert_same_files(lean, beam)
    return lean


def random_case(n: int, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    probabilities = rng.dirichlet(np.ones(classes), n).astype(np.float32)
    right = rng.random(n) < 0.6  # better than chance, so the metrics are not all alike
    probabilities[right, labels[right]] += 1.0
    return labels, probabilities / probabilities.sum(axis=1, keepdims=True)


def test_baseline_slices_and_failed_thresholds(tmp_path: Path) -> None:
    labels, candidate = random_case(120)
    baseline = np.tile(CONSTANT, (120, 1))
    groups = [["north", "south", None, "east"][i % 4] for i in range(120)]
    lean = both(tmp_path, labels, {"candidate": candidate, "baseline": baseline}, "site",
                groups, min_accuracy=0.99, max_decrease=0.0)
    assert lean["validation"].get("validationOk") is not True  # both thresholds failed
    slices = {key[0] for key in lean["metrics"]}
    assert len(slices) == 4  # overall, north, south, east; no slice for a missing value


def test_one_model_passing_threshold_numeric_slice(tmp_path: Path) -> None:
    labels, candidate = random_case(90, classes=4, seed=1)
    lean = both(tmp_path, labels, {"candidate": candidate}, "machine",
                [i % 3 for i in range(90)], min_accuracy=0.1)
    assert lean["validation"]["validationOk"] is True


def test_no_thresholds_and_a_model_that_answers_one_class(tmp_path: Path) -> None:
    """TFMA's quirks kept: 'missing thresholds', and per-class precision and recall of a
    constant model as TFMA computes them (every example counted positive)."""
    labels, _ = random_case(60, seed=2)
    lean = both(tmp_path, labels, {"candidate": np.tile(CONSTANT, (60, 1))})
    assert lean["validation"].get("missingThresholds") is True
    recalls = [float(v["doubleValue"]) for (_, key), v in lean["metrics"].items()
               if '"recall"' in key]
    assert recalls == [1.0, 1.0, 1.0]


def test_slicing_by_the_label_with_ties_and_two_classes(tmp_path: Path) -> None:
    labels = np.array([0, 1] * 25)
    tied = np.full((50, 2), 0.5, dtype=np.float32)
    tied[::3] = [0.9, 0.1]
    names = ["low" if v == 0 else "high" for v in labels]
    both(tmp_path, labels, {"candidate": tied, "baseline": tied[::-1].copy()}, "label", names,
         min_accuracy=0.4, max_decrease=0.5)


# --- whole runs -----------------------------------------------------------------------------


def run(ref: dict[str, Any], out: Path, threshold: int, monkeypatch: pytest.MonkeyPatch,
        **params: Any) -> dict[str, Any]:
    monkeypatch.setattr(evaluate, "LEAN_MAX_EXAMPLES", threshold)
    summary = evaluate.run_evaluate(str(ref["examples"]), str(ref["weak"]),
                                    str(out / "blessing"), str(out / "evaluation"), **params)
    return {"summary": summary,
            "metrics": read_json(out / "evaluation" / evaluate.METRICS_FILE, "metrics"),
            "blessing": sorted(p.name for p in (out / "blessing").iterdir()),
            "files": tfma_files(str(out / "evaluation"))}


def test_run_evaluate_gives_the_same_verdict_metrics_and_files_on_both_paths(
    setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    params = {"baseline_model_path": str(setup["good"]), "slice_feature": "site",
              "min_accuracy": 0.5, "max_accuracy_decrease": 0.01, "min_class_recall": 0.3}
    lean = run(setup, tmp_path / "lean", 10**9, monkeypatch, **params)
    beam = run(setup, tmp_path / "beam", -1, monkeypatch, **params)
    assert_same_files(lean.pop("files"), beam.pop("files"))
    assert lean == beam
    assert not lean["summary"]["blessed"]
    assert set(lean["metrics"]["slices"]["site"]) == {"north", "south"}


class Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        lean, beam = _in_memory.run, _tfma.run

        def spied_lean(*args: Any) -> None:
            self.paths.append("lean")
            lean(*args)

        def spied_beam(*args: Any) -> None:
            self.paths.append("beam")
            beam(*args)

        monkeypatch.setattr(_in_memory, "run", spied_lean)
        monkeypatch.setattr(_tfma, "run", spied_beam)


def test_the_threshold_and_a_named_runner_pick_the_path(
    setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    examples = len(setup["labels"])
    spy = Spy(monkeypatch)
    run(setup, tmp_path / "at", examples, monkeypatch)
    run(setup, tmp_path / "over", examples - 1, monkeypatch)
    run(setup, tmp_path / "runner", examples, monkeypatch,
        beam_pipeline_args=["--runner=FnApiRunner"])
    assert spy.paths == ["lean", "beam", "beam"]
    assert evaluate.lean_path(examples, []) is (examples <= evaluate.LEAN_MAX_EXAMPLES)
    assert not evaluate.lean_path(1, ["--runner", "DirectRunner"])


@pytest.mark.slow  # each example runs TFMA's Beam pipeline (about 5 s)
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_small_split_gives_the_same_files_on_both_paths(data: st.DataObject,
                                                            tmp_path_factory: Any) -> None:
    """Labels, scores (ties, one-class answers, near-zero scores) and slices drawn at random:
    the in-memory path, which the blessing then rests on, writes what TFMA writes."""
    classes = data.draw(st.integers(2, 5), label="classes")
    n = data.draw(st.integers(1, 40), label="examples")
    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    weights = st.sampled_from([0.0, 1e-6, 0.25, 0.5, 1.0, 3.0])
    raw = np.array(data.draw(st.lists(st.lists(weights, min_size=classes, max_size=classes),
                                      min_size=n, max_size=n)), dtype=np.float64) + 1e-9
    candidate = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)
    probabilities = {"candidate": candidate}
    if data.draw(st.booleans(), label="baseline"):
        probabilities["baseline"] = np.tile(candidate[0], (n, 1))
    groups = data.draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n))
    sliced = data.draw(st.booleans(), label="sliced")
    both(tmp_path_factory.mktemp("drawn"), labels, probabilities, "site" if sliced else "",
         groups if sliced else None, min_accuracy=data.draw(st.sampled_from([0.0, 0.5])),
         max_decrease=data.draw(st.sampled_from([None, 0.1])))
