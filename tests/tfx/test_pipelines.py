"""The TFX pipelines (``edgeship.tfx.pipeline``) are the KFP pipelines' chains: same data kind,
same defaults, same parameters reaching the same steps, so a run is the same model on either
orchestrator. TFX's environment has no kfp, so the KFP side is read from its source."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from edgeship.tfx.pipeline import (
    DEFAULTS,
    PIPELINES,
    sensor_pipeline,
    tabular_pipeline,
    vision_pipeline,
)
from edgeship.tfx.run import COMPONENTS, STEP_PARAMS
from tests.helpers import REPO

#: Where ``pipelines/_chain.py``'s ``build_chain`` sends each of its own arguments (those of
#: ``ingest_args`` go to ingest).
CHAIN_STEPS = {"schema_path": "validate", "epochs": "train", "min_accuracy": "evaluate",
               "require_beats_majority": "evaluate", "min_lift_over_majority": "evaluate",
               "slice_feature": "evaluate", "max_accuracy_drop": "quantize",
               "model_name": "push", "bucket_url": "push", "keys_dir": "push",
               "channel": "push", "rollout_percent": "push", "kind": "ingest"}
#: The KFP pipelines' aliases of the steps' dataclasses (``Ingest.label``).
ALIASES = {"Ingest": "ingest", "Validate": "validate", "Train": "train",
           "Evaluate": "evaluate", "Quantize": "quantize", "Push": "push"}
#: The cluster's bucket and keys: the TFX pipelines take them as arguments, with no default.
CLUSTER_ONLY = {"bucket_url", "keys_dir"}


def kfp_step_values(name: str) -> dict[tuple[str, str], Any]:
    """(step, parameter) -> the value the KFP pipeline ``name`` gives it when run with its
    defaults: its signature's defaults, routed as its ``build_chain(...)`` call routes them."""
    tree = ast.parse((REPO / "pipelines" / f"{name}.py").read_text())
    fn = next(node for node in tree.body
              if isinstance(node, ast.FunctionDef) and node.name == f"{name}_pipeline")
    defaults: dict[str, Any] = {}
    for arg, node in zip(fn.args.args[-len(fn.args.defaults):], fn.args.defaults, strict=True):
        if isinstance(node, ast.Constant):
            defaults[arg.arg] = node.value
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            defaults[arg.arg] = getattr(STEP_PARAMS[ALIASES[node.value.id]], node.attr)
        else:
            assert arg.arg in CLUSTER_ONLY, f"{name}: {arg.arg}'s default is not read here"
    call = next(node for node in ast.walk(fn) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name) and node.func.id == "build_chain")
    values: dict[tuple[str, str], Any] = {}
    for keyword in call.keywords:
        assert keyword.arg is not None
        if keyword.arg == "ingest_args":
            assert isinstance(keyword.value, ast.Call)
            routed = [(k.arg, k.value, "ingest") for k in keyword.value.keywords]
        else:
            routed = [(keyword.arg, keyword.value, CHAIN_STEPS[keyword.arg])]
        for param, node, step in routed:
            assert param is not None
            if isinstance(node, ast.Constant):
                values[step, param] = node.value
            elif isinstance(node, ast.Name) and node.id in defaults:  # a pipeline parameter
                values[step, param] = defaults[node.id]
            else:
                assert isinstance(node, ast.Name) and node.id in CLUSTER_ONLY, (name, param)
    return values


def _steps(pipeline) -> dict[str, Any]:
    by_id = {component.id: component for component in pipeline.components}
    return {step: by_id[component] for component, step in zip(COMPONENTS, STEP_PARAMS,
                                                                strict=True)}


@pytest.mark.parametrize("name", ["sensor", "tabular", "vision"])
def test_a_tfx_pipeline_runs_its_steps_as_the_kfp_pipeline_does(name: str, tmp_path) -> None:
    """Every parameter the KFP pipeline passes has the same value in the TFX pipeline's
    components, and every other parameter is its step's own default on both routes."""
    kfp = kfp_step_values(name)
    assert ("ingest", "kind") in kfp and ("push", "model_name") in kfp  # the reading works
    steps = _steps(PIPELINES[name](str(tmp_path / "root"), str(tmp_path / "m.sqlite"),
                                   "file:///b", "keys"))
    for step, params in STEP_PARAMS.items():
        for field in dataclasses.fields(params):
            if field.name in CLUSTER_ONLY and step == "push":
                continue
            shown = steps[step].exec_properties.get(field.name)
            if (step, field.name) in kfp:
                assert shown == kfp[step, field.name], (step, field.name)
            elif field.default is not dataclasses.MISSING:
                assert shown == field.default, (step, field.name)


@pytest.mark.parametrize("name", ["sensor", "tabular", "vision"])
def test_a_tfx_pipelines_own_defaults_are_the_kfp_pipelines(name: str) -> None:
    """What :data:`DEFAULTS` sets beside the steps' defaults, the KFP pipeline sets alike."""
    kfp = kfp_step_values(name)
    for step, params in DEFAULTS[name].items():
        for param, value in params.items():
            assert kfp.get((step, param)) == value, (name, step, param)


def test_a_tabular_run_takes_the_kfp_tabular_pipelines_parameters(tmp_path: Path) -> None:
    pipeline = tabular_pipeline(str(tmp_path / "root"), str(tmp_path / "m.sqlite"),
                                "file:///b", "keys", evaluate__slice_feature="island",
                                ingest__exclude_columns="id", ingest__label="species")
    steps = _steps(pipeline)
    assert pipeline.pipeline_info.pipeline_name == "edgeship-tabular"
    assert steps["ingest"].exec_properties["kind"] == "tabular"
    assert steps["ingest"].exec_properties["data_path"] == "builtin:tabular"
    assert steps["ingest"].exec_properties["exclude_columns"] == "id"
    assert steps["ingest"].exec_properties["label"] == "species"
    assert steps["train"].exec_properties["epochs"] == 60
    assert steps["evaluate"].exec_properties["slice_feature"] == "island"
    assert steps["evaluate"].exec_properties["min_accuracy"] == 0.7
    assert steps["push"].exec_properties["model_name"] == "tabular"
    # a table's evaluate slices by nothing unless asked, whatever ingest's group_column
    unsliced = _steps(tabular_pipeline(str(tmp_path / "r2"), str(tmp_path / "m2.sqlite"),
                                       "file:///b", "keys", ingest__group_column="site"))
    assert unsliced["evaluate"].exec_properties["slice_feature"] == ""


def test_a_vision_run_takes_the_kfp_vision_pipelines_parameters(tmp_path: Path) -> None:
    pipeline = vision_pipeline(str(tmp_path / "root"), str(tmp_path / "m.sqlite"), "file:///b",
                               "keys", data_path="/data/photos", model_name="photos",
                               ingest__image_size=32, ingest__channels=3)
    steps = _steps(pipeline)
    assert pipeline.pipeline_info.pipeline_name == "edgeship-vision"
    assert steps["ingest"].exec_properties["kind"] == "image"
    assert steps["ingest"].exec_properties["data_path"] == "/data/photos"
    assert steps["ingest"].exec_properties["image_size"] == 32
    assert steps["ingest"].exec_properties["channels"] == 3
    assert steps["train"].exec_properties["epochs"] == 20
    assert steps["evaluate"].exec_properties["min_accuracy"] == 0.8
    assert steps["evaluate"].exec_properties["slice_feature"] == ""
    assert steps["push"].exec_properties["model_name"] == "photos"
    # image size and channels 0 (the step's default): read from the images, as on KFP
    default = _steps(vision_pipeline(str(tmp_path / "r2"), str(tmp_path / "m2.sqlite"),
                                     "file:///b", "keys"))
    assert (default["ingest"].exec_properties["image_size"],
            default["ingest"].exec_properties["channels"]) == (0, 0)


def test_every_pipeline_publishes_only_after_validate(tmp_path: Path) -> None:
    for name, make in PIPELINES.items():
        steps = _steps(make(str(tmp_path / name), str(tmp_path / f"{name}.sqlite"),
                            "file:///b", "keys"))
        assert steps["validate"] in steps["push"].upstream_nodes, name


def test_sensor_slices_by_its_group_column_unless_told_otherwise(tmp_path: Path) -> None:
    steps = _steps(sensor_pipeline(str(tmp_path / "root"), str(tmp_path / "m.sqlite"),
                                   "file:///b", "keys", ingest__group_column="session",
                                   evaluate__slice_feature=""))
    assert steps["evaluate"].exec_properties["slice_feature"] == ""
