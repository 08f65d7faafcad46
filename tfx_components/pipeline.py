"""The sensor chain as a TFX pipeline: edgeship's six steps under TFX's orchestrators.

    from edgeship.tfx.pipeline import sensor_pipeline, run_local
    run_local(sensor_pipeline("work/root", "work/metadata.sqlite", bucket_url="file:///ota",
                              keys_dir="keys"))   # keys from `edgeship keys init keys`

ML Metadata lives in SQLite at ``metadata_path``; with ``enable_cache`` (the default) a second
run with nothing changed reuses every step's outputs, as TFX does.
"""

from __future__ import annotations

from typing import Any

# TFX's public API (tfx.v1), whose package re-exports it without __all__
from tfx.v1 import dsl, orchestration  # pyright: ignore[reportPrivateImportUsage]

from edgeship.edge_pusher.keys import check_online_keys
from edgeship.tfx.components import EdgePusher, Evaluate, Ingest, Quantize, Train, Validate


def sensor_pipeline(pipeline_root: str, metadata_path: str, bucket_url: str, keys_dir: str,
                    data_path: str = "builtin:sensor", model_name: str = "sensor-fault",
                    enable_cache: bool = True, **params: Any) -> dsl.Pipeline:
    """The six steps on vibration recordings (the KFP sensor pipeline's data parameters);
    ``params`` are ``<step>__<parameter>`` overrides, e.g. ``train__epochs=5``."""
    def step(name: str, **defaults: Any) -> dict[str, Any]:
        prefix = f"{name}__"
        return defaults | {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}

    unknown = [k for k in params if k.split("__")[0] not in
               ("ingest", "validate", "train", "evaluate", "quantize", "push")]
    if unknown:
        raise TypeError(f"unknown step parameter(s) {', '.join(unknown)}: use <step>__<name>")
    ingest_params = step("ingest", kind="sensor", data_path=data_path, label="label",
                         group_column="machine_id", time_column="time")
    ingest = Ingest(**ingest_params)
    examples = ingest.outputs["examples"]
    validate = Validate(examples=examples, **step("validate"))
    train = Train(examples=examples, **step("train"))
    evaluate = Evaluate(examples=examples, model=train.outputs["model"],
                        # accuracy per recording group, whatever the user's column is called
                        **step("evaluate", slice_feature=ingest_params["group_column"],
                               min_accuracy=0.8))
    quantize = Quantize(model=train.outputs["model"], examples=examples,
                        model_blessing=evaluate.outputs["blessing"], **step("quantize"))
    push = EdgePusher(quantized=quantize.outputs["quantized"],
                      model_blessing=evaluate.outputs["blessing"],
                      quantize_blessing=quantize.outputs["blessing"],
                      **step("push", bucket_url=bucket_url, keys_dir=keys_dir,
                             model_name=model_name))
    push.add_upstream_node(validate)  # no model is published from data that failed validation
    return dsl.Pipeline(
        pipeline_name="edgeship-sensor",
        pipeline_root=pipeline_root,
        components=[ingest, validate, train, evaluate, quantize, push],
        metadata_connection_config=orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path),
        enable_cache=enable_cache,
    )


def run_local(pipeline: dsl.Pipeline) -> None:
    """Run under TFX's LocalDagRunner (in this process, one step after another). The pushers'
    keys are checked first: keys that cannot sign stop the run before its first step, not at
    push minutes later. (A pipeline compiled for a cluster names keys inside its pods, so
    :func:`sensor_pipeline` cannot check them.)"""
    for component in pipeline.components:
        if isinstance(component, EdgePusher):
            check_online_keys(component.exec_properties["keys_dir"])
    orchestration.LocalDagRunner().run(pipeline)
