"""Tabular pipeline: a CSV of feature columns (numeric and string) to a small MLP.

String columns are one-hot encoded outside the model (vocabulary from the train split), so the
exported model takes one numeric tensor and converts to a full-integer TFLite model.

A parameter's default is its step's own (the step's ``*Params``), unless this pipeline's data
asks for another: those are the literals below.
"""

from kfp import dsl

from edgeship.components.evaluate.executor import EvaluateParams as Evaluate
from edgeship.components.ingest.executor import IngestParams as Ingest
from edgeship.components.quantize.executor import QuantizeParams as Quantize
from edgeship.components.validate.executor import ValidateParams as Validate
from edgeship.edge_pusher.push import PushParams as Push
from edgeship.pipelines._chain import build_chain
from edgeship.pipelines.cluster import CLUSTER_BUCKET_URL


@dsl.pipeline(name="edgeship-tabular", description="Feature columns to a signed int8 model")
def tabular_pipeline(
    data_path: str = "builtin:tabular",
    label: str = Ingest.label,
    eval_ratio: float = Ingest.eval_ratio,
    max_bad_rows: int = Ingest.max_bad_rows,
    exclude_columns: str = Ingest.exclude_columns,
    schema_path: str = Validate.schema_path,
    epochs: int = 60,
    min_accuracy: float = 0.7,
    require_beats_majority: bool = Evaluate.require_beats_majority,
    min_lift_over_majority: float = Evaluate.min_lift_over_majority,
    max_accuracy_drop: float = Quantize.max_accuracy_drop,
    slice_feature: str = Evaluate.slice_feature,
    model_name: str = "tabular",
    bucket_url: str = CLUSTER_BUCKET_URL,
    keys_dir: str = Push.keys_dir,
    channel: str = Push.channel,
    rollout_percent: int = Push.rollout_percent,
) -> None:
    build_chain(
        kind="tabular",
        ingest_args=dict(
            data_path=data_path, label=label, eval_ratio=eval_ratio, max_bad_rows=max_bad_rows,
            exclude_columns=exclude_columns,
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
        slice_feature=slice_feature,
    )
