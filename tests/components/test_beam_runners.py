"""The Beam steps (ingest, validate, evaluate) under Beam's multi-process portable mode: every
transform, and what it carries, is serialized to worker processes as a Flink, Spark or Dataflow
runner would do it, and the results equal the in-process runner's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeship.components.evaluate.executor import run_evaluate
from edgeship.components.ingest.executor import run_ingest
from edgeship.components.validate.executor import run_validate
from tests.helpers.builders import tabular_mlp, train_and_export
from tests.helpers.records import read_split

MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    import numpy as np

    path = tmp_path_factory.mktemp("table") / "plant.csv"
    rng = np.random.default_rng(0)
    lines = ["temp,site,state"]
    for i in range(600):
        state = ("ok", "hot")[i % 2]
        lines.append(f"{rng.normal(3.0 * (i % 2)):.3f},{('north', 'south')[i % 3 == 0]},{state}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_ingest_validate_and_evaluate_run_on_worker_processes(table, tmp_path) -> None:
    multi, single = tmp_path / "multi", tmp_path / "single"
    summary = run_ingest("tabular", str(table), str(multi), label="state",
                         beam_pipeline_args=MULTI_PROCESS)
    assert summary == run_ingest("tabular", str(table), str(single), label="state") | {
        "examples": str(multi)}
    for split in ("train", "eval"):  # the same examples, whichever runner wrote them
        key = sorted(json.dumps(r, sort_keys=True) for r in read_split(multi, split))
        assert key == sorted(json.dumps(r, sort_keys=True) for r in read_split(single, split))

    checked = run_validate(str(multi), str(tmp_path / "stats"), str(tmp_path / "schema"),
                           str(tmp_path / "anomalies"), beam_pipeline_args=MULTI_PROCESS)
    assert checked["num_anomalies"] == 0 and checked["statistics"] == summary["rows"]

    model = train_and_export(multi, tmp_path / "model", tabular_mlp, epochs=5)
    evaluated = run_evaluate(str(multi), str(model), str(tmp_path / "blessing"),
                             str(tmp_path / "evaluation"), beam_pipeline_args=MULTI_PROCESS)
    in_process = run_evaluate(str(multi), str(model), str(tmp_path / "blessing1"),
                              str(tmp_path / "evaluation1"))
    assert evaluated["examples"] == summary["rows"]["eval"]
    assert evaluated["accuracy"] == pytest.approx(in_process["accuracy"])
    assert evaluated["confusion_matrix"] == in_process["confusion_matrix"]


def test_count_progress_passes_elements_through_and_counts_them(capsys, monkeypatch) -> None:
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from edgeship.components import progress
    from edgeship.components._beam import count_progress

    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # a line for every element
    for _run in range(2):  # a second run counts from zero again
        with progress.scope("ingest"), beam.Pipeline() as pipeline:
            rows = (pipeline | beam.Create([[1, 2], [3], [4, 5, 6]])
                    | count_progress("ingest", "rows", size=len))
            assert_that(rows, equal_to([[1, 2], [3], [4, 5, 6]]))
        printed = [progress.parse(line) for line in capsys.readouterr().out.splitlines()]
        counts = [int(text.split()[0]) for step, text in filter(None, printed)
                  if step == "ingest"]
        assert len(counts) == 3 and max(counts) == 6
