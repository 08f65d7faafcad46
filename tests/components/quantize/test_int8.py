"""When int8 misses its budget, quantize diagnoses it with TFLite's QuantizationDebugger, tries
calibrations without the most extreme examples on held-back train data, applies the best, and
says all of it: on a model built to quantize badly (rare far-out readings stretch the int8
ranges until ordinary examples get too few steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.components import _dataset
from edgeship.components.quantize import int8
from edgeship.components.quantize.executor import run_quantize
from tests.helpers import builders
from tests.helpers.builders import train_and_export

FEATURES = [{"name": "x", "dtype": "float", "shape": [1]},
            {"name": "y", "dtype": "float", "shape": [1]}]


def far_out_rows(n: int, rng: np.random.Generator) -> list[dict]:
    """Three overlapping classes; 3% of readings are 300 times too large (a sensor glitch)."""
    rows = []
    for i in range(n):
        label = i % 3
        x, y = rng.normal(label * 1.5), rng.normal(-label * 1.2)
        if rng.random() < 0.03:
            x, y = x * 300, y * 300
        rows.append({"x": float(x), "y": float(y), "label": label})
    return rows


def plain_mlp(shape, num_classes, x_train):
    import keras

    inputs = keras.Input(shape)
    x = keras.layers.Dense(64, activation="relu")(inputs)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


@pytest.fixture(scope="module")
def badly_quantizing(tmp_path_factory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("far_out")
    rng = np.random.default_rng(0)
    examples = builders.write_examples(root / "examples", "tabular", FEATURES, ["a", "b", "c"],
                                       {"train": far_out_rows(3000, rng),
                                        "eval": far_out_rows(1500, rng)})
    # train's encoding clips scaled inputs to +-5, which alone keeps these glitches from
    # stretching the int8 ranges; the remedies are for what it does not catch (a model whose
    # encoding does not clip): so here it does not
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_dataset, "CLIP", 0.0)
        model = train_and_export(examples, root / "model", plain_mlp, epochs=40)
    run_quantize(str(model), str(examples), str(root / "q"), str(root / "b"), str(root / "r"),
                 variants=["float32", "int8"], latency_runs=5)
    return json.loads((root / "q" / "quantization_report.json").read_text()), root


def test_the_diagnosis_names_the_layer_that_loses_most(badly_quantizing) -> None:
    report, root = badly_quantizing
    remedies = report["int8_remedies"]  # present only when plain int8 missed its budget
    layers = remedies["diagnosis"]["layers"]
    assert layers and [r["rmse_per_step"] for r in layers] == sorted(
        (r["rmse_per_step"] for r in layers), reverse=True)
    worst = layers[0]
    # the glitches stretch the input's one int8 scale: the error enters at the first layer
    assert worst["layer"] == "FULLY_CONNECTED #0" and worst["rmse_per_step"] > 1
    assert worst["range"] == pytest.approx(255 * worst["scale"])
    assert "the first layer, so the error comes in with the input" in remedies["diagnosis"][
        "remedy"]
    assert any(r.startswith("int8 range clipping") for r in report["reasons"])
    markdown = (root / "r" / "report.md").read_text()
    assert "## int8 diagnosis" in markdown and "FULLY_CONNECTED #0" in markdown


def test_range_clipping_is_chosen_on_held_back_data_and_applied(badly_quantizing) -> None:
    report, root = badly_quantizing
    remedies = report["int8_remedies"]
    tried = remedies["range_clipping"]
    assert [t["share"] for t in tried] == list(int8.CLIP_SHARES)
    best = max(tried, key=lambda t: t["held_back_accuracy"])
    assert best["held_back_accuracy"] > remedies["plain_held_back_accuracy"] + 0.1
    assert remedies["applied"] == best["share"]
    # what is measured, reported and shipped is the remedied model
    int8_row = report["variants"]["int8"]
    assert int8_row["accuracy"] > 0.6
    assert remedies["plain"]["accuracy"] < 0.55  # what it replaced stays in the report
    data = (root / "q" / "model_int8.tflite").read_bytes()
    import hashlib

    assert int8_row["sha256"] == hashlib.sha256(data).hexdigest()
    assert "quantization-aware training supports only Keras 2" in remedies[
        "quantization_aware_training"]


def test_extremeness_is_robust_to_the_outliers_it_finds() -> None:
    x = np.concatenate([np.random.default_rng(1).normal(size=(97, 2)), [[300.0, 0], [0, -400],
                                                                         [250, 250]]])
    score = int8.extremeness(x)
    assert set(np.argsort(-score)[:3]) == {97, 98, 99}
    kept = dict(int8.clip_candidates(x))[0.03]
    assert len(kept) == 97 and np.abs(kept).max() < 10


def test_a_candidate_must_beat_plain_calibration_by_more_than_noise() -> None:
    tried = [{"share": 0.01, "held_back_accuracy": 0.9005},
             {"share": 0.2, "held_back_accuracy": 0.9005}]
    assert int8.choose(0.9, tried, 2000) is None  # +0.05 pp: one example's worth
    tried.append({"share": 0.1, "held_back_accuracy": 0.95})
    assert int8.choose(0.9, tried, 2000)["share"] == 0.1
    equal = [{"share": 0.2, "held_back_accuracy": 0.95},
             {"share": 0.03, "held_back_accuracy": 0.95}]
    assert int8.choose(0.9, equal, 2000)["share"] == 0.03  # the least clipping among equals
