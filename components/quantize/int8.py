"""When the int8 model misses its accuracy budget: find why, try what can fix it, say both.

- **Diagnosis.** TFLite's ``QuantizationDebugger`` runs the float and the quantized model side
  by side on eval examples and measures, per layer, the error quantization adds. The layers with
  the largest error relative to their quantization step are named, with their int8 range (255
  steps of their scale), and the remedy that fits.
- **Range clipping, chosen on held-back data.** A layer's int8 range is calibrated from the
  most extreme values it sees; a few extreme examples (outliers, or inputs far from every class
  boundary, where a ReLU network's logits grow without bound) can stretch a range so far that
  one step is wider than the margin between classes. The calibration is repeated without the
  most extreme share of its examples (by their largest robust z-score over the input features),
  for a few shares: values beyond the narrower ranges are clipped at inference. Each candidate
  is measured on held-back train examples (never the eval split the blessing is decided on) and
  the best one is kept only if it beats plain calibration there. Every candidate's numbers go
  into the report.
- **Quantization-aware training** is not applied: tensorflow-model-optimization supports only
  Keras 2 (``tf-keras``) models and edgeship's are Keras 3. The report says so.

TensorFlow is imported inside functions.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Shares of the calibration set (the most extreme examples first) left out, one candidate
#: each, when plain int8 misses its budget.
CLIP_SHARES = (0.01, 0.03, 0.1, 0.2, 0.35)
#: Eval examples the debugger runs both models on, and held-back train examples candidates are
#: compared on.
DEBUG_EXAMPLES = 256
HELD_BACK_EXAMPLES = 2_000
#: A candidate must beat plain calibration on held-back examples by more than this.
MIN_GAIN = 0.002
WORST_LAYERS = 3
QAT = ("not applied: tensorflow-model-optimization's quantization-aware training supports only "
       "Keras 2 (tf-keras) models, and edgeship's models are Keras 3")


def diagnose(saved_model_dir: str, calibration: np.ndarray, debug: np.ndarray) -> dict[str, Any]:
    """The layers where int8 loses most: ``{"layers": [{"layer", "tensor", "scale", "range",
    "rmse", "rmse_per_step"}, ...], "remedy": "..."}``, worst first (by error per step).

    ``rmse_per_step`` is the root-mean-square difference between the layer's int8 and float
    outputs, in units of its quantization step: about 0.3 is rounding alone; well above 1, the
    layer's range is too wide (or its values too spread) for 8 bits.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, ["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _examples(calibration)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=_examples(debug))
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale, mse = float(row["scale"]), float(row["mean_squared_error"])
        if not scale or not math.isfinite(mse) or row["op_name"] == "SOFTMAX":
            continue  # softmax's output scale is fixed (1/256): nothing a remedy could change
        rows.append({"layer": f"{row['op_name']} #{len(rows)}", "tensor": row["tensor_name"],
                     "scale": scale, "range": 255 * scale, "rmse": math.sqrt(mse),
                     "rmse_per_step": math.sqrt(mse) / scale, "position": len(rows)})
    worst = sorted(rows, key=lambda r: r["rmse_per_step"], reverse=True)[:WORST_LAYERS]
    return {"layers": worst, "remedy": remedy(worst, len(rows))}


def remedy(worst: list[dict[str, Any]], layers: int) -> str:
    """What to do about the layer that loses most, in a sentence: where it sits says why."""
    if not worst:
        return "the debugger found no quantized layer to blame; check the calibration examples"
    top = worst[0]
    said = (f"{top['layer']} loses most ({top['rmse_per_step']:.1f} steps of error over an "
            f"int8 range of {top['range']:.3g})")
    if top["position"] == layers - 1:
        return (f"{said}: the output layer's logits span a range so wide that one step is "
                "coarser than the margin between close classes; retrain with label_smoothing "
                "(train's default 0.1 bounds the logits) or weight decay")
    if top["position"] == 0:
        return (f"{said}: the first layer, so the error comes in with the input, quantized "
                "with one scale for all features; remove outliers or clip the features, and "
                "scale them to similar ranges (see coarse_inputs)")
    return (f"{said}: an inner layer's activations span a wide range, stretched by a few "
            "extreme examples; retrain with weight decay, or clip the inputs' outliers")


def extremeness(x: np.ndarray) -> np.ndarray:
    """Each example's largest robust z-score over its input features: distance from the
    median in units of the median absolute deviation, which a few outliers cannot inflate."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    median = np.median(flat, axis=0)
    spread = 1.4826 * np.median(np.abs(flat - median), axis=0)
    spread = np.where(spread > 0, spread, np.abs(flat - median).mean(axis=0) + 1e-12)
    return (np.abs(flat - median) / spread).max(axis=1)


def clip_candidates(calibration: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """(share left out, calibration set) candidates: without the most extreme examples."""
    order = np.argsort(-extremeness(calibration), kind="stable")
    out = []
    for share in CLIP_SHARES:
        drop = int(round(share * len(calibration)))
        if 0 < drop < len(calibration):
            out.append((share, calibration[np.sort(order[drop:])]))
    return out


def choose(plain: float, tried: list[dict[str, Any]], examples: int
           ) -> dict[str, Any] | None:
    """The best candidate by held-back accuracy (the smallest share among equals), if it beats
    plain calibration there by more than noise: ``MIN_GAIN``, and at least two examples of the
    ``examples`` held back."""
    best = max(tried, key=lambda t: (t["held_back_accuracy"], -t["share"]), default=None)
    margin = max(MIN_GAIN, 2 / max(examples, 1))
    return best if best and best["held_back_accuracy"] > plain + margin else None


def _examples(rows: np.ndarray) -> Callable[[], Any]:
    def generate():
        for row in rows:
            yield [row[np.newaxis].astype(np.float32)]

    return generate
