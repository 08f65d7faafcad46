"""edgeship's Quantize and EdgePusher after TFX's own CsvExampleGen, Trainer (with the module file
the docs ship, docs/examples/tfx_trainer_module.py) and Evaluator, under LocalDagRunner; then a
device activates what was pushed.

Runs in .venv-tfx (`make test-tfx`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.orchestration import metadata

from edgeship.edge_pusher import keys
from edgeship.errors import InputError
from edgeship.tfx import EdgePusher, Quantize
from edgeship.tfx.pipeline import run_local
from tests.helpers import REPO

MODULE_FILE = REPO / "docs" / "examples" / "tfx_trainer_module.py"
FEATURES = ["vibration", "current", "temperature"]


def motor_csv(folder: Path, rows: int = 600) -> Path:
    """CsvExampleGen's input: a folder with one CSV; ``fault`` is an integer class index."""
    rng = np.random.default_rng(3)
    vibration, current, temperature = rng.normal(size=(3, rows))
    fault = (vibration + 0.8 * current > 0.3).astype(int)
    folder.mkdir(parents=True)
    lines = ["vibration,current,temperature,fault"] + [
        f"{v:.5f},{c:.5f},{t:.5f},{f}"
        for v, c, t, f in zip(vibration, current, temperature, fault, strict=True)]
    (folder / "motor.csv").write_text("\n".join(lines) + "\n")
    return folder


def pipeline(work: Path, signature: str) -> tfx.dsl.Pipeline:
    example_gen = tfx.components.CsvExampleGen(input_base=str(motor_csv(work / "data")))
    trainer = tfx.components.Trainer(
        module_file=str(MODULE_FILE), examples=example_gen.outputs["examples"],
        train_args=tfx.proto.TrainArgs(num_steps=300), eval_args=tfx.proto.EvalArgs(num_steps=5))
    accuracy = tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=(
        tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
            lower_bound={"value": 0.8}))))
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
        eval_config=tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(label_key="fault", signature_name="serving_default")],
            slicing_specs=[tfma.SlicingSpec()],
            metrics_specs=[tfma.MetricsSpec(metrics=[accuracy])]))
    quantize = Quantize(model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
                        model_blessing=evaluator.outputs["blessing"], variants=["int8"],
                        signature=signature, label_key="fault", feature_keys=FEATURES,
                        classes=["ok", "fault"], latency_runs=5)
    pusher = EdgePusher(quantized=quantize.outputs["quantized"],
                        model_blessing=evaluator.outputs["blessing"],
                        quantize_blessing=quantize.outputs["blessing"],
                        bucket_url=str(work / "bucket"), keys_dir=str(work / "keys"),
                        model_name="motor")
    return tfx.dsl.Pipeline(
        pipeline_name="motor", pipeline_root=str(work / "root"),
        components=[example_gen, trainer, evaluator, quantize, pusher],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            str(work / "metadata.sqlite")))


@pytest.mark.slow
def test_quantize_and_push_take_tfx_trainers_model_and_evaluators_blessing(tmp_path) -> None:
    from edgeship.device import Agent

    keys.init_keys(tmp_path / "keys")
    run_local(pipeline(tmp_path, signature="serving_float"))

    (blessing,) = (tmp_path / "root" / "Evaluator" / "blessing").glob("*/BLESSED")
    (report,) = (tmp_path / "root" / "Quantize" / "quantized").glob(
        "*/quantization_report.json")
    measured = json.loads(report.read_text())
    assert measured["blessed"] and "evaluate blessed the model" in measured["reasons"]
    assert measured["classes"] == ["ok", "fault"] and measured["float_accuracy"] > 0.8
    agent = Agent(str(tmp_path / "device"), str(tmp_path / "bucket"), device_id="motor-1",
                  trusted_root=str(tmp_path / "keys" / "root_history" / "1.root.json"))
    assert agent.poll_once().action == "updated"
    assert agent.status()["active"]["name"] == "motor"


@pytest.mark.slow
def test_the_tf_example_signature_is_refused_in_one_line_naming_it(tmp_path) -> None:
    keys.init_keys(tmp_path / "keys")
    with pytest.raises(InputError) as err:
        run_local(pipeline(tmp_path, signature="serving_default"))
    message = str(err.value)
    assert "'serving_default' takes strings ('examples', serialized tf.Example as TFX " \
           "exports)" in message and "\n" not in message, message
    assert not (tmp_path / "bucket").exists()
