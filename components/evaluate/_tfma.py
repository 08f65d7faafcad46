"""TensorFlow Model Analysis on predictions made outside TFMA (model-agnostic evaluation).

TFMA 0.47 loads models through tf_keras and cannot run a Keras 3 SavedModel, so the executor
runs each model's serving signature itself and hands TFMA Arrow record batches of the eval split:
the label, each model's class probabilities as a prediction column, and the slice feature. Both
models are declared as ``materialized_prediction`` models, which is how TFMA is told that the
predictions are already in the data; it then computes metrics, the baseline diffs and the
threshold checks exactly as TFX's Evaluator does, and writes its usual output files.

Everything here imports TensorFlow, TFMA and Beam inside functions: importing this module is free.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CANDIDATE = "candidate"  # tfma.CANDIDATE_KEY
BASELINE = "baseline"  # tfma.BASELINE_KEY
# Column names of TFMA's input; prefixed so that no user feature (a slice feature may even be the
# label itself, sliced by class name) collides with them.
LABEL_KEY = "edgeship_label"
PREDICTION_KEYS = {
    CANDIDATE: "edgeship_candidate_probabilities",
    BASELINE: "edgeship_baseline_probabilities",
}
ACCURACY = "sparse_categorical_accuracy"  # TFMA's name for the Keras metric's result
ROWS_PER_BATCH = 10_000  # several elements let a distributed runner spread the metric work


def record_batch(
    labels: np.ndarray,
    probabilities: dict[str, np.ndarray],
    slice_feature: str = "",
    slice_values: list[Any] | None = None,
):
    """The eval split as TFMA's input: one Arrow batch of list columns, one row per example."""
    import pyarrow as pa

    names = [LABEL_KEY]
    arrays = [pa.array([[int(v)] for v in labels], type=pa.large_list(pa.int64()))]
    for model, probs in probabilities.items():
        names.append(PREDICTION_KEYS[model])
        arrays.append(pa.array(probs.astype(np.float32).tolist(), pa.large_list(pa.float32())))
    if slice_feature:
        names.append(slice_feature)
        arrays.append(pa.array([None if v is None else [v] for v in slice_values or []]))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def eval_config(
    num_classes: int,
    has_baseline: bool,
    slice_feature: str,
    min_accuracy: float,
    max_accuracy_decrease: float | None,
):
    """TFMA EvalConfig: accuracy, per-class precision/recall at top 1, a confusion matrix.

    Thresholds gate the overall slice only: a small slice's accuracy is noisy, and the blessing
    is about the whole eval split (per-slice numbers are reported, not gated).
    """
    import tensorflow_model_analysis as tfma

    models = [CANDIDATE, BASELINE] if has_baseline else [CANDIDATE]
    model_specs = [
        tfma.ModelSpec(
            name=name,
            label_key=LABEL_KEY,
            prediction_key=PREDICTION_KEYS[name],
            is_baseline=name == BASELINE,
        )
        for name in models
    ]
    threshold = tfma.MetricThreshold()
    if min_accuracy > 0:
        threshold.value_threshold.lower_bound.value = min_accuracy
    if has_baseline and max_accuracy_decrease is not None:
        threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
        threshold.change_threshold.absolute.value = -max_accuracy_decrease
    accuracy = tfma.MetricConfig(class_name="SparseCategoricalAccuracy")
    if threshold.ByteSize():
        accuracy.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()]).threshold.CopyFrom(
            threshold
        )
    slicing_specs = [tfma.SlicingSpec()]
    if slice_feature:
        slicing_specs.append(tfma.SlicingSpec(feature_keys=[slice_feature]))
    # top_k=1: a class counts as predicted only when it has the highest probability.
    top_1 = '{"top_k": 1}'
    return tfma.EvalConfig(
        model_specs=model_specs,
        slicing_specs=slicing_specs,
        metrics_specs=[
            tfma.MetricsSpec(
                model_names=models,
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    accuracy,
                    # Default threshold 0.0: every example counts under its arg-max class.
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ],
            ),
            tfma.MetricsSpec(
                model_names=models,
                binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))}),
                metrics=[
                    tfma.MetricConfig(class_name="Precision", config=top_1),
                    tfma.MetricConfig(class_name="Recall", config=top_1),
                ],
            ),
        ],
    )


def run(batch, config, output_path: str, beam_pipeline_args: list[str]) -> None:
    """Run TFMA's extract-evaluate-write over the batch; TFMA's files land in output_path."""
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis import constants as tfma_constants

    models = [
        tfma.types.EvalSharedModel(
            model_name=spec.name,
            model_type=tfma_constants.MATERIALIZED_PREDICTION,
            is_baseline=spec.is_baseline,
        )
        for spec in config.model_specs
    ]
    from edgeship.components import progress
    from edgeship.components._beam import count_progress, pipeline_options

    options = pipeline_options(beam_pipeline_args)
    batches = [
        batch.slice(start, ROWS_PER_BATCH) for start in range(0, batch.num_rows, ROWS_PER_BATCH)
    ]
    log.info(
        "TFMA on %d examples (%d batches), runner %s",
        batch.num_rows,
        len(batches),
        options.get_all_options()["runner"],
    )
    with progress.scope("evaluate"), beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "Examples" >> beam.Create(batches)
            | "Progress" >> count_progress("evaluate", "examples", lambda b: b.num_rows)
            | "EvaluateAndWrite"
            >> tfma.ExtractEvaluateAndWriteResults(
                eval_config=config, eval_shared_model=models, output_path=output_path
            )
        )


def _slice_name(slice_key: tuple) -> tuple[str, str] | None:
    """(feature, value) of a single-feature slice; None for the overall slice."""
    if not slice_key:
        return None
    ((feature, value),) = slice_key
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return feature, str(value)


def _value(metrics: dict[str, Any], name: str) -> float | None:
    entry = metrics.get(name)
    if entry is None or "doubleValue" not in entry:
        return None
    return float(entry["doubleValue"])


def read_metrics(
    output_path: str, model: str, classes: list[str], has_baseline: bool
) -> dict[str, Any]:
    """Metrics of one model from TFMA's output: overall, per class, per slice, confusion matrix.

    TFMA keys results by model name only when there are several models.
    """
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(output_path, model_name=model if has_baseline else None)
    overall: dict[str, Any] = {}
    slices: dict[str, dict[str, dict[str, Any]]] = {}
    for slice_key, by_output in result.slicing_metrics:
        sub_keys = by_output.get("", {})
        headline = sub_keys.get("", {})
        numbers = {
            "accuracy": _value(headline, ACCURACY),
            "examples": int(_value(headline, "example_count") or 0),
        }
        diff = _value(headline, f"{ACCURACY}_diff")
        if diff is not None:
            numbers["accuracy_change"] = diff
        name = _slice_name(slice_key)
        if name is None:
            overall = numbers
            overall["per_class"] = {
                cls: {
                    "precision": _value(sub_keys.get(f"classId:{i} topK:1", {}), "precision"),
                    "recall": _value(sub_keys.get(f"classId:{i} topK:1", {}), "recall"),
                }
                for i, cls in enumerate(classes)
            }
        else:
            slices.setdefault(name[0], {})[name[1]] = numbers
    if not overall:
        raise RuntimeError(f"{output_path}: TFMA wrote no overall metrics for model '{model}'")
    overall["slices"] = slices
    overall["confusion_matrix"] = _confusion_matrix(result.plots, len(classes))
    return overall


def _confusion_matrix(plots: list, num_classes: int) -> list[list[int]]:
    """Overall [actual][predicted] counts from TFMA's MultiClassConfusionMatrixPlot."""
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for slice_key, by_output in plots:
        if slice_key:
            continue
        plot = by_output.get("", {}).get("", {}).get("multiClassConfusionMatrixAtThresholds", {})
        for at_threshold in plot.get("matrices", []):
            for entry in at_threshold.get("entries", []):
                actual = int(entry.get("actualClassId", 0))
                predicted = int(entry.get("predictedClassId", 0))
                count = float(entry.get("numWeightedExamples", 0.0))
                if 0 <= actual < num_classes and 0 <= predicted < num_classes:
                    matrix[actual][predicted] += int(round(count))
    return matrix


def read_validation(output_path: str) -> tuple[bool, list[dict[str, Any]]]:
    """TFMA's verdict and each failed threshold as {"change": bool, "value": float, "bound"}."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(output_path)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            threshold = failure.metric_threshold
            change = failure.metric_key.is_diff
            bound = (
                threshold.change_threshold.absolute.value
                if change
                else threshold.value_threshold.lower_bound.value
            )
            value = failure.metric_value.double_value.value
            failures.append(
                {
                    "metric": failure.metric_key.name,
                    "change": change,
                    "value": value if math.isfinite(value) else float("nan"),
                    "bound": bound,
                }
            )
    if not result.validation_ok and not failures:
        # e.g. a missing slice: keep TFMA's own words, on one line.
        failures.append({"metric": "validation", "message": " ".join(str(result).split())})
    return bool(result.validation_ok), failures
