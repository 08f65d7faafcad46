"""KFP interface of the quantize step; the work is in ``edgeship.components.quantize.executor``."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from edgeship.artifact_types import ModelBlessing
from edgeship.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def quantize(
    model: Input[Model],
    examples: Input[Dataset],
    model_blessing: Input[ModelBlessing],
    quantized: Output[Model],
    blessing: Output[ModelBlessing],
    report: Output[Markdown],
    metrics: Output[Metrics],
    variants: list = [],  # noqa: B006 - KFP reads the default from the signature
    calibration_examples: int = 200,
    max_accuracy_drop: float = 1.0,
    num_threads: int = 1,
    latency_runs: int = 200,
    eval_examples: int = 20000,
    signature: str = "serving_default",
    label_key: str = "",
    feature_keys: list = [],  # noqa: B006 - KFP reads the default from the signature
    classes: list = [],  # noqa: B006 - KFP reads the default from the signature
) -> str:
    """Convert a trained model to TFLite variants, measure them with LiteRT, and bless the int8 one.

    Args:
        model: the trained model folder: train's (``Format-Serving/`` SavedModel and
            ``model_meta.json``), or any SavedModel (in ``Format-Serving/`` or the folder itself)
            whose ``signature`` takes one float32 tensor [None, *input_shape] and returns one
            tensor of class scores [None, classes].
        examples: an Examples folder (``Split-train/``, ``Split-eval/`` of gzipped TFRecord
            ``tf.Example``, with ``examples_meta.json`` from ingest or without it from TFX or
            your own step) or a CSV file; train calibrates int8, eval measures (a CSV's rows
            serve both).
        model_blessing: evaluate's blessing folder (``BLESSED`` or ``NOT_BLESSED``). To use the
            step without evaluate, import a folder holding an empty ``BLESSED`` file.
        variants: which variants to make, from ``float32``, ``dynamic_range``, ``float16``,
            ``int8``; ``[]`` (default) makes all four. Example: ``["int8"]``. Any variant that
            cannot be made fails the step (exit 1, one line naming it).
        calibration_examples: how many train examples calibrate the int8 ranges, e.g. 200.
        max_accuracy_drop: the int8 model's largest allowed accuracy loss against the float
            SavedModel, in percentage points, e.g. 1.0.
        num_threads: interpreter threads for the latency measurement, e.g. 1.
        latency_runs: timed single-example invokes per variant, after a warm-up, e.g. 200.
        eval_examples: eval examples every variant is measured on: a seeded sample when the
            split is larger (each variant runs one example at a time, as a device does); 0
            measures the whole split. The report states both numbers. Example: ``20000``.
        signature: the SavedModel signature to convert, e.g. ``serving_default``; a TFX model
            that serves serialized ``tf.Example``s exports a float one too and names it here.
        label_key: for a model edgeship did not train: the examples' label (an int class index,
            or in a CSV a class name), e.g. ``species``. Empty: ingest's label.
        feature_keys: for a model edgeship did not train: the features, in order, whose values
            make the model's input, e.g. ``["culmen_length_mm", "body_mass_g"]``. Empty: the
            model is edgeship's (it has ``model_meta.json``) or the examples are ingest's.
        classes: class names in the order of the model's scores, e.g. ``["low", "high"]``.
            Optional: without them classes are numbered and devices get none.

    Returns:
        quantized: folder with ``model_<variant>.tflite`` per variant, ``model_meta.json`` (the
            trained model's), ``quantization_report.json`` (accuracy, delta, agreement, size,
            latency, quantization parameters; the int8 self-test for push; Edge TPU analysis),
            and ``model_int8_edgetpu.tflite`` only if ``edgetpu_compiler`` is installed in the
            image and compiled it.
        blessing: folder with ``BLESSED`` or ``NOT_BLESSED`` (its text gives the numbers why);
            BLESSED only if evaluate blessed the model and the int8 drop is within the limit.
        report: Markdown file with the variant table and the Edge TPU analysis (KFP UI).
        metrics: headline numbers: ``float_accuracy``, ``<variant>_accuracy``,
            ``<variant>_size_bytes``, ``<variant>_latency_ms``, ``blessed`` (1/0).
        Output: the executor's summary as a JSON string (variants, float_accuracy, blessed,
            reasons, edgetpu, table).
    """
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from edgeship.components.progress import heartbeat
    from edgeship.components.quantize.executor import REPORT_MD, QuantizeParams, run_quantize
    from edgeship.errors import step_errors

    with step_errors("quantize"), heartbeat("quantize"), tempfile.TemporaryDirectory() as tmp:
        params = QuantizeParams.of(locals())
        summary = run_quantize(
            model.path,
            examples.path,
            quantized.path,
            blessing.path,
            str(Path(tmp) / "report"),
            params,
            model_blessing_dir=model_blessing.path,
        )
        shutil.copyfile(Path(tmp) / "report" / REPORT_MD, report.path)
    metrics.log_metric("float_accuracy", summary["float_accuracy"])
    for name, numbers in summary["variants"].items():
        metrics.log_metric(f"{name}_accuracy", numbers["accuracy"])
        metrics.log_metric(f"{name}_size_bytes", numbers["size_bytes"])
        metrics.log_metric(f"{name}_latency_ms", numbers["latency_ms_median"])
    metrics.log_metric("blessed", 1 if summary["blessed"] else 0)
    return json.dumps(summary)
