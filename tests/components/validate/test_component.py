"""The validate KFP component as a pipeline step: kfp.local runs it in a subprocess, the way
``edgeship run`` does, and its artifacts, Markdown report and summary come back.

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

import json
from pathlib import Path

import pytest

from tests.helpers import builders


@pytest.mark.slow
def test_component_runs_under_kfp_local(tmp_path: Path) -> None:
    from kfp import dsl, local

    from edgeship.components.validate.component import validate

    examples = builders.sensor_examples(tmp_path / "examples", n=60, window=16)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )

    @dsl.pipeline(name="validate-only")
    def only_validate(examples_uri: str) -> str:
        imported = dsl.importer(
            artifact_uri=examples_uri, artifact_class=dsl.Dataset, reimport=False
        )
        return validate(examples=imported.output, drift_js_threshold=0.2).outputs["Output"]

    task = only_validate(examples_uri=str(examples))
    summary = json.loads(task.output)
    assert summary["num_anomalies"] == 0
    assert summary["statistics"] == {"train": 45, "eval": 15}
    (step,) = [p for p in Path(tmp_path / "root").glob("*/validate") if p.is_dir()]
    assert (step / "statistics" / "Split-eval" / "FeatureStats.pb").stat().st_size > 0
    assert "ax" in (step / "schema" / "schema.pbtxt").read_text()
    assert (step / "anomalies" / "Split-train" / "SchemaDiff.pb").is_file()
    assert "No anomalies." in (step / "report").read_text()
