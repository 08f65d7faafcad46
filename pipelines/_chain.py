"""The step chain the three pipelines share: ingest -> validate -> train -> evaluate -> quantize
-> push. Each pipeline module only chooses its data kind and defaults.

Component modules are imported here, not at package import, so ``import edgeship.pipelines``
stays light (the device install carries this package without kfp).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent


def build_chain(
    *,
    kind: str,
    ingest_args: dict[str, Any],
    epochs: Any,
    min_accuracy: Any,
    require_beats_majority: Any,
    min_lift_over_majority: Any,
    max_accuracy_drop: Any,
    model_name: Any,
    bucket_url: Any,
    keys_dir: Any,
    channel: Any,
    rollout_percent: Any,
    schema_path: Any = "",
    slice_feature: Any = "",
) -> dict[str, Any]:
    """Add every step of the edge pipeline to the enclosing ``@dsl.pipeline``; return the tasks.

    Arguments are the pipeline's own parameters (KFP placeholders), passed on to the steps.
    """
    from kfp import dsl

    from edgeship.components.evaluate.component import evaluate
    from edgeship.components.ingest.component import ingest
    from edgeship.components.quantize.component import quantize
    from edgeship.components.train.component import train
    from edgeship.components.validate.component import validate
    from edgeship.edge_pusher.component import push
    from edgeship.pipelines.cluster import apply_cluster_settings

    # kfp types @dsl.component(...) as returning the function it decorates; each is a component,
    # whose call adds a PipelineTask to the pipeline
    ingest_op, validate_op, train_op, evaluate_op, quantize_op, push_op = cast(
        "tuple[BaseComponent, ...]", (ingest, validate, train, evaluate, quantize, push))
    ingest_task = ingest_op(kind=kind, **ingest_args)
    examples = ingest_task.outputs["examples"]
    validate_task = validate_op(examples=examples, schema_path=schema_path)
    # Train reads the Examples directly; running it after validate means anomalies stop the run.
    train_task = train_op(examples=examples, epochs=epochs).after(validate_task)
    evaluate_task = evaluate_op(
        examples=examples,
        model=train_task.outputs["model"],
        min_accuracy=min_accuracy,
        require_beats_majority=require_beats_majority,
        min_lift_over_majority=min_lift_over_majority,
        slice_feature=slice_feature,
    )
    quantize_task = quantize_op(
        model=train_task.outputs["model"],
        examples=examples,
        model_blessing=evaluate_task.outputs["blessing"],
        max_accuracy_drop=max_accuracy_drop,
    )
    push_task = push_op(
        quantized_models=quantize_task.outputs["quantized"],
        evaluate_blessing=evaluate_task.outputs["blessing"],
        quantize_blessing=quantize_task.outputs["blessing"],
        pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        model_name=model_name,
        bucket_url=bucket_url,
        keys_dir=keys_dir,
        channel=channel,
        rollout_percent=rollout_percent,
    )
    # On a cluster the push step's credentials and keys come from Kubernetes objects, never
    # from parameters; kfp.local ignores this platform config.
    apply_cluster_settings(push_task)
    return {
        "ingest": ingest_task,
        "validate": validate_task,
        "train": train_task,
        "evaluate": evaluate_task,
        "quantize": quantize_task,
        "push": push_task,
    }
