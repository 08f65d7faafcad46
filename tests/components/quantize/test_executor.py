"""The quantize executor on real, small models: every number is checked against a hand
computation on the files it wrote (LiteRT interpreter outputs, file sizes, tensor dtypes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeship.components._dataset import encode, load_split
from edgeship.components.artifacts import (
    MODEL_META,
    SERVING_DIR,
    is_blessed,
    read_examples_meta,
    write_blessing,
)
from edgeship.components.quantize import executor
from edgeship.components.quantize.executor import run_quantize
from tests.helpers import builders
from tests.helpers.builders import tabular_mlp, train_and_export

FAST = {"latency_runs": 5}  # timings are not asserted; keep the runs short


def abs_mlp(shape, num_classes, x_train):
    """A tabular MLP with an ABS in the middle: int8 TFLite has it, the Edge TPU does not."""
    import keras

    return tabular_mlp(shape, num_classes, x_train, middle=keras.layers.Lambda(keras.ops.abs))


@pytest.fixture(scope="module")
def tabular(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tabular")
    examples = builders.tabular_examples(root / "examples", n=600)
    return examples, train_and_export(examples, root / "model", tabular_mlp)


def outputs(root: Path) -> dict[str, str]:
    return {
        "output_dir": str(root / "quantized"),
        "blessing_dir": str(root / "blessing"),
        "report_dir": str(root / "report"),
    }


@pytest.fixture(scope="module")
def tabular_run(tabular, tmp_path_factory):
    examples, model = tabular
    root = tmp_path_factory.mktemp("tabular_run")
    blessing = root / "model_blessing"
    write_blessing(blessing, True, ["evaluate: ok"])
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join(  # the compiler must be absent for this run
        p for p in path.split(os.pathsep) if not (Path(p) / "edgetpu_compiler").exists()
    )
    try:
        summary = run_quantize(
            str(model),
            str(examples),
            **outputs(root),
            model_blessing_dir=str(blessing),
            latency_runs=20,
        )
    finally:
        os.environ["PATH"] = path
    report = json.loads((root / "quantized" / "quantization_report.json").read_text())
    return root, summary, report


def test_every_variant_written_with_real_sizes_and_meta(tabular, tabular_run) -> None:
    root, summary, report = tabular_run
    out = root / "quantized"
    assert sorted(report["variants"]) == ["dynamic_range", "float16", "float32", "int8"]
    for name, v in report["variants"].items():
        assert v["file"] == f"model_{name}.tflite"
        assert v["size_bytes"] == os.path.getsize(out / v["file"])
        assert summary["variants"][name]["size_bytes"] == v["size_bytes"]
        assert 0 < v["latency_ms"]["median"] <= v["latency_ms"]["p90"]
    assert json.loads((out / MODEL_META).read_text()) == json.loads(
        (tabular[1] / MODEL_META).read_text()
    )
    assert report["eval_examples"] == 150
    # a tiny model: per-tensor overhead hides most of the saving (see the benchmark)
    sizes = {n: v["size_bytes"] for n, v in report["variants"].items()}
    assert sizes["int8"] < sizes["float32"]
    assert "float32" in summary["table"] and "int8" in summary["table"]


def test_int8_file_is_integer_end_to_end(tabular_run) -> None:
    from ai_edge_litert.interpreter import Interpreter

    root, _, report = tabular_run
    interp = Interpreter(model_path=str(root / "quantized" / "model_int8.tflite"))
    interp.allocate_tensors()
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8
    dtypes = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    assert dtypes <= {"int8", "int32"}, dtypes  # int32: biases only
    assert "float32" not in report["variants"]["int8"]["tensor_dtypes"]
    q = report["variants"]["int8"]["input_quantization"]
    assert q["dtype"] == "int8" and q["scale"] > 0
    assert report["variants"]["float32"]["input_quantization"]["dtype"] == "float32"


def test_accuracy_and_agreement_match_a_hand_computation(tabular, tabular_run) -> None:
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    examples, model = tabular
    root, _, report = tabular_run
    meta = json.loads((model / MODEL_META).read_text())
    cols, labels = load_split(examples, "eval", read_examples_meta(examples))
    x = encode(meta["encoding"], cols)
    float_pred = (
        tf.saved_model.load(str(model / SERVING_DIR))
        .signatures["serving_default"](inputs=tf.constant(x))["probabilities"]
        .numpy()
        .argmax(1)
    )
    assert report["float_accuracy"] == pytest.approx((float_pred == labels).mean())

    interp = Interpreter(model_path=str(root / "quantized" / "model_int8.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]
    preds = []
    for row in x:
        q = np.clip(np.round(row / s_in + z_in), -128, 127).astype(np.int8)[None]
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        preds.append(
            ((interp.get_tensor(out["index"])[0].astype(np.float32) - z_out) * s_out).argmax()
        )
    preds = np.array(preds)
    int8 = report["variants"]["int8"]
    assert int8["accuracy"] == pytest.approx((preds == labels).mean())
    assert int8["agreement"] == pytest.approx((preds == float_pred).mean())
    assert int8["accuracy_delta_pp"] == pytest.approx(
        100 * (int8["accuracy"] - report["float_accuracy"])
    )


def test_self_test_is_real_valued_and_reproduces_on_litert(tabular_run) -> None:
    """The report's self-test is for the published int8 model, in real values: quantizing its
    input with the model's own parameters (written out here, apart from edgeship.litert) and
    dequantizing the output gives the expected output within the stated tolerance."""
    from ai_edge_litert.interpreter import Interpreter

    root, _, report = tabular_run
    sample = report["self_test"]
    assert report["schema_version"] == 1 and sample["variant"] == "int8"
    interp = Interpreter(model_path=str(root / "quantized" / "model_int8.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    x = np.array(sample["input"], dtype=np.float64)
    interp.set_tensor(inp["index"], np.clip(np.round(x / scale + zero_point), -128, 127)
                      .astype(np.int8))
    interp.invoke()
    out_scale, out_zero_point = out["quantization"]
    got = (interp.get_tensor(out["index"]).astype(np.float64) - out_zero_point) * out_scale
    assert got.shape == np.array(sample["expected_output"]).shape
    assert np.allclose(got, sample["expected_output"], atol=sample["atol"], rtol=sample["rtol"])
    assert sample["atol"] == pytest.approx(1.5 * out_scale)  # one and a half output steps


def test_blessing_follows_the_int8_drop_and_compiler_absence_is_reported(tabular_run) -> None:
    root, summary, report = tabular_run
    drop = -report["variants"]["int8"]["accuracy_delta_pp"]
    assert report["blessed"] == (drop <= 1.0) == is_blessed(root / "blessing")
    reason = next(r for r in report["reasons"] if r.startswith("int8 accuracy"))
    assert float(reason.split("drop ")[1].split(" pp")[0]) == pytest.approx(drop, abs=0.005)
    edgetpu = report["edgetpu"]
    assert edgetpu["compiler"] == "edgetpu_compiler not found on PATH"
    assert edgetpu["compiled"] is False
    assert not list((root / "quantized").glob("*edgetpu*"))
    assert "not found on PATH" in summary["edgetpu"]
    md = (root / "report" / "report.md").read_text()
    assert "| int8 |" in md and "not found on PATH" in md


def test_no_accuracy_change_reads_as_a_drop_of_zero() -> None:
    int8 = {"accuracy": 1.0, "accuracy_delta_pp": 0.0}
    report = {"float_accuracy": 1.0, "variants": {"int8": int8}}
    blessed, reasons = executor._blessing(report, "", max_drop=1.0)
    assert blessed
    assert reasons == ["int8 accuracy 1.0000 vs float 1.0000: drop 0.00 pp <= max 1.00 pp"]


def _unclipped(model: Path, copy: Path) -> Path:
    """The model with an encoding that does not clip its scaled inputs to +-5 (train's does,
    so that one outlier cannot widen an int8 range; a module file's model may not)."""
    import shutil

    shutil.copytree(model, copy)
    meta = json.loads((copy / MODEL_META).read_text())
    for column in meta["encoding"]["columns"]:
        column.pop("clip", None)
    (copy / MODEL_META).write_text(json.dumps(meta))
    return copy


def test_broken_calibration_set_fails_the_blessing(tabular, tmp_path) -> None:
    """Calibrate on a train split scaled up 1000x (inputs unclipped): int8 steps are too
    coarse, accuracy falls."""
    examples, model = tabular
    model = _unclipped(model, tmp_path / "model")
    broken = tmp_path / "examples"
    meta = read_examples_meta(examples)
    cols, labels = load_split(examples, "train", meta)
    rows = {"train": [], "eval": []}
    for i, label in enumerate(labels):
        rows["train"].append(
            {
                "x": cols["x"][i] * 1000,
                "y": cols["y"][i] * 1000,
                "colour": "green",
                "label": int(label),
            }
        )
    eval_cols, eval_labels = load_split(examples, "eval", meta)
    for i, label in enumerate(eval_labels):
        rows["eval"].append(
            {
                name: eval_cols[name][i].item() if name != "colour" else eval_cols[name][i]
                for name in ("x", "y", "colour")
            }
            | {"label": int(label)}
        )
    builders.write_examples(broken, "tabular", meta["features"], meta["classes"], rows)
    run_quantize(str(model), str(broken), **outputs(tmp_path), variants=["int8"], **FAST)
    report = json.loads((tmp_path / "quantized" / "quantization_report.json").read_text())
    assert report["variants"]["int8"]["accuracy_delta_pp"] < -5
    assert report["blessed"] is False
    assert (tmp_path / "blessing" / "NOT_BLESSED").is_file()
    why = (tmp_path / "blessing" / "NOT_BLESSED").read_text()
    assert "> max 1.00 pp" in why
    # the calibration ranges are 1000x too wide: x and y fall into a few int8 steps
    coarse = {c["feature"] for c in report["variants"]["int8"]["coarse_inputs"]}
    assert {"x", "y"} <= coarse
    assert "likely cause: one int8 input scale" in why


def test_unblessed_model_is_not_blessed_however_good(tabular, tmp_path) -> None:
    examples, model = tabular
    write_blessing(tmp_path / "eval_blessing", False, ["auc too low"])
    summary = run_quantize(
        str(model),
        str(examples),
        **outputs(tmp_path),
        variants=["int8"],
        model_blessing_dir=str(tmp_path / "eval_blessing"),
        max_accuracy_drop=100.0,
        **FAST,
    )
    assert summary["blessed"] is False
    assert any("evaluate did not bless" in r for r in summary["reasons"])
    assert list((tmp_path / "quantized").glob("*.tflite")) == [
        tmp_path / "quantized" / "model_int8.tflite"
    ]


def test_edgetpu_analysis_flags_an_operator_the_edgetpu_lacks(tmp_path) -> None:
    examples = builders.tabular_examples(tmp_path / "examples", n=200)
    model = train_and_export(examples, tmp_path / "model", abs_mlp, epochs=5)
    run_quantize(str(model), str(examples), **outputs(tmp_path), variants=["int8"], **FAST)
    report = json.loads((tmp_path / "quantized" / "quantization_report.json").read_text())
    rows = report["edgetpu"]["analysis"]["operators"]
    (abs_row,) = [r for r in rows if r["op"] == "ABS"]
    assert not abs_row["maps"]
    assert "ABS is not an Edge TPU operation" in abs_row["reasons"]
    before = [r for r in rows if r["index"] < abs_row["index"]]
    after = [r for r in rows if r["index"] > abs_row["index"]]
    assert before and all(r["maps"] for r in before)
    assert after and not any(r["maps"] for r in after)  # one partition: the rest stays on CPU
    analysis = report["edgetpu"]["analysis"]
    assert analysis["mapped"] == len(before)
    assert analysis["mapped_share"] == pytest.approx(len(before) / len(rows))
    assert "| ABS | no |" in (tmp_path / "report" / "report.md").read_text()




def test_variants_are_made_in_canonical_order() -> None:
    assert executor.QuantizeParams(variants=["int8", "float32"]).chosen_variants() == (
        ["float32", "int8"], True)
    assert executor.QuantizeParams().chosen_variants() == (list(executor.VARIANTS), False)
