"""edgeship's three pipelines as TFX pipelines: the six steps under TFX's orchestrators.

    from edgeship.tfx.pipeline import run_local, sensor_pipeline
    run_local(sensor_pipeline("work/root", "work/metadata.sqlite", bucket_url="file:///ota",
                              keys_dir="keys"))   # keys from `edgeship keys init keys`

:func:`sensor_pipeline`, :func:`tabular_pipeline` and :func:`vision_pipeline` wire the same
chain (ingest -> validate -> train -> evaluate -> quantize -> push) on their data with the KFP
pipelines' defaults (``pipelines/sensor.py``, ``tabular.py``, ``vision.py``: a parameter takes
its step's own default unless the pipeline's data asks for another, :data:`DEFAULTS`), so a run
is the same model on either orchestrator; ``tests/tfx/test_pipelines.py`` holds the two routes
to the same values.

ML Metadata lives in SQLite at ``metadata_path``; with ``enable_cache`` (the default) a second
run with nothing changed reuses every step's outputs, as TFX does.
"""

from __future__ import annotations

from typing import Any

# TFX's public API (tfx.v1), whose package re-exports it without __all__
from tfx.v1 import dsl, orchestration  # pyright: ignore[reportPrivateImportUsage]

from edgeship.edge_pusher.keys import check_online_keys
from edgeship.tfx.components import EdgePusher, Evaluate, Ingest, Quantize, Train, Validate

STEPS = ("ingest", "validate", "train", "evaluate", "quantize", "push")

#: Per pipeline, per step: the defaults its data asks for instead of the step's own (the KFP
#: pipeline's literals). ``data_path`` and ``model_name`` are the pipeline functions' own
#: arguments.
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "sensor": {"ingest": {"kind": "sensor", "group_column": "machine_id", "time_column": "time"},
               "evaluate": {"min_accuracy": 0.8}},
    "tabular": {"ingest": {"kind": "tabular"}, "train": {"epochs": 60},
                "evaluate": {"min_accuracy": 0.7}},
    "vision": {"ingest": {"kind": "image"}, "train": {"epochs": 20},
               "evaluate": {"min_accuracy": 0.8}},
}


def sensor_pipeline(pipeline_root: str, metadata_path: str, bucket_url: str, keys_dir: str,
                    data_path: str = "builtin:sensor", model_name: str = "sensor-fault",
                    enable_cache: bool = True, **params: Any) -> dsl.Pipeline:
    """The six steps on vibration recordings, cut into windows per ``group_column``
    (``machine_id``), which evaluate also slices its accuracy by; ``params`` are
    ``<step>__<parameter>`` overrides, e.g. ``train__epochs=5``."""
    return _chain("sensor", pipeline_root, metadata_path, bucket_url, keys_dir, data_path,
                  model_name, enable_cache, params)


def tabular_pipeline(pipeline_root: str, metadata_path: str, bucket_url: str, keys_dir: str,
                     data_path: str = "builtin:tabular", model_name: str = "tabular",
                     enable_cache: bool = True, **params: Any) -> dsl.Pipeline:
    """The six steps on a CSV of feature columns (numeric and string) and a ``label``
    column; ``evaluate__slice_feature`` names a column to report accuracy per value of."""
    return _chain("tabular", pipeline_root, metadata_path, bucket_url, keys_dir, data_path,
                  model_name, enable_cache, params)


def vision_pipeline(pipeline_root: str, metadata_path: str, bucket_url: str, keys_dir: str,
                    data_path: str = "builtin:vision", model_name: str = "vision",
                    enable_cache: bool = True, **params: Any) -> dsl.Pipeline:
    """The six steps on a folder of ``<class>/*.png|*.jpg`` images (labels are the folders'
    names; ``ingest__image_size`` and ``ingest__channels`` 0 take them from the images)."""
    return _chain("vision", pipeline_root, metadata_path, bucket_url, keys_dir, data_path,
                  model_name, enable_cache, params)


#: ``edgeship run PIPELINE --orchestrator tfx``'s pipelines, by the KFP route's names.
PIPELINES = {"sensor": sensor_pipeline, "tabular": tabular_pipeline,
             "vision": vision_pipeline}


def _chain(name: str, pipeline_root: str, metadata_path: str, bucket_url: str, keys_dir: str,
           data_path: str, model_name: str, enable_cache: bool,
           params: dict[str, Any]) -> dsl.Pipeline:
    """The chain of pipeline ``name``: each step's parameters are its step's defaults, then the
    pipeline's (:data:`DEFAULTS`), then ``params``' ``<step>__<parameter>`` overrides."""
    unknown = [k for k in params if k.split("__")[0] not in STEPS]
    if unknown:
        raise TypeError(f"unknown step parameter(s) {', '.join(unknown)}: use <step>__<name>")

    def step(step_name: str, **defaults: Any) -> dict[str, Any]:
        prefix = f"{step_name}__"
        return (defaults | DEFAULTS[name].get(step_name, {})
                | {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})

    ingest_params = step("ingest", data_path=data_path)
    ingest = Ingest(**ingest_params)
    examples = ingest.outputs["examples"]
    validate = Validate(examples=examples, **step("validate"))
    train = Train(examples=examples, **step("train"))
    # sensor: accuracy per recording group, whatever the user's column is called
    slicing = ({"slice_feature": ingest_params["group_column"]} if name == "sensor" else {})
    evaluate = Evaluate(examples=examples, model=train.outputs["model"],
                        **step("evaluate", **slicing))
    quantize = Quantize(model=train.outputs["model"], examples=examples,
                        model_blessing=evaluate.outputs["blessing"], **step("quantize"))
    push = EdgePusher(quantized=quantize.outputs["quantized"],
                      model_blessing=evaluate.outputs["blessing"],
                      quantize_blessing=quantize.outputs["blessing"],
                      **step("push", bucket_url=bucket_url, keys_dir=keys_dir,
                             model_name=model_name))
    push.add_upstream_node(validate)  # no model is published from data that failed validation
    return dsl.Pipeline(
        pipeline_name=f"edgeship-{name}",
        pipeline_root=pipeline_root,
        components=[ingest, validate, train, evaluate, quantize, push],
        metadata_connection_config=orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path),
        enable_cache=enable_cache,
    )


def run_local(pipeline: dsl.Pipeline) -> None:
    """Run under TFX's LocalDagRunner (in this process, one step after another). The pushers'
    keys are checked first: keys that cannot sign stop the run before its first step, not at
    push minutes later. (A pipeline compiled for a cluster names keys inside its pods, so the
    pipeline functions cannot check them.)"""
    for component in pipeline.components:
        if isinstance(component, EdgePusher):
            check_online_keys(component.exec_properties["keys_dir"])
    orchestration.LocalDagRunner().run(pipeline)
