"""Evaluate a trained model on the eval split with TFMA and bless it, or not, as TFX does.

Inputs: an Examples artifact (``Split-eval/`` + ``examples_meta.json``), a model
(``Format-Serving/`` SavedModel + ``model_meta.json``) and optionally a baseline model. Each
model's serving signature is run here on the eval split, encoded with that model's own recorded
encoding; TFMA then computes the metrics from label + predicted probabilities (see ``_tfma``).
Outputs:

    evaluation_dir/  TFMA's files (metrics-*, plots-*, validations.tfrecord, eval_config.json),
                     read with ``tfma.load_eval_result`` / ``tfma.load_validation_result``,
                     plus metrics.json (the same numbers, readable)
    blessing_dir/    BLESSED or NOT_BLESSED; its text lists the checks and how they ended

Both are written through ``atomic_output_dir``: bad input or a failure leaves neither behind.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.components import _progress
from edgeship.components import _serving as serving
from edgeship.components._artifacts import (
    SERVING_DIR,
    atomic_output_dir,
    read_examples_meta,
    read_model_meta,
    write_blessing,
    write_json,
)
from edgeship.components._dataset import (
    READ_BATCH,
    check_labels,
    encode,
    iter_examples,
    sample_split,
)
from edgeship.components._params import StepParams, is_int, is_number, require
from edgeship.components.evaluate import _tfma
from edgeship.errors import InputError

log = logging.getLogger(__name__)

SPLIT = "eval"
SAMPLE_SEED = 1
METRICS_FILE = "metrics.json"
NO_CHANGE_THRESHOLD = -1.0  # max_accuracy_decrease: KFP has no None for a float parameter


@dataclass(frozen=True)
class EvaluateParams(StepParams):
    """Evaluate's parameters (the component's, one for one); see the evaluate README."""

    baseline_model_path: str = ""
    slice_feature: str = ""
    min_accuracy: float = 0.0
    max_accuracy_decrease: float = NO_CHANGE_THRESHOLD
    beam_pipeline_args: list[str] = field(default_factory=list)
    eval_examples: int = 50_000

    def check(self) -> None:
        require(is_number(self.min_accuracy) and 0.0 <= self.min_accuracy <= 1.0,
                "min_accuracy", self.min_accuracy, "between 0 and 1")
        decrease = self.max_accuracy_decrease
        require(is_number(decrease) and (0.0 <= decrease <= 1.0 or decrease == NO_CHANGE_THRESHOLD),
                "max_accuracy_decrease", decrease,
                f"between 0 and 1, or {NO_CHANGE_THRESHOLD} for no change threshold")
        require(isinstance(self.beam_pipeline_args, list | tuple)
                and all(isinstance(a, str) for a in self.beam_pipeline_args),
                "beam_pipeline_args", self.beam_pipeline_args, "a list of Beam options")
        require(is_int(self.eval_examples) and self.eval_examples >= 0, "eval_examples",
                self.eval_examples, ">= 0 (0: the whole eval split)")

    @property
    def change_threshold(self) -> float | None:
        """The change threshold, None when there is none."""
        return None if self.max_accuracy_decrease == NO_CHANGE_THRESHOLD else \
            self.max_accuracy_decrease


def run_evaluate(
    examples_dir: str,
    model_dir: str,
    blessing_dir: str,
    evaluation_dir: str,
    params: EvaluateParams | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Evaluate ``model_dir`` (and the baseline model) on the eval split; bless or not.

    The parameters are :class:`EvaluateParams` (or the same names as keywords).
    ``min_accuracy`` is a value threshold (0 = none). ``max_accuracy_decrease`` is a change
    threshold against the baseline (-1.0 = none): the candidate's accuracy may be at most
    this much below the baseline's. Both gate the overall eval split; per-slice numbers are
    reported. Returns a JSON-able summary (also in ``metrics.json``).
    """
    p = EvaluateParams.build(params, **overrides)
    baseline_model_dir, slice_feature = p.baseline_model_path, p.slice_feature
    min_accuracy, max_accuracy_decrease = p.min_accuracy, p.change_threshold
    beam_pipeline_args = list(p.beam_pipeline_args)
    meta = read_examples_meta(examples_dir)
    classes = list(meta["classes"])
    model_dirs = {_tfma.CANDIDATE: model_dir}
    if baseline_model_dir:
        model_dirs[_tfma.BASELINE] = baseline_model_dir
    sample, probabilities = _predictions(examples_dir, meta, model_dirs, slice_feature,
                                         p.eval_examples)
    labels = sample.labels
    slice_values = None
    if slice_feature:
        every = _slice_values(examples_dir, meta, slice_feature)
        slice_values = [every[i] for i in sample.positions]

    has_baseline = _tfma.BASELINE in model_dirs
    config = _tfma.eval_config(
        len(classes), has_baseline, slice_feature, min_accuracy, max_accuracy_decrease
    )
    batch = _tfma.record_batch(labels, probabilities, slice_feature, slice_values)
    with atomic_output_dir(evaluation_dir) as out, atomic_output_dir(blessing_dir) as blessing:
        _tfma.run(batch, config, str(out), list(beam_pipeline_args or []))
        candidate = _tfma.read_metrics(str(out), _tfma.CANDIDATE, classes, has_baseline)
        baseline = (
            _tfma.read_metrics(str(out), _tfma.BASELINE, classes, True) if has_baseline else None
        )
        gated = min_accuracy > 0 or (has_baseline and max_accuracy_decrease is not None)
        # Without thresholds TFMA reports "missing_thresholds"; like TFX, nothing gates: bless.
        ok, failures = _tfma.read_validation(str(out)) if gated else (True, [])
        reasons = _reasons(ok, failures, candidate, baseline, min_accuracy, max_accuracy_decrease)
        summary = _summary(candidate, baseline, classes, ok, reasons) | {
            "eval_split_examples": sample.total}
        report = {
            **summary,
            "slices": candidate["slices"],
            "thresholds": {
                "min_accuracy": min_accuracy,
                "max_accuracy_decrease": max_accuracy_decrease,
                "gated_slice": "overall",
            },
            "model": str(model_dir),
            "baseline_model": str(baseline_model_dir) or None,
        }
        if baseline is not None:
            report["baseline"] = {k: baseline[k] for k in ("accuracy", "per_class", "slices")}
        write_json(out / METRICS_FILE, _json_safe(report))
        write_blessing(blessing, ok, reasons)
    log.info(
        "evaluate: accuracy %.4f on %d examples, %s",
        summary["accuracy"],
        summary["examples"],
        "BLESSED" if ok else "NOT_BLESSED: " + "; ".join(reasons),
    )
    return _json_safe(summary)


def _predictions(
    examples_dir: str, meta: dict[str, Any], model_dirs: dict[str, str], slice_feature: str,
    size: int,
) -> tuple[Any, dict[str, np.ndarray]]:
    """The eval examples (a seeded uniform sample of ``size`` when the split is larger; 0: all)
    and each model's class probabilities for them, after checking every input.

    The cheap checks (parameters, metadata, slice feature) run before any model is loaded; the
    split streams, so memory holds the sample, never the split.
    """
    classes = list(meta["classes"])
    model_metas = {name: _model_meta(path, classes) for name, path in model_dirs.items()}
    _check_slice_feature(examples_dir, meta, slice_feature)
    predictors = {name: serving.Predictor(path, len(classes)) for name, path in model_dirs.items()}
    sample = sample_split(
        examples_dir, SPLIT, meta, size or 2**62, SAMPLE_SEED, _progress.of("evaluate")
    )
    if sample.total == 0:
        raise InputError(f"{examples_dir}: split '{SPLIT}' has no examples to evaluate on")
    where = f"{examples_dir} split '{SPLIT}'"
    check_labels(where, sample.labels, classes, sample.positions)
    probabilities = {}
    for name, predictor in predictors.items():
        probabilities[name] = predictor(encode(model_metas[name]["encoding"], sample.columns,
                                               where), READ_BATCH)
        _check_finite(model_dirs[name], probabilities[name], sample.positions)
    return sample, probabilities


def kfp_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Headline numbers for a KFP ``Metrics`` artifact (``log_metric`` takes floats only)."""
    values = {
        "accuracy": summary["accuracy"],
        "examples": float(summary["examples"]),
        "blessed": 1.0 if summary["blessed"] else 0.0,
    }
    if summary.get("baseline_accuracy") is not None:
        values["baseline_accuracy"] = summary["baseline_accuracy"]
    for cls, numbers in summary["per_class"].items():
        for name in ("precision", "recall"):
            if numbers[name] is not None:
                values[f"{name}_{cls}"] = numbers[name]
    return {k: float(v) for k, v in values.items()}


def predict(model_dir: str, x: np.ndarray, model_meta: dict[str, Any], batch_size: int = 256):
    """Class probabilities [N, num_classes] from the model's ``serving_default`` signature."""
    probs = serving.predict(model_dir, x, batch_size, num_classes=len(model_meta["classes"]))
    _check_finite(model_dir, probs, 0)
    return probs


def _check_finite(model_dir: str, probs: np.ndarray, positions: int | np.ndarray) -> None:
    """Refuse non-finite outputs, naming the example's place in the split (``positions`` as
    in :func:`check_labels`)."""
    if not np.all(np.isfinite(probs)):
        at = int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0])
        row = at + positions if isinstance(positions, int) else int(positions[at])
        raise InputError(f"{model_dir}: the model's output for eval example {row} is not finite")


# --- checks -------------------------------------------------------------------------------


def _model_meta(model_dir: str, classes: list[str]) -> dict[str, Any]:
    """The model's metadata, after checking that it is a model for these classes."""
    if not model_dir or not Path(model_dir).is_dir():
        raise InputError(f"{model_dir or '(empty path)'}: model folder not found")
    saved_model = Path(model_dir) / SERVING_DIR / "saved_model.pb"
    if not saved_model.is_file():
        raise InputError(f"{saved_model.parent}: no SavedModel (saved_model.pb missing)")
    return read_model_meta(model_dir, ("classes", "encoding"), classes)


def _sliceable(meta: dict[str, Any]) -> list[str]:
    """Features with one value per example: meta features of shape [1], passthrough, label."""
    names = [f["name"] for f in meta["features"] if int(np.prod(f["shape"])) == 1]
    return names + list(meta.get("passthrough", [])) + [meta["label_feature"]]


def _check_slice_feature(examples_dir: str, meta: dict[str, Any], slice_feature: str) -> None:
    if not slice_feature:
        return
    sliceable = _sliceable(meta)
    if slice_feature in sliceable:
        return
    shapes = {f["name"]: f["shape"] for f in meta["features"]}
    if slice_feature in shapes:
        raise InputError(
            f"slice_feature '{slice_feature}' has shape {shapes[slice_feature]} in "
            f"{examples_dir}; slicing needs a feature with one value per example "
            f"({', '.join(sliceable)})"
        )
    raise InputError(
        f"slice_feature '{slice_feature}' is not a feature of {examples_dir} "
        f"(one of: {', '.join(sliceable)})"
    )


def _slice_values(examples_dir: str, meta: dict[str, Any], name: str) -> list[Any]:
    """One value per eval example (None where missing), in load_split's order.

    Labels slice by class name; passthrough features (e.g. a sensor recording's group id) are
    not in ``load_split``'s columns, so every slice feature is read here the same way.
    """
    classes = meta["classes"]
    values: list[Any] = []
    for index, example in enumerate(iter_examples(examples_dir, SPLIT)):
        feature = example.features.feature.get(name)
        kind = feature.WhichOneof("kind") if feature is not None else None
        raw = list(getattr(feature, kind).value) if kind else []
        if len(raw) > 1:
            raise InputError(
                f"{examples_dir} split {SPLIT}: slice_feature '{name}' has {len(raw)} values in "
                f"example {index}; slicing needs one value per example"
            )
        value = raw[0] if raw else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, float) and math.isnan(value):
            value = None
        if name == meta["label_feature"] and value is not None:
            value = classes[int(value)] if 0 <= int(value) < len(classes) else str(value)
        values.append(value)
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) > 1:  # Arrow needs one type per column; mixed kinds slice by their text
        values = [None if v is None else str(v) for v in values]
    distinct = len({v for v in values if v is not None})
    if distinct > 100:
        log.warning("slice_feature '%s' has %d distinct values: one slice each", name, distinct)
    return values


# --- results ------------------------------------------------------------------------------


def _reasons(
    ok: bool,
    failures: list[dict[str, Any]],
    candidate: dict[str, Any],
    baseline: dict[str, Any] | None,
    min_accuracy: float,
    max_accuracy_decrease: float | None,
) -> list[str]:
    """One line per check: what failed and by how much, or what passed."""
    accuracy = candidate["accuracy"]
    lines = []
    for failure in failures:
        if "message" in failure:
            lines.append(f"TFMA validation failed: {failure['message']}")
        elif failure["change"]:
            drop = -failure["value"]
            lines.append(
                f"accuracy fell by {drop:.4f} against the baseline ({baseline['accuracy']:.4f} "
                f"-> {accuracy:.4f}), more than max_accuracy_decrease {-failure['bound']:.4f} "
                f"by {drop + failure['bound']:.4f}"
            )
        else:
            lines.append(
                f"accuracy {failure['value']:.4f} is below min_accuracy {failure['bound']:.4f} "
                f"by {failure['bound'] - failure['value']:.4f}"
            )
    if ok:
        if min_accuracy > 0:
            lines.append(f"accuracy {accuracy:.4f} >= min_accuracy {min_accuracy:.4f}")
        if baseline is not None and max_accuracy_decrease is not None:
            lines.append(
                f"accuracy change {accuracy - baseline['accuracy']:+.4f} against the baseline "
                f"({baseline['accuracy']:.4f}) is within max_accuracy_decrease "
                f"{max_accuracy_decrease:.4f}"
            )
        if not lines:
            lines.append("no thresholds set: blessed without a gate")
    if max_accuracy_decrease is not None and baseline is None:
        lines.append("max_accuracy_decrease not checked: no baseline model given")
    return lines


def _summary(
    candidate: dict[str, Any],
    baseline: dict[str, Any] | None,
    classes: list[str],
    blessed: bool,
    reasons: list[str],
) -> dict[str, Any]:
    summary = {
        "accuracy": candidate["accuracy"],
        "blessed": blessed,
        "reasons": reasons,
        "per_class": candidate["per_class"],
        "confusion_matrix": candidate["confusion_matrix"],
        "classes": classes,
        "examples": candidate["examples"],
    }
    if baseline is not None:
        summary["baseline_accuracy"] = baseline["accuracy"]
    return summary


def _json_safe(value: Any) -> Any:
    """NaN (e.g. precision of a class never predicted) becomes null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
