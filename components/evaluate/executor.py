"""Evaluate a trained model on the eval split with TFMA and bless it, or not, as TFX does.

Inputs: an Examples artifact (``Split-eval/`` + ``examples_meta.json``), a model
(``Format-Serving/`` SavedModel + ``model_meta.json``) and optionally a baseline model. Each
model's serving signature is run here on the eval split, encoded with that model's own recorded
encoding; TFMA then computes the metrics from label + predicted probabilities (see ``_tfma``),
or, up to ``LEAN_MAX_EXAMPLES``, ``_in_memory`` computes and writes the same without Beam.
Outputs:

    evaluation_dir/  TFMA's files (metrics-*, plots-*, validations.tfrecord, eval_config.json),
                     read with ``tfma.load_eval_result`` / ``tfma.load_validation_result``,
                     plus metrics.json (the same numbers, readable)
    blessing_dir/    BLESSED or NOT_BLESSED; its text is the one-line verdict, each check and
                     how it ended, and what was measured (eval examples, accuracy with its 95 %
                     interval, majority share, balanced accuracy, per-class recall, macro-F1)

The blessing needs evidence (see ``evidence``): by default the lower bound of a 95 % Wilson
interval on the accuracy must be above the eval split's majority share, so a model that learnt
nothing is refused even with no threshold set; train's "learnt nothing" finding, recorded in the
model's ``model_meta.json``, is stated among the reasons.

Both are written through ``atomic_output_dir``: bad input or a failure leaves neither behind.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.components import _serving as serving
from edgeship.components import progress
from edgeship.components._beam import runner_named
from edgeship.components._dataset import (
    READ_BATCH,
    check_labels,
    encode,
    iter_examples,
    sample_split,
)
from edgeship.components.artifacts import (
    SERVING_DIR,
    atomic_output_dir,
    read_examples_meta,
    read_model_meta,
    write_blessing,
    write_json,
)
from edgeship.components.evaluate import _in_memory, _tfma, evidence
from edgeship.errors import InputError
from edgeship.params import StepParams, is_int, is_number, require

log = logging.getLogger(__name__)

SPLIT = "eval"
SAMPLE_SEED = 1
METRICS_FILE = "metrics.json"
NO_CHANGE_THRESHOLD = -1.0  # max_accuracy_decrease: KFP has no None for a float parameter
# Up to this many eval examples TFMA's metrics, plots and validation are computed in memory
# (``_in_memory``: the same files, checked against TFMA's), above it by TFMA in a Beam pipeline.
# Measured on this project's shared 2-core machine (docs/benchmarks.md, "Lean paths"), 3 classes,
# a baseline and a 10-value slice feature, in memory against TFMA with Beam's in-process runner:
# 100 examples 0.04 s vs 5.7 s, 10,000 0.17 s vs 34 s, 50,000 (eval_examples' default sample)
# 1.1 s vs 151 s, 200,000 3.3 s vs 743 s. TFMA's per-example cost, not Beam's start-up, grows
# with the rows: no crossover, so the bound is the largest size measured; beyond it (a larger
# eval_examples) Beam, whose runner can be distributed. A named Beam runner always gets Beam.
LEAN_MAX_EXAMPLES = 200_000


@dataclass(frozen=True)
class EvaluateParams(StepParams):
    """Evaluate's parameters (the component's, one for one); see the evaluate README."""

    baseline_model_path: str = ""
    slice_feature: str = ""
    min_accuracy: float = 0.0
    max_accuracy_decrease: float = NO_CHANGE_THRESHOLD
    beam_pipeline_args: list[str] = field(default_factory=list)
    eval_examples: int = 50_000
    require_beats_majority: bool = True
    min_lift_over_majority: float = 0.0
    min_class_recall: float = 0.0

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
        require(isinstance(self.require_beats_majority, bool), "require_beats_majority",
                self.require_beats_majority, "true or false")
        lift = self.min_lift_over_majority
        require(is_number(lift) and 0.0 <= lift < 1.0, "min_lift_over_majority", lift,
                "at least 0 and below 1")
        # a margin on a check that is off would be silently ignored: say so instead
        require(self.require_beats_majority or lift == 0.0, "min_lift_over_majority", lift,
                "0 when require_beats_majority is false (the margin is on that check)")
        require(is_number(self.min_class_recall) and 0.0 <= self.min_class_recall <= 1.0,
                "min_class_recall", self.min_class_recall, "between 0 and 1 (0: none)")

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
    ``require_beats_majority`` (on by default) blesses only when the 95 % Wilson lower bound
    of the accuracy is above the eval split's majority share plus ``min_lift_over_majority``.
    ``min_accuracy`` is a value threshold (0 = none). ``max_accuracy_decrease`` is a change
    threshold against the baseline (-1.0 = none): the candidate's accuracy may be at most
    this much below the baseline's. ``min_class_recall`` (0 = none) is a floor on every
    class's recall. All gate the overall eval split; per-slice numbers are reported. Returns
    a JSON-able summary (also in ``metrics.json``) whose ``verdict`` is the decision in one
    line.
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
    train_warning = str(read_model_meta(model_dir, ()).get("warning") or "")
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
        if lean_path(len(labels), beam_pipeline_args):
            _in_memory.run(batch, config, str(out))
        else:
            _tfma.run(batch, config, str(out), list(beam_pipeline_args or []))
        candidate = _tfma.read_metrics(str(out), _tfma.CANDIDATE, classes, has_baseline)
        baseline = (
            _tfma.read_metrics(str(out), _tfma.BASELINE, classes, True) if has_baseline else None
        )
        gated = min_accuracy > 0 or (has_baseline and max_accuracy_decrease is not None)
        # Without TFMA thresholds TFMA reports "missing_thresholds": nothing of TFMA's to gate.
        tfma_ok, failures = _tfma.read_validation(str(out)) if gated else (True, [])
        measured = evidence.class_metrics(candidate["confusion_matrix"])
        if measured.examples != candidate["examples"]:  # the verdict's count must be the truth
            raise RuntimeError(
                f"{out}: TFMA's confusion matrix counts {measured.examples} eval examples, its "
                f"example count {candidate['examples']}")
        failed, passed = _threshold_lines(failures, candidate, baseline, min_accuracy,
                                          max_accuracy_decrease)
        if not tfma_ok and not failed:  # one verdict: the gate's, which TFMA's refusal joins
            failed.append("TFMA's validation did not pass")
        gate = _gate(measured, classes, p, failed, passed, train_warning)
        ok = gate["blessed"]
        summary = _summary(candidate, baseline, classes, measured, gate) | {
            "eval_split_examples": sample.total}
        report = {
            **summary,
            "slices": candidate["slices"],
            "thresholds": {
                "require_beats_majority": p.require_beats_majority,
                "min_lift_over_majority": p.min_lift_over_majority,
                "min_class_recall": p.min_class_recall,
                "min_accuracy": min_accuracy,
                "max_accuracy_decrease": max_accuracy_decrease,
                "gated_slice": "overall",
            },
            "model": str(model_dir),
            "baseline_model": str(baseline_model_dir) or None,
        }
        if baseline is not None:
            report["baseline"] = {
                "accuracy": baseline["accuracy"],
                "per_class": _per_class(
                    evidence.class_metrics(baseline["confusion_matrix"]), classes),
                "slices": baseline["slices"],
            }
        write_json(out / METRICS_FILE, _json_safe(report))
        write_blessing(blessing, ok, [summary["verdict"], *summary["reasons"],
                                      *_measured_lines(measured, classes)])
    log.info("evaluate: %s", summary["verdict"])
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
        examples_dir, SPLIT, meta, size or 2**62, SAMPLE_SEED, progress.of("evaluate")
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


def lean_path(examples: int, beam_pipeline_args: list[str]) -> bool:
    """Whether TFMA's results are computed in memory: a small sample and no Beam runner named
    (a named runner asks for Beam whatever the size)."""
    return examples <= LEAN_MAX_EXAMPLES and not runner_named(beam_pipeline_args)


def kfp_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Headline numbers for a KFP ``Metrics`` artifact (``log_metric`` takes floats only)."""
    low, high = summary["accuracy_interval"]
    values = {
        "accuracy": summary["accuracy"],
        "accuracy_lower_95": low,
        "accuracy_upper_95": high,
        "examples": float(summary["examples"]),
        "majority_share": summary["majority_share"],
        "balanced_accuracy": summary["balanced_accuracy"],
        "macro_f1": summary["macro_f1"],
        "blessed": 1.0 if summary["blessed"] else 0.0,
    }
    if summary.get("baseline_accuracy") is not None:
        values["baseline_accuracy"] = summary["baseline_accuracy"]
    for cls, numbers in summary["per_class"].items():
        for name in ("precision", "recall", "f1"):
            if numbers.get(name) is not None:
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


def _threshold_lines(
    failures: list[dict[str, Any]],
    candidate: dict[str, Any],
    baseline: dict[str, Any] | None,
    min_accuracy: float,
    max_accuracy_decrease: float | None,
) -> tuple[list[str], list[str]]:
    """TFMA's thresholds as (failed, passed) lines: what failed and by how much, or what
    passed."""
    accuracy = candidate["accuracy"]
    failed, passed = [], []
    for failure in failures:
        if "message" in failure:
            failed.append(f"TFMA validation failed: {failure['message']}")
        elif failure["change"]:  # a change threshold exists only against a baseline
            drop = -failure["value"]
            was = f"{baseline['accuracy']:.4f}" if baseline is not None else "?"
            failed.append(
                f"accuracy fell by {drop:.4f} against the baseline ({was} "
                f"-> {accuracy:.4f}), more than max_accuracy_decrease {-failure['bound']:.4f} "
                f"by {drop + failure['bound']:.4f}"
            )
        else:
            failed.append(
                f"accuracy {failure['value']:.4f} is below min_accuracy {failure['bound']:.4f} "
                f"by {failure['bound'] - failure['value']:.4f}"
            )
    if not failed:
        if min_accuracy > 0:
            passed.append(f"accuracy {accuracy:.4f} >= min_accuracy {min_accuracy:.4f}")
        if baseline is not None and max_accuracy_decrease is not None:
            passed.append(
                f"accuracy change {accuracy - baseline['accuracy']:+.4f} against the baseline "
                f"({baseline['accuracy']:.4f}) is within max_accuracy_decrease "
                f"{max_accuracy_decrease:.4f}"
            )
    if max_accuracy_decrease is not None and baseline is None:
        passed.append("max_accuracy_decrease not checked: no baseline model given")
    return failed, passed


def _gate(
    m: evidence.ClassMetrics,
    classes: list[str],
    p: EvaluateParams,
    threshold_failed: list[str],
    threshold_passed: list[str],
    train_warning: str,
) -> dict[str, Any]:
    """The decision and its evidence: ``blessed``, ``reasons`` (failed checks first, then the
    passed ones, then notes) and ``verdict``, the decision in one line.

    The beats-the-majority check comes first, because it is the evidence; train's "learnt
    nothing" finding is a note among the reasons, never a refusal of its own (train measures
    on its own sample; the interval on the eval split decides).
    """
    failed: list[str] = []
    passed: list[str] = []
    notes: list[str] = []
    lift = p.min_lift_over_majority  # 0 whenever the check is off (EvaluateParams.check)
    beats = evidence.beats_majority(m, lift)
    if p.require_beats_majority:
        (passed if beats else failed).append(evidence.majority_line(m, classes, lift, beats))
    else:
        notes.append("the beats-the-majority check is off (require_beats_majority is false): "
                     + evidence.majority_line(m, classes, lift, beats))
    low_recall = evidence.recall_failures(m, classes, p.min_class_recall)
    failed += low_recall
    if p.min_class_recall > 0 and not low_recall:
        passed.append(f"every class's recall is at least min_class_recall "
                      f"{evidence.pct(p.min_class_recall)}")
    failed += threshold_failed
    passed += threshold_passed
    if train_warning:
        notes.append(f"train found: {train_warning}")
    blessed = not failed
    majority = evidence.majority_line(m, classes, lift, beats, short=True)
    if blessed:
        verdict = "BLESSED: " if p.require_beats_majority else \
            "BLESSED without the majority check (require_beats_majority is false): "
        verdict += majority
    else:
        # the evidence leads whenever it refused; otherwise the first failed threshold, with
        # the eval examples and the interval still stated
        if p.require_beats_majority and not beats:
            verdict = f"NOT BLESSED: {majority}"
        else:
            verdict = f"NOT BLESSED: {failed[0]} ({majority})"
        if len(failed) > 1:
            verdict += f"; {len(failed) - 1} more failed check(s) in the blessing"
        if train_warning:
            verdict += f"; train found: {train_warning.split(':', 1)[0]}"
    return {"blessed": blessed, "reasons": failed + passed + notes, "verdict": verdict,
            "train_warning": train_warning}


def _per_class(m: evidence.ClassMetrics, classes: list[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and eval examples per class, from the confusion matrix's counts.

    Not TFMA's binarized ``Precision``/``Recall`` at ``top_k=1`` (still in TFMA's output): for
    a model that answers one class whatever its input, TFMA 0.47 gives the class it never
    answers a recall of 1.0, where the matrix (and the truth) says 0.
    """
    return {cls: {"precision": m.precision[i], "recall": m.recall[i], "f1": m.f1[i],
                  "examples": m.support[i]} for i, cls in enumerate(classes)}


def _measured_lines(m: evidence.ClassMetrics, classes: list[str]) -> list[str]:
    """What the blessing rests on, for the blessing file: the numbers behind the verdict."""
    recalls = ", ".join(
        f"'{evidence.class_name(name)}' {'n/a' if r is None else evidence.pct(r)} of "
        f"{m.support[i]:,}"
        for i, (name, r) in enumerate(zip(classes, m.recall, strict=True)))
    return [
        f"measured: {evidence.accuracy_phrase(m)} (95% Wilson interval); majority class "
        f"'{evidence.class_name(classes[m.majority_class])}' {evidence.pct(m.majority_share)}; "
        f"balanced accuracy "
        f"{evidence.pct(m.balanced_accuracy)}; macro-F1 {m.macro_f1:.4f}",
        f"recall per class: {recalls}",
    ]


def _summary(
    candidate: dict[str, Any],
    baseline: dict[str, Any] | None,
    classes: list[str],
    m: evidence.ClassMetrics,
    gate: dict[str, Any],
) -> dict[str, Any]:
    summary = {
        "accuracy": candidate["accuracy"],
        "blessed": gate["blessed"],
        "verdict": gate["verdict"],
        "reasons": gate["reasons"],
        "per_class": _per_class(m, classes),
        "confusion_matrix": candidate["confusion_matrix"],
        "classes": classes,
        "examples": candidate["examples"],
        "correct": m.correct,
        "accuracy_interval": list(m.interval),
        "interval": {"method": "wilson", "confidence": evidence.CONFIDENCE},
        "majority_class": classes[m.majority_class],
        "majority_share": m.majority_share,
        "balanced_accuracy": m.balanced_accuracy,
        "macro_f1": m.macro_f1,
        "train_warning": gate["train_warning"],
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
