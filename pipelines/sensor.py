"""Sensor pipeline: three-axis vibration recordings, cut into windows, to a fault classifier.

The flagship edge use case: a 1-D CNN small enough for a microcontroller-class CPU or an Edge
TPU, trained on the bundled rotating-machine generator (``builtin:sensor``) or on a CSV with a
time column, channel columns, a label column and a group column (machine or session id).

A parameter's default is its step's own (the step's ``*Params``), unless this pipeline's data
asks for another: those are the literals below.
"""

from kfp import dsl

from edgeship.components.evaluate.executor import EvaluateParams as Evaluate
from edgeship.components.ingest.executor import IngestParams as Ingest
from edgeship.components.quantize.executor import QuantizeParams as Quantize
from edgeship.components.train.executor import TrainParams as Train
from edgeship.components.validate.executor import ValidateParams as Validate
from edgeship.edge_pusher.push import PushParams as Push
from edgeship.pipelines._chain import build_chain
from edgeship.pipelines.cluster import CLUSTER_BUCKET_URL


@dsl.pipeline(name="edgeship-sensor", description="Vibration windows to a signed int8 model")
def sensor_pipeline(
    data_path: str = "builtin:sensor",
    label: str = Ingest.label,
    group_column: str = "machine_id",
    time_column: str = "time",
    window: int = Ingest.window,
    stride: int = Ingest.stride,
    eval_ratio: float = Ingest.eval_ratio,
    max_bad_rows: int = Ingest.max_bad_rows,
    schema_path: str = Validate.schema_path,
    epochs: int = Train.epochs,
    min_accuracy: float = 0.8,
    require_beats_majority: bool = Evaluate.require_beats_majority,
    min_lift_over_majority: float = Evaluate.min_lift_over_majority,
    max_accuracy_drop: float = Quantize.max_accuracy_drop,
    model_name: str = "sensor-fault",
    bucket_url: str = CLUSTER_BUCKET_URL,
    keys_dir: str = Push.keys_dir,
    channel: str = Push.channel,
    rollout_percent: int = Push.rollout_percent,
) -> None:
    build_chain(
        kind="sensor",
        ingest_args=dict(
            data_path=data_path,
            label=label,
            group_column=group_column,
            time_column=time_column,
            window=window,
            stride=stride,
            eval_ratio=eval_ratio,
            max_bad_rows=max_bad_rows,
        ),
        schema_path=schema_path,
        epochs=epochs,
        min_accuracy=min_accuracy,
        require_beats_majority=require_beats_majority,
        min_lift_over_majority=min_lift_over_majority,
        max_accuracy_drop=max_accuracy_drop,
        model_name=model_name,
        bucket_url=bucket_url,
        keys_dir=keys_dir,
        channel=channel,
        rollout_percent=rollout_percent,
        slice_feature=group_column,
    )
