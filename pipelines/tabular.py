"""Tabular pipeline: a CSV of feature columns (numeric and string) to a small MLP.

String columns are one-hot encoded outside the model (vocabulary from the train split), so the
exported model takes one numeric tensor and converts to a full-integer TFLite model.
"""

from kfp import dsl

from edgeship.pipelines._chain import build_chain
from edgeship.pipelines.cluster import CLUSTER_BUCKET_URL, KEYS_DIR


@dsl.pipeline(name="edgeship-tabular", description="Feature columns to a signed int8 model")
def tabular_pipeline(
    data_path: str = "builtin:tabular",
    label: str = "label",
    eval_ratio: float = 0.2,
    max_bad_rows: int = 0,
    schema_path: str = "",
    epochs: int = 60,
    min_accuracy: float = 0.7,
    max_accuracy_drop: float = 1.0,
    slice_feature: str = "",
    model_name: str = "tabular",
    bucket_url: str = CLUSTER_BUCKET_URL,
    keys_dir: str = KEYS_DIR,
    channel: str = "stable",
    rollout_percent: int = 100,
) -> None:
    build_chain(
        kind="tabular",
        ingest_args=dict(
            data_path=data_path, label=label, eval_ratio=eval_ratio, max_bad_rows=max_bad_rows
        ),
        schema_path=schema_path,
        epochs=epochs,
        min_accuracy=min_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        model_name=model_name,
        bucket_url=bucket_url,
        keys_dir=keys_dir,
        channel=channel,
        rollout_percent=rollout_percent,
        slice_feature=slice_feature,
    )
