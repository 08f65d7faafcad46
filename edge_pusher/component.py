"""KFP interface of the push step; the work is in ``edgeship.edge_pusher.push`` (no kfp)."""

from typing import NamedTuple

# kfp ships neither stubs nor py.typed; the type checker reads its classes from its source.
from kfp import dsl  # pyright: ignore[reportMissingTypeStubs]
from kfp.dsl import Input, Model, Output  # pyright: ignore[reportMissingTypeStubs]

from edgeship.artifact_types import ModelBlessing, PushedModel
from edgeship.image import IMAGE


# Defaults are literals: KFP runs this function's source as a script of its own, where no
# module-level name exists. keys_dir's is edgeship.image.KEYS_DIR (a test checks
# that they agree). kfp types its decorator's ``func`` as returning Unknown, and the return
# annotation below is KFP's spelling, not a type a checker reads: the two rules are waived for
# these lines only; the body is checked in full.
@dsl.component(base_image=IMAGE, install_kfp_package=False)  # pyright: ignore[reportUnknownMemberType, reportUntypedFunctionDecorator]
def push(  # pyright: ignore[reportUnknownParameterType]
    quantized_models: Input[Model],
    evaluate_blessing: Input[ModelBlessing],
    quantize_blessing: Input[ModelBlessing],
    pushed_model: Output[PushedModel],
    bucket_url: str,
    model_name: str,
    keys_dir: str = "/opt/edgeship/keys",
    version: int = 0,
    channel: str = "stable",
    rollout_percent: int = 100,
    pipeline_run: str = "",
    # KFP's spelling of named outputs; spelled inline, as the body runs alone from its source
) -> NamedTuple("Outputs", [("pushed", bool), ("message", str)]):  # pyright: ignore[reportInvalidTypeForm]
    """Sign and publish every blessed hardware variant of a quantized model to an OTA bucket.

    Like TFX's Pusher, a model that either blessing rejects is not published and the step still
    succeeds: ``pushed`` is False and the message says ``not pushed: <reason>``.

    Args:
        quantized_models: Folder from the quantize step: ``model_int8.tflite`` (published as
            hardware ``cpu``), optional ``model_int8_edgetpu.tflite`` (hardware ``edgetpu``)
            and ``quantization_report.json`` (metrics, quantization, self-test input).
        evaluate_blessing: Folder holding ``BLESSED`` or ``NOT_BLESSED`` from evaluate.
        quantize_blessing: Folder holding ``BLESSED`` or ``NOT_BLESSED`` from quantize.
        pushed_model: Output folder: ``PUSHED`` or ``NOT_PUSHED`` (one line saying why) and
            ``push_result.json`` ``{"pushed", "reason", "targets", "bucket", "version",
            "timestamp_version", "message"}``.
        bucket_url: OTA bucket URL: ``s3://bucket/prefix`` (credentials and endpoint from the
            standard AWS_* environment, e.g. a Kubernetes Secret) or ``file:///dir``.
            Example: ``"s3://ota/models"``.
        model_name: Model name devices follow. Example: ``"sensor"``.
        keys_dir: Keys directory (``edgeship keys init``) holding ``root.json``,
            ``root_history/`` and ``online/``. The default is where the image links the public
            root and ``pipelines/cluster.py`` mounts the online keys from a Secret. Never the
            offline root key.
        version: Version to publish; 0 publishes the next version after the newest on
            (model_name, channel). Versions only go up.
        channel: Release channel. Example: ``"stable"`` or ``"beta"``.
        rollout_percent: Percentage (0..100) of devices that may take this version.
        pipeline_run: Id of the run that made the model, recorded in the signed metadata;
            pass ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` from the pipeline.

    Returns:
        pushed: whether anything was published.
        message: ``pushed vN to BUCKET: paths`` or ``not pushed: reason``.
    """
    from edgeship.edge_pusher.push import PushParams
    from edgeship.edge_pusher.push import push as run_push
    from edgeship.errors import step_errors

    with step_errors("push"):
        params = PushParams.of(locals())
        outcome = run_push(
            quantized_models.path,
            evaluate_blessing.path,
            quantize_blessing.path,
            params,
            output_dir=pushed_model.path,
        )
    pushed_model.metadata.update(  # pyright: ignore[reportUnknownMemberType] - kfp: a bare Dict
        {"pushed": int(outcome.pushed), "message": outcome.line(), "bucket": bucket_url,
         "version": outcome.version or 0, "targets": outcome.targets}
    )

    class Outputs(NamedTuple):
        pushed: bool
        message: str

    return Outputs(outcome.pushed, outcome.line())
