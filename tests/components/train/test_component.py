"""The train KFP component runs under kfp.local (SubprocessRunner) and fills its artifacts."""

import json
from pathlib import Path

import pytest

from edgeship.components.artifacts import MODEL_META, SERVING_DIR
from tests.helpers import builders


@pytest.mark.slow
def test_train_component_runs_locally(tmp_path: Path) -> None:
    from kfp import dsl, local

    from edgeship.components.train.component import train

    examples_dir = builders.sensor_examples(tmp_path / "examples")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def only_train(examples_uri: str) -> str:
        examples = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Dataset)
        task = train(examples=examples.output, epochs=3, hyperparameters={"filters": 8})
        return task.outputs["Output"]

    run = only_train(examples_uri=str(examples_dir))
    summary = json.loads(run.output)
    model_dir = Path(summary["model"])
    meta = json.loads((model_dir / MODEL_META).read_text())
    assert meta["hyperparameters"]["filters"] == 8  # KFP's 8.0 came back as an int
    assert meta["eval_accuracy"] == summary["eval_accuracy"]
    assert (model_dir / SERVING_DIR / "saved_model.pb").is_file()
    logs_dir = model_dir.parent / "logs"
    assert list((logs_dir / "train").glob("events.out.tfevents.*"))
