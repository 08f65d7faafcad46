"""TFMA's metrics, plots and validation for evaluate's EvalConfig without a Beam pipeline
(evaluate's lean path for a small eval split).

``_tfma.run`` builds a Beam pipeline around ``tfma.ExtractEvaluateAndWriteResults``; on a few
hundred examples that costs seconds while the arithmetic takes milliseconds. TFMA 0.47 has no
in-memory evaluation API, so the metrics ``_tfma.eval_config`` asks for are computed here with
numpy, following TFMA's own code line for line where it has quirks:

- ``example_count``: the examples in the slice (TFMA's ExampleCount, unweighted);
- ``sparse_categorical_accuracy``: correct / examples in float32, as the Keras metric TFMA
  wraps computes it;
- ``precision`` / ``recall`` binarized per class id at ``top_k=1``: TFMA sets every score but
  the top one to -inf (``metric_util.top_k_indices``, one example at a time as TFMA breaks
  ties), buckets the scores into a calibration histogram of one bucket on [0, 1) (-inf below
  it, a score of exactly 1.0 above it) and, for the single threshold -inf, counts as predicted
  positive the examples above the lowest non-empty bucket, or every example when only one
  bucket is non-empty (so a class that no example predicts has recall 1.0, the quirk
  ``executor._per_class`` explains, and where some top scores are exactly 1.0 only those
  count);
- ``multi_class_confusion_matrix_plot``: arg-max counts at threshold 0.0, built as TFMA's
  ``Matrices`` value;
- with a baseline, ``<metric>`` diffs (candidate minus baseline) on every metric, not plots.

The values are then written with TFMA's own converters and validated with TFMA's own
``metrics_validator`` and ``CombineValidations``, into the files and layout the Beam path writes
(``metrics-00000-of-00001.tfrecord``, ``plots-...``, ``attributions-...``,
``validations.tfrecord``, ``eval_config.json``), so ``tfma.load_eval_result`` and
``tfma.load_validation_result`` read them unchanged. ``tests/components/evaluate/
test_lean_paths.py`` holds both paths to the same files on the same data.

Importing this module is free: TFMA and TensorFlow are imported inside functions.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgeship.components.evaluate import _tfma

# TFMA's calibration histogram for a single threshold <= 0 (binary_confusion_matrices sets
# num_buckets=1): bucket 0 below 0 (-inf), 1 for [0, 1), 2 for a score of exactly 1.0 or more.
HISTOGRAM_BUCKETS = 1
SHARD = "-00000-of-00001.tfrecord"  # Beam's one shard, as TFMA names its output files


def run(batch: Any, config: Any, output_path: str) -> None:
    """What ``_tfma.run(batch, config, output_path, args)`` writes, for ``_tfma.eval_config``'s
    metrics on ``_tfma.record_batch``'s columns, without Beam."""
    import tensorflow as tf
    from tensorflow_model_analysis import constants
    from tensorflow_model_analysis.evaluators import metrics_validator
    from tensorflow_model_analysis.metrics import metric_types
    from tensorflow_model_analysis.utils import config_util
    from tensorflow_model_analysis.writers import eval_config_writer
    from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as writer

    # as tfma.ExtractEvaluateAndWriteResults does with two EvalSharedModels, or one
    has_baseline = any(spec.is_baseline for spec in config.model_specs)
    config = config_util.update_eval_config_with_defaults(config, has_baseline=has_baseline)
    specs = list(config.model_specs)
    named = len(specs) > 1  # TFMA keys metrics by model name only when there are several
    labels = np.asarray(batch.column(_tfma.LABEL_KEY).flatten().to_numpy(), dtype=np.int64)
    num_classes = _num_classes(config)
    predictions = {
        spec.name: _scores(batch.column(spec.prediction_key), num_classes) for spec in specs
    }
    baseline = next((spec.name for spec in specs if spec.is_baseline), None)

    slices: list[tuple[tuple, np.ndarray]] = [((), np.ones(len(labels), dtype=bool))]
    for spec in config.slicing_specs:
        for feature in spec.feature_keys:
            slices += _feature_slices(batch, feature)

    metrics_out, plots_out, validations = [], [], []
    for slice_key, rows in slices:
        values: dict[Any, Any] = {}
        plots: dict[Any, Any] = {}
        for spec in specs:
            model = spec.name if named else ""
            for name, sub_key, value in _metrics(labels[rows], predictions[spec.name][rows],
                                                 num_classes):
                values[metric_types.MetricKey(name=name, model_name=model, sub_key=sub_key,
                                              example_weighted=False)] = value
            plots[metric_types.PlotKey(name="multi_class_confusion_matrix_plot",
                                       model_name=model, example_weighted=False)] = \
                _confusion_plot(labels[rows], predictions[spec.name][rows])
        if baseline is not None:
            for key in list(values):
                if key.model_name != baseline:
                    base = values[key.make_baseline_key(baseline)]
                    values[key.make_diff_key()] = values[key] - base
        metrics_out.append(writer.convert_slice_metrics_to_proto((slice_key, values), None))
        plots_out.append(writer.convert_slice_plots_to_proto((slice_key, plots), None))
        validations.append(metrics_validator.validate_metrics((slice_key, values), config))

    combine = writer.CombineValidations(config)
    result = combine.create_accumulator()
    for validation in validations:
        result = combine.add_input(result, validation)
    result = combine.extract_output(result)

    def write(name: str, records: list[Any]) -> None:
        with tf.io.TFRecordWriter(os.path.join(output_path, name)) as out:
            for record in records:
                out.write(record.SerializeToString())

    write(constants.METRICS_KEY + SHARD, metrics_out)
    write(constants.PLOTS_KEY + SHARD, plots_out)
    # TFMA writes attributions even with no attribution metric: an empty record per slice
    write(constants.ATTRIBUTIONS_KEY + SHARD,
          [writer.convert_slice_attributions_to_proto((key, {})) for key, _ in slices])
    write(constants.VALIDATIONS_KEY + ".tfrecord", [result])
    # what TFMA's EvalConfigWriter records when handed a PCollection (its defaults)
    with open(os.path.join(output_path, eval_config_writer.EVAL_CONFIG_FILE + ".json"), "w") as f:
        f.write(eval_config_writer._serialize_eval_run(  # noqa: SLF001 TFMA's own file format
            config, "<user provided PCollection>", "<unknown>",
            {(spec.name if named else ""): "<unknown>" for spec in specs}) + "\n")


def _num_classes(config: Any) -> int:
    """The class count, from the binarized metrics spec's class ids."""
    for spec in config.metrics_specs:
        if spec.binarize.class_ids.values:
            return len(spec.binarize.class_ids.values)
    raise ValueError("eval config has no binarized class ids")


def _scores(column: Any, num_classes: int) -> np.ndarray:
    """[N, classes] float32 scores from a large_list<float32> column."""
    values = np.asarray(column.flatten().to_numpy(), dtype=np.float32)
    return values.reshape(-1, num_classes)


def _feature_slices(batch: Any, feature: str) -> list[tuple[tuple, np.ndarray]]:
    """One (slice key, rows) per distinct value of a one-value-per-example column; examples
    without a value belong to no slice of it, as in TFMA."""
    values = [None if v is None else v[0] for v in batch.column(feature).to_pylist()]
    rows_of: dict[Any, list[int]] = {}
    for row, value in enumerate(values):
        if value is not None:
            rows_of.setdefault(value, []).append(row)
    out = []
    for value, rows in rows_of.items():
        mask = np.zeros(len(values), dtype=bool)
        mask[rows] = True
        key_value = value.encode() if isinstance(value, str) else value
        out.append((((feature, key_value),), mask))
    return out


def _metrics(labels: np.ndarray, scores: np.ndarray, num_classes: int):
    """(name, sub_key, value) of one model on one slice."""
    from tensorflow_model_analysis.metrics import metric_types, metric_util

    n = len(labels)
    yield "example_count", None, float(n)
    # float32 throughout, as TFMA's value (and so its diff against the baseline's) is
    correct = np.float32(np.sum(np.argmax(scores, axis=1) == labels))
    yield "sparse_categorical_accuracy", None, correct / np.float32(n) if n else np.float32("nan")
    if n:
        # one example at a time, as TFMA calls it: argpartition breaks ties differently on a
        # row than on a matrix (hypothesis found rows of equal scores where they differ)
        columns = np.array([metric_util.top_k_indices(1, row)[0] for row in scores])
        rows = np.arange(n)
        top = np.full(scores.shape, -np.inf)
        top[rows, columns] = scores[rows, columns]
    for class_id in range(num_classes):
        sub_key = metric_types.SubKey(class_id=class_id, top_k=1)
        if not n:
            yield "precision", sub_key, float("nan")
            yield "recall", sub_key, float("nan")
            continue
        positive_label = labels == class_id
        predicted = _histogram_positive(top[:, class_id])
        tp = float(np.sum(predicted & positive_label))
        fp = float(np.sum(predicted & ~positive_label))
        fn = float(np.sum(~predicted & positive_label))
        yield "precision", sub_key, tp / (tp + fp) if tp + fp > 0 else float("nan")
        yield "recall", sub_key, tp / (tp + fn) if tp + fn > 0 else float("nan")


def _histogram_positive(scores: np.ndarray) -> np.ndarray:
    """Which examples TFMA's histogram counts as predicted positive at threshold -inf."""
    # calibration_histogram._bucket_index: (score - 0) / 1 * buckets + 1, clipped; -inf -> 0
    raw = scores.astype(np.float64) * HISTOGRAM_BUCKETS + 1
    buckets = np.floor(np.clip(raw, 0, HISTOGRAM_BUCKETS + 1))
    present = np.unique(buckets)
    if len(present) <= 1:
        return np.ones(len(scores), dtype=bool)
    return buckets > present[0]


def _confusion_plot(labels: np.ndarray, scores: np.ndarray) -> Any:
    """TFMA's MultiClassConfusionMatrixPlot value at its default threshold 0.0."""
    from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mc

    predicted = np.argmax(scores, axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    top = scores[np.arange(len(labels)), predicted] if len(labels) else np.zeros(0)
    predicted = np.where(top > 0.0, predicted, mc.NO_PREDICTED_CLASS_ID)
    pairs, counts = np.unique(np.stack([labels, predicted], axis=1), axis=0, return_counts=True)
    matrices = mc.Matrices()
    matrices[0.0] = {mc.MatrixEntryKey(int(actual), int(guess)): float(count)
                     for (actual, guess), count in zip(pairs, counts, strict=True)}
    return matrices.to_proto().multi_class_confusion_matrix_at_thresholds
