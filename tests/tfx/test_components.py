"""edgeship's steps as TFX components, under TFX's LocalDagRunner with ML Metadata in SQLite.

Runs in .venv-tfx (`make test-tfx`): Python 3.10 with TFX 1.16 and no kfp.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from tfx import v1 as tfx
from tfx.orchestration import metadata

from edgeship.components.evaluate.executor import EvaluateParams
from edgeship.components.ingest.executor import IngestParams
from edgeship.components.quantize.executor import QuantizeParams
from edgeship.components.train.executor import TrainParams
from edgeship.components.validate.executor import ValidateParams
from edgeship.edge_pusher import keys
from edgeship.edge_pusher.push import PushParams
from edgeship.errors import InputError
from edgeship.tfx import EdgePusher, Evaluate, Ingest, Quantize, Train, Validate
from edgeship.tfx.pipeline import run_local, sensor_pipeline


@pytest.mark.parametrize("component, params", [
    (Ingest, IngestParams), (Validate, ValidateParams), (Train, TrainParams),
    (Evaluate, EvaluateParams), (Quantize, QuantizeParams), (EdgePusher, PushParams)])
def test_a_components_parameters_are_its_steps(component, params) -> None:
    """Declared once: the execution parameters are the step's dataclass, defaults included."""
    assert set(component.SPEC_CLASS.PARAMETERS) == {f.name for f in dataclasses.fields(params)}
    made = component(**_required_inputs(component), **_required_params(params))
    for f in dataclasses.fields(params):
        if f.default is not dataclasses.MISSING:
            assert made.exec_properties[f.name] == f.default, f.name
        elif f.default_factory is not dataclasses.MISSING:  # lists and dicts travel as JSON
            assert json.loads(made.exec_properties[f.name]) == f.default_factory(), f.name


def test_mixed_dict_parameters_and_whole_numbers_for_floats_are_accepted() -> None:
    """Found in review: TFX gives all of a dict's values one schema, so the train README's
    own hyperparameters failed in TFX's launcher; min_accuracy=1 was a TypeError."""
    from edgeship.tfx._base import _decode

    examples = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples)
    hp = {"units": [256, 128], "dropout": 0.1, "name": None}
    train = Train(examples=examples, hyperparameters=hp)
    assert _decode(train.exec_properties["hyperparameters"], dict[str, object]) == hp
    model = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model)
    assert Evaluate(examples=examples, model=model, min_accuracy=1).exec_properties[
        "min_accuracy"] == 1.0


def _required_inputs(component) -> dict:
    return {name: tfx.dsl.Channel(type=spec.type)
            for name, spec in component.SPEC_CLASS.INPUTS.items() if not spec.optional}


def _required_params(params) -> dict:
    required = {"kind": "sensor", "data_path": "builtin:sensor", "bucket_url": "file:///b",
                "model_name": "m"}
    return {f.name: required[f.name] for f in dataclasses.fields(params)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def _artifacts(metadata_path: Path, type_name: str) -> list:
    config = metadata.sqlite_metadata_connection_config(str(metadata_path))
    with metadata.Metadata(config) as store:
        return store.store.get_artifacts_by_type(type_name)


@pytest.fixture(scope="module")
def sensor_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("tfx-sensor")
    keys.init_keys(work / "keys")
    run_local(sensor_pipeline(str(work / "root"), str(work / "metadata.sqlite"),
                              bucket_url=str(work / "bucket"), keys_dir=str(work / "keys"),
                              train__epochs=5))
    return work


@pytest.mark.slow
def test_the_sensor_chain_runs_under_tfx_and_a_device_activates_its_model(sensor_run) -> None:
    from edgeship.device import Agent

    blessings = _artifacts(sensor_run / "metadata.sqlite", "ModelBlessing")
    assert len(blessings) == 2  # evaluate's and quantize's
    assert all(b.custom_properties["blessed"].int_value == 1 for b in blessings)
    (model_id,) = {b.custom_properties["current_model_id"].int_value for b in blessings}
    trained = [m for m in _artifacts(sensor_run / "metadata.sqlite", "Model")
               if m.id == model_id]
    assert trained and (Path(trained[0].uri) / "Format-Serving").is_dir()  # train's model
    for blessing in blessings:
        assert (Path(blessing.uri) / "BLESSED").is_file()
    (pushed,) = _artifacts(sensor_run / "metadata.sqlite", "PushedModel")
    assert pushed.custom_properties["pushed"].int_value == 1
    assert pushed.custom_properties["pushed_version"].string_value == "1"
    assert pushed.custom_properties["pushed_destination"].string_value.endswith("/bucket")
    (examples,) = _artifacts(sensor_run / "metadata.sqlite", "Examples")
    assert json.loads(examples.properties["split_names"].string_value) == ["train", "eval"]
    (model,) = _artifacts(sensor_run / "metadata.sqlite", "Model")[:1]
    assert (Path(model.uri) / "Format-Serving" / "saved_model.pb").is_file()

    agent = Agent(str(sensor_run / "device"), str(sensor_run / "bucket"), device_id="d-1",
                  trusted_root=str(sensor_run / "keys" / "root_history" / "1.root.json"))
    assert agent.poll_once().action == "updated"
    assert agent.status()["active"] | {"verified": True} == agent.status()["active"]
    assert agent.status()["active"]["name"] == "sensor-fault"


@pytest.mark.slow
def test_a_second_run_with_nothing_changed_is_served_from_tfxs_cache(sensor_run) -> None:
    before = len(_artifacts(sensor_run / "metadata.sqlite", "PushedModel"))
    run_local(sensor_pipeline(str(sensor_run / "root"), str(sensor_run / "metadata.sqlite"),
                              bucket_url=str(sensor_run / "bucket"),
                              keys_dir=str(sensor_run / "keys"), train__epochs=5))
    assert len(_artifacts(sensor_run / "metadata.sqlite", "PushedModel")) == before
    timestamp = json.loads((sensor_run / "bucket" / "metadata" / "timestamp.json").read_text())
    assert timestamp["signed"]["version"] == 1  # nothing published again


def test_bad_input_ends_the_tfx_run_with_the_steps_own_line(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    rows = [f"{i},{i % 7},{'x' if i % 2 else 'y'}" for i in range(40)]
    rows[2] = "3,4,5,y"  # a field too many: line 4 of the file
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    ingest = Ingest(kind="tabular", data_path=str(data))
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="bad-input", pipeline_root=str(tmp_path / "root"), components=[ingest],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")))
    with pytest.raises(InputError) as raised:
        run_local(pipeline)
    message = str(raised.value)
    assert "\n" not in message and "data.csv" in message and "line 4" in message, message


def _pipeline(tmp_path: Path, components: list) -> tfx.dsl.Pipeline:
    return tfx.dsl.Pipeline(
        pipeline_name="interop", pipeline_root=str(tmp_path / "root"), components=components,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")))


@pytest.mark.slow
def test_tfxs_own_statistics_schema_and_validator_read_ingests_examples(tmp_path: Path) -> None:
    ingest = Ingest(kind="tabular", data_path="builtin:tabular")
    statistics = tfx.components.StatisticsGen(examples=ingest.outputs["examples"])
    schema = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"])
    validator = tfx.components.ExampleValidator(statistics=statistics.outputs["statistics"],
                                                schema=schema.outputs["schema"])
    run_local(_pipeline(tmp_path, [ingest, statistics, schema, validator]))
    (inferred,) = _artifacts(tmp_path / "metadata.sqlite", "Schema")
    text = (Path(inferred.uri) / "schema.pbtxt").read_text()
    assert 'name: "alcohol"' in text and 'name: "label"' in text
    stats = {Path(a.uri).name for a in _artifacts(tmp_path / "metadata.sqlite",
                                                  "ExampleStatistics")}
    assert stats
    for split in ("train", "eval"):
        assert list(Path(_artifacts(tmp_path / "metadata.sqlite", "ExampleStatistics")[0].uri,
                         f"Split-{split}").glob("FeatureStats.pb"))


def test_the_pipeline_compiles_for_kubeflow_v2_with_edgeships_image(tmp_path: Path) -> None:
    """KubeflowV2DagRunner's output targets Vertex AI (open-source KFP 2.x lacks its Resolver
    node); this checks that the spec is made and names the image the steps run in."""
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import (
        KubeflowV2DagRunner,
        KubeflowV2DagRunnerConfig,
    )

    runner = KubeflowV2DagRunner(config=KubeflowV2DagRunnerConfig(default_image="edgeship-tfx:t"),
                                 output_dir=str(tmp_path), output_filename="pipeline.json")
    runner.run(sensor_pipeline("gs://bucket/root", str(tmp_path / "unused.sqlite"),
                               bucket_url="s3://ota/fleet", keys_dir="/opt/keys"))
    spec = json.loads((tmp_path / "pipeline.json").read_text())
    text = json.dumps(spec)
    assert "edgeship-tfx:t" in text
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    assert len(executors) == 6
    assert "edgeship.tfx.components.QuantizeExecutor" in text


def test_run_local_checks_the_keys_before_the_first_step(tmp_path: Path) -> None:
    """tfx.md's run_local with a keys folder that was never made: one line, and no step ran."""
    from edgeship.errors import OtaError

    with pytest.raises(OtaError, match="keys init"):
        run_local(sensor_pipeline(str(tmp_path / "root"), str(tmp_path / "metadata.sqlite"),
                                  bucket_url=str(tmp_path / "bucket"),
                                  keys_dir=str(tmp_path / "keys")))
    assert not (tmp_path / "root").exists()
