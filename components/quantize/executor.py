"""Quantize: convert the trained SavedModel to TFLite variants, measure each with LiteRT on the
eval split, check the int8 model against the Edge TPU's requirements, and bless or refuse it.

Plain Python on local paths (no kfp; TensorFlow only inside functions), so it runs the same from
the KFP component, from a TFX adapter, or from a test. Every number in the report comes from
running the exact file that is written next to it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship import litert
from edgeship.components import progress
from edgeship.components._dataset import check_labels, encode, sample_split
from edgeship.components.artifacts import (
    MODEL_META,
    atomic_output_dir,
    is_blessed,
    write_blessing,
    write_json,
)
from edgeship.components.quantize import edgetpu, inputs, int8, measure, sources
from edgeship.components.quantize.convert import VARIANTS
from edgeship.components.quantize.report import edgetpu_line, format_table, markdown
from edgeship.components.quantize.sources import Sources
from edgeship.contract import self_test_tolerance
from edgeship.errors import InputError
from edgeship.params import StepParams, is_int, is_number, require
from edgeship.quantization_report import REPORT_JSON, REPORT_SCHEMA_VERSION

log = logging.getLogger(__name__)

REPORT_MD = "report.md"
EDGETPU_FILE = "model_int8_edgetpu.tflite"
CALIBRATION_SPLIT = "train"
EVAL_SPLIT = "eval"
CALIBRATION_SEED = 0
EVAL_SEED = 1
#: The variant devices run, gated by the blessing and given a self-test for the publisher.
PUBLISHED_VARIANT = "int8"

__all__ = ["QuantizeParams", "run_quantize", "format_table", "VARIANTS"]


@dataclass(frozen=True)
class QuantizeParams(StepParams):
    """Quantize's parameters (the component's, one for one); see the quantize README."""

    variants: list[str] = field(default_factory=list)
    calibration_examples: int = 200
    max_accuracy_drop: float = 1.0
    num_threads: int = 1
    latency_runs: int = 200
    eval_examples: int = 20_000
    signature: str = "serving_default"
    label_key: str = ""
    feature_keys: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    def check(self) -> None:
        require(isinstance(self.variants, list | tuple), "variants", self.variants,
                f"a list of variant names (known: {', '.join(VARIANTS)})")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise InputError(f"variants: unknown {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(VARIANTS)})")
        require(is_int(self.calibration_examples) and self.calibration_examples >= 1,
                "calibration_examples", self.calibration_examples, ">= 1")
        require(is_number(self.max_accuracy_drop) and self.max_accuracy_drop >= 0,
                "max_accuracy_drop", self.max_accuracy_drop, ">= 0")
        require(is_int(self.num_threads) and self.num_threads >= 1, "num_threads",
                self.num_threads, ">= 1")
        require(is_int(self.latency_runs) and self.latency_runs >= 1, "latency_runs",
                self.latency_runs, ">= 1")
        require(is_int(self.eval_examples) and self.eval_examples >= 0, "eval_examples",
                self.eval_examples, ">= 0 (0: the whole eval split)")
        require(isinstance(self.signature, str) and bool(self.signature), "signature",
                self.signature, "the name of a SavedModel signature")
        require(isinstance(self.label_key, str), "label_key", self.label_key, "a feature name")
        for name in ("feature_keys", "classes"):
            value = getattr(self, name)
            require(isinstance(value, list | tuple) and all(isinstance(v, str) and v
                                                             for v in value),
                    name, value, "a list of names")
        if len(set(self.classes)) != len(self.classes):
            raise InputError(f"classes: {list(self.classes)} names a class twice")

    def chosen_variants(self) -> tuple[list[str], bool]:
        """The variants to make, in canonical order, and whether the caller named them."""
        if not self.variants:
            return list(VARIANTS), False
        return [v for v in VARIANTS if v in self.variants], True


def variant_file(variant: str) -> str:
    return f"model_{variant}.tflite"


def _calibration_set(src: Sources, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N train examples to calibrate int8 with, and up to ``int8.HELD_BACK_EXAMPLES`` others
    (with their labels) to choose a remedy on: one seeded uniform sample (streamed), split in
    two, so that the two sets never share an example and every class is likely represented."""
    sample = sample_split(
        src.examples_dir,
        CALIBRATION_SPLIT,
        src.examples_meta,
        n + int8.HELD_BACK_EXAMPLES,
        CALIBRATION_SEED,
        progress.of("quantize"),
        src.batches(CALIBRATION_SPLIT),
    )
    columns, labels = sample.columns, sample.labels
    if len(labels) == 0:
        raise InputError(f"int8: {src.where(CALIBRATION_SPLIT)} has no examples to calibrate "
                         "with")
    x = encode(src.model_meta["encoding"], columns, src.where(CALIBRATION_SPLIT))
    order = np.random.default_rng(CALIBRATION_SEED).permutation(len(x))
    calibration, held = np.sort(order[:n]), np.sort(order[n:])
    return x[calibration], x[held], labels[held]


def _convert_all(
    static_dir: str, chosen: list[str], calibration: np.ndarray | None, named: bool
) -> dict[str, bytes]:
    """Convert every chosen variant; if any fails, fail the step and say which would convert."""
    from edgeship.components.quantize.convert import convert

    made: dict[str, bytes] = {}
    failures: dict[str, InputError] = {}
    for variant in chosen:
        try:
            made[variant] = convert(static_dir, variant, calibration)
            log.info("converted %s: %d bytes", variant, len(made[variant]))
        except InputError as err:
            failures[variant] = err
    if failures:
        first = next(iter(failures.values()))
        hint = (
            f"; these convert: {', '.join(made)} (ask for them by name with variants=[...])"
            if made
            else ""
        )
        what = "requested" if named else "default (all)"
        raise InputError(f"{first} [{what} variants: {', '.join(chosen)}]{hint}")
    return made


def _measure_variant(
    path: Path,
    x: np.ndarray,
    labels: np.ndarray,
    float_pred: np.ndarray,
    float_accuracy: float,
    params: QuantizeParams,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The variant's row of the report, and the self-test a device would run for it: the first
    eval example (real values) and the output LiteRT gave for it."""
    interpreter = litert.load(str(path), num_threads=params.num_threads)
    q_in = litert.input_quantization(interpreter)
    q_out = litert.output_quantization(interpreter)
    probs = measure.predict(
        interpreter, x, progress.of("quantize"), path.stem.removeprefix("model_")
    )
    pred = probs.argmax(axis=1)
    accuracy = float((pred == labels).mean())
    row = {
        "file": path.name,
        "size_bytes": os.path.getsize(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "accuracy": accuracy,
        "accuracy_delta_pp": (accuracy - float_accuracy) * 100.0,
        "agreement": float((pred == float_pred).mean()),
        "latency_ms": measure.latency_ms(interpreter, x[0], params.latency_runs),
        "input_quantization": q_in.as_dict(),
        "output_quantization": q_out.as_dict(),
        "input_shape": [int(d) for d in interpreter.get_input_details()[0]["shape"]],
        "tensor_dtypes": measure.tensor_dtypes(interpreter),
    }
    atol, rtol = self_test_tolerance(q_out.step)
    self_test = {"variant": path.stem.removeprefix("model_"), "input": x[:1].tolist(),
                 "expected_output": probs[:1].tolist(), "atol": atol, "rtol": rtol}
    return row, self_test


def _over_budget(row: dict[str, Any], max_drop: float) -> bool:
    """The variant lost more accuracy against the float model than ``max_drop`` points."""
    return -row["accuracy_delta_pp"] > max_drop + 1e-9


def _int8_remedies(static_dir: str, calibration: np.ndarray,
                   held: tuple[np.ndarray, np.ndarray], x_eval: np.ndarray,
                   out: Path, p: QuantizeParams) -> dict[str, Any]:
    """int8 missed its budget: diagnose it, and try calibrations without the most extreme
    examples, chosen on held-back train examples; the chosen one replaces the int8 file."""
    from edgeship.components.quantize.convert import convert

    held_x, held_labels = held
    sample = x_eval[np.random.default_rng(CALIBRATION_SEED).permutation(len(x_eval))
                    [:int8.DEBUG_EXAMPLES]]
    try:
        diagnosis = int8.diagnose(static_dir, calibration, sample)
    except Exception as err:  # noqa: BLE001 - the debugger failing must not hide the verdict
        diagnosis = {"layers": [], "remedy": f"the diagnosis failed ({type(err).__name__}: "
                                             f"{' '.join(str(err).split())[:200]})"}
    log.info("int8 diagnosis: %s", diagnosis["remedy"])
    if len(held_labels) == 0:  # every train example calibrates: nothing to choose on
        return {"diagnosis": diagnosis, "held_back_examples": 0,
                "plain_held_back_accuracy": None, "range_clipping": [], "applied": None,
                "quantization_aware_training": int8.QAT}

    def held_back_accuracy(content: bytes) -> float:
        interpreter = litert.load(content, num_threads=p.num_threads)
        predicted = measure.predict(interpreter, held_x).argmax(axis=1)
        return float((predicted == held_labels).mean()) if len(held_labels) else 0.0

    plain = held_back_accuracy((out / variant_file("int8")).read_bytes())
    tried, contents = [], {}
    for share, subset in int8.clip_candidates(calibration):
        try:
            contents[share] = convert(static_dir, "int8", subset)
        except InputError as err:
            tried.append({"share": share, "error": str(err)})
            continue
        tried.append({"share": share, "calibration_examples": int(len(subset)),
                      "held_back_accuracy": held_back_accuracy(contents[share])})
    best = int8.choose(plain, [t for t in tried if "error" not in t], len(held_labels))
    if best is not None:
        (out / variant_file("int8")).write_bytes(contents[best["share"]])
        log.info("int8: calibration without the %.0f%% most extreme examples applied",
                 100 * best["share"])
    return {"diagnosis": diagnosis, "held_back_examples": int(len(held_labels)),
            "plain_held_back_accuracy": plain, "range_clipping": tried,
            "applied": None if best is None else best["share"],
            "quantization_aware_training": int8.QAT}


def _blessing(report: dict, model_blessing_dir: str, max_drop: float) -> tuple[bool, list[str]]:
    """BLESSED only if evaluate blessed the model and the gated variant stays within max_drop."""
    reasons = []
    ok = True
    if model_blessing_dir:
        if not Path(model_blessing_dir).is_dir():
            raise InputError(f"{model_blessing_dir}: model blessing folder not found")
        if is_blessed(model_blessing_dir):
            reasons.append("evaluate blessed the model")
        else:
            ok = False
            reasons.append(f"evaluate did not bless the model ({model_blessing_dir})")
    gated = ["int8"] if "int8" in report["variants"] else list(report["variants"])
    for name in gated:
        v = report["variants"][name]
        drop = 0.0 - v["accuracy_delta_pp"]  # 0.0 - 0.0 is 0.0, where -0.0 prints "-0.00"
        within = not _over_budget(v, max_drop)
        ok = ok and within
        reasons.append(
            f"{name} accuracy {v['accuracy']:.4f} vs float {report['float_accuracy']:.4f}: "
            f"drop {drop:.2f} pp {'<=' if within else '>'} max {max_drop:.2f} pp"
        )
        coarse = v.get("coarse_inputs")
        if not within and coarse:
            shown = ", ".join(f"{c['feature']} ({c['steps']:.1f})" for c in coarse[:5])
            reasons.append(
                f"likely cause: one int8 input scale ({v['input_quantization']['scale']:.4g}) "
                f"leaves {len(coarse)} input feature(s) fewer than {inputs.MIN_STEPS} steps: "
                f"{shown}; scale features to similar ranges before the model"
            )
    remedies = report.get("int8_remedies")
    if remedies:
        reasons += _remedy_reasons(remedies, within)
    return ok, reasons


def _remedy_reasons(remedies: dict[str, Any], within: bool) -> list[str]:
    """What was tried on a failing int8 model, and what still ails it, in a line each."""
    share = remedies["applied"]
    tried = ", ".join(f"{100 * t['share']:.0f}%: {t['held_back_accuracy']:.4f}"
                      for t in remedies["range_clipping"] if "held_back_accuracy" in t)
    if not remedies["held_back_examples"]:
        lines = ["int8 range clipping: not tried, every train example calibrates (raise the "
                 "train split above calibration_examples to leave some to choose on)"]
        return lines + ([] if within else [f"int8 diagnosis: {remedies['diagnosis']['remedy']}"])
    lines = [
        f"int8 range clipping, by held-back accuracy on {remedies['held_back_examples']} train "
        f"examples (plain {remedies['plain_held_back_accuracy']:.4f}; without the most "
        f"extreme {tried or 'none converted'}): "
        + ("none beat plain calibration" if share is None else
           f"applied, calibrated without the {100 * share:.0f}% most extreme examples")
    ]
    if not within:
        lines.append(f"int8 diagnosis: {remedies['diagnosis']['remedy']}")
    return lines


def _edgetpu(out: Path, made: list[str]) -> dict[str, Any]:
    version = edgetpu.compiler_version()
    result: dict[str, Any] = {
        "compiler": version or f"{edgetpu.COMPILER} not found on PATH",
        "analysis": None,
        "compiled": False,
    }
    if "int8" not in made:
        result["compile_error"] = "no int8 variant was asked for"
        return result
    int8 = out / variant_file("int8")
    result["analysis"] = edgetpu.analyse(int8)
    if version is None:
        result["compile_error"] = result["compiler"]
        return result
    compiled = edgetpu.compile_model(int8, out)
    result["compiled"] = compiled.pop("compiled")
    if result["compiled"]:
        result["file"] = EDGETPU_FILE
        result["size_bytes"] = os.path.getsize(out / EDGETPU_FILE)
        result["sha256"] = hashlib.sha256((out / EDGETPU_FILE).read_bytes()).hexdigest()
    else:
        result["compile_error"] = compiled.pop("error", "compilation failed")
    result["compiler_summary"] = compiled
    return result


def run_quantize(
    model_dir: str,
    examples_dir: str,
    output_dir: str,
    blessing_dir: str,
    report_dir: str,
    params: QuantizeParams | None = None,
    *,
    model_blessing_dir: str = "",
    **overrides: Any,
) -> dict[str, Any]:
    """Make, measure and bless the TFLite variants of ``model_dir``; returns a short summary.

    The parameters are :class:`QuantizeParams` (or the same names as keywords);
    ``model_blessing_dir`` is evaluate's blessing ("" skips that check). Writes ``output_dir``
    (``model_<variant>.tflite``, optionally ``model_int8_edgetpu.tflite``, ``model_meta.json``,
    ``quantization_report.json``), ``blessing_dir`` (BLESSED/NOT_BLESSED) and ``report_dir``
    (``report.md``), each only if the whole step succeeds.
    """
    from edgeship.components.quantize.convert import (
        predict_saved_model,
        save_single_example_model,
    )

    p = QuantizeParams.build(params, **overrides)
    chosen, named = p.chosen_variants()
    src, loaded, spec = sources.resolve(model_dir, examples_dir, p)
    model_meta = src.model_meta
    sample = sample_split(
        examples_dir,
        EVAL_SPLIT,
        src.examples_meta,
        p.eval_examples or 2**62,
        EVAL_SEED,
        progress.of("quantize"),
        src.batches(EVAL_SPLIT),
    )
    columns, labels, eval_split_examples = sample.columns, sample.labels, sample.total
    where = src.where(EVAL_SPLIT)
    if len(labels) == 0:
        raise InputError(f"{where}: no examples to measure variants on")
    check_labels(where, labels, src.examples_meta["classes"], sample.positions)
    x_eval = encode(model_meta["encoding"], columns, where)
    if tuple(x_eval.shape[1:]) != spec.input_shape:
        raise InputError(
            f"{Path(model_dir) / MODEL_META}: encoding gives inputs of shape "
            f"{list(x_eval.shape[1:])} but the model takes {list(spec.input_shape)}"
        )
    float_probs = predict_saved_model(loaded, spec, x_eval)
    float_pred = float_probs.argmax(axis=1)
    float_accuracy = float((float_pred == labels).mean())
    log.info("float SavedModel accuracy %.4f on %d eval examples", float_accuracy, len(labels))

    calibration = held_back = held_back_labels = None
    if "int8" in chosen:
        calibration, held_back, held_back_labels = _calibration_set(src, p.calibration_examples)
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "float_accuracy": float_accuracy,
        "eval_examples": int(len(labels)),
        "eval_split_examples": int(eval_split_examples),
        "classes": list(model_meta["classes"]),
        "calibration_examples": 0 if calibration is None else int(len(calibration)),
        "num_threads": p.num_threads,
        "latency_runs": p.latency_runs,
        "max_accuracy_drop": p.max_accuracy_drop,
        "variants": {},
        "self_test": None,
    }
    with (
        tempfile.TemporaryDirectory(prefix="edgeship-quantize-") as scratch,
        atomic_output_dir(output_dir) as out,
        atomic_output_dir(blessing_dir) as bless,
        atomic_output_dir(report_dir) as rep,
    ):
        static_dir = save_single_example_model(loaded, spec, Path(scratch) / "single_example")
        made = _convert_all(static_dir, chosen, calibration, named)
        for variant, content in made.items():
            path = out / variant_file(variant)
            path.write_bytes(content)
            row, self_test = _measure_variant(path, x_eval, labels, float_pred, float_accuracy, p)
            report["variants"][variant] = row
            if variant == PUBLISHED_VARIANT:
                report["self_test"] = self_test
            log.info("%s: accuracy %.4f, %d bytes", variant, row["accuracy"], row["size_bytes"])
        if "int8" in made and _over_budget(report["variants"]["int8"], p.max_accuracy_drop):
            # int8 was chosen, so the calibration set was drawn above
            assert calibration is not None and held_back is not None
            assert held_back_labels is not None
            held = (held_back, held_back_labels)
            report["int8_remedies"] = _int8_remedies(static_dir, calibration, held, x_eval, out,
                                                     p)
            plain = report["variants"]["int8"]  # kept in the report, never hidden
            report["int8_remedies"]["plain"] = {k: plain[k] for k in (
                "accuracy", "accuracy_delta_pp", "agreement", "sha256")}
            if report["int8_remedies"]["applied"] is not None:  # measure what is now the model
                row, self_test = _measure_variant(out / variant_file("int8"), x_eval, labels,
                                                  float_pred, float_accuracy, p)
                report["variants"]["int8"], report["self_test"] = row, self_test
        if "int8" in made:
            int8_row = report["variants"]["int8"]
            int8_row["coarse_inputs"] = inputs.coarse_features(
                x_eval, model_meta["encoding"], int8_row["input_quantization"]["scale"]
            )
        report["edgetpu"] = _edgetpu(out, list(made))
        blessed, reasons = _blessing(report, model_blessing_dir, p.max_accuracy_drop)
        report["blessed"] = blessed
        report["reasons"] = reasons
        write_json(out / MODEL_META, model_meta)
        write_json(out / REPORT_JSON, report)
        write_blessing(bless, blessed, reasons)
        (rep / REPORT_MD).write_text(markdown(report))
    return summarize(report)


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a pipeline runner prints, plus the table itself."""
    return {
        "variants": {
            name: {
                "accuracy": v["accuracy"],
                "size_bytes": v["size_bytes"],
                "latency_ms_median": v["latency_ms"]["median"],
            }
            for name, v in report["variants"].items()
        },
        "float_accuracy": report["float_accuracy"],
        "blessed": report["blessed"],
        "reasons": report["reasons"],
        "edgetpu": edgetpu_line(report["edgetpu"]),
        "table": format_table(report),
    }
