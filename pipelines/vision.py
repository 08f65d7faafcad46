"""Vision pipeline: a folder of ``<class>/*.png|*.jpg`` images to a small depthwise-separable CNN.

Runs on scikit-learn's bundled digits (``builtin:vision``) or on a user's image folder.
"""

from kfp import dsl

from edgeship.pipelines._chain import build_chain
from edgeship.pipelines.cluster import CLUSTER_BUCKET_URL, KEYS_DIR


@dsl.pipeline(name="edgeship-vision", description="Image folder to a signed int8 model")
def vision_pipeline(
    data_path: str = "builtin:vision",
    image_size: int = 16,
    channels: int = 1,
    eval_ratio: float = 0.2,
    max_bad_rows: int = 0,
    schema_path: str = "",
    epochs: int = 20,
    min_accuracy: float = 0.8,
    max_accuracy_drop: float = 1.0,
    model_name: str = "vision",
    bucket_url: str = CLUSTER_BUCKET_URL,
    keys_dir: str = KEYS_DIR,
    channel: str = "stable",
    rollout_percent: int = 100,
) -> None:
    build_chain(
        kind="image",
        ingest_args=dict(
            data_path=data_path,
            image_size=image_size,
            channels=channels,
            eval_ratio=eval_ratio,
            max_bad_rows=max_bad_rows,
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
    )
