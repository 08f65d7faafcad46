"""Edge TPU rules and compiler-log parsing, on hand-written operator records (no TensorFlow)."""

from __future__ import annotations

import os
from pathlib import Path

from edgeship.components.quantize import edgetpu


def tensor(name: str, type_: str = "INT8", shape=(1, 16), signature=None, constant=False):
    return {
        "name": name,
        "type": type_,
        "shape": list(shape),
        "shape_signature": list(signature or shape),
        "constant": constant,
    }


def op(name: str, inputs, outputs, options=None):
    return {
        "index": 0,
        "op": name,
        "version": 1,
        "inputs": inputs,
        "outputs": outputs,
        "options": options,
    }


def test_int8_fully_connected_with_int32_bias_meets_every_requirement() -> None:
    fc = op(
        "FULLY_CONNECTED",
        [
            tensor("x"),
            tensor("w", shape=(16, 16), constant=True),
            tensor("b", "INT32", shape=(16,), constant=True),
        ],
        [tensor("y")],
    )
    assert edgetpu.operator_problems(fc) == []


def test_4d_conv_filters_are_weights_not_activations() -> None:
    conv = op(
        "CONV_2D",
        [
            tensor("x", shape=(1, 8, 8, 3)),
            tensor("w", shape=(16, 3, 3, 3), constant=True),
            tensor("b", "INT32", shape=(16,), constant=True),
        ],
        [tensor("y", shape=(1, 8, 8, 16))],
        options=type("Options", (), {"dilationHFactor": 1, "dilationWFactor": 1})(),
    )
    assert edgetpu.operator_problems(conv) == []


def test_each_documented_requirement_is_flagged() -> None:
    problems = edgetpu.operator_problems(
        op(
            "ADD",
            [tensor("a", "FLOAT32"), tensor("b", signature=(-1, 16))],
            [tensor("c", shape=(2, 4, 4, 4, 1))],
        )
    )
    assert "tensor 'a' is float32, not 8-bit" in problems
    assert "tensor 'b' has a dynamic shape [-1, 16]" in problems
    assert any("outside the 3 innermost dimensions" in p for p in problems)
    softmax = op("SOFTMAX", [tensor("s", shape=(1, 4, 5))], [tensor("t", shape=(1, 4, 5))])
    assert any(
        "SOFTMAX input [1, 4, 5] is not 1-D" in p for p in edgetpu.operator_problems(softmax)
    )
    assert edgetpu.operator_problems(op("SIN", [tensor("u")], [tensor("v")])) == [
        "SIN is not an Edge TPU operation"
    ]


def test_compiler_log_summary_is_parsed() -> None:
    log = """Edge TPU Compiler version 16.0.384591198
Input: model_int8.tflite
Output: model_int8_edgetpu.tflite

Operator                       Count      Status

FULLY_CONNECTED                3          Mapped to Edge TPU
ABS                            1          Operation not supported
SOFTMAX                        1          Mapped to Edge TPU
Number of operations that will run on Edge TPU: 4
Number of operations that will run on CPU: 1
"""
    summary = edgetpu.parse_compiler_log(log)
    assert summary["on_edgetpu"] == 4 and summary["on_cpu"] == 1
    assert {"op": "ABS", "count": 1, "status": "Operation not supported"} in summary["operators"]
    assert len(summary["operators"]) == 3


def test_absent_compiler_is_reported_and_nothing_is_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert edgetpu.compiler_version() is None
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(b"not used")
    result = edgetpu.compile_model(model, tmp_path)
    assert result == {"compiled": False, "error": "edgetpu_compiler not found on PATH"}
    assert sorted(os.listdir(tmp_path)) == ["model_int8.tflite"]


def test_a_compiler_that_cannot_run_is_reported_not_raised(tmp_path: Path, monkeypatch) -> None:
    """An edgetpu_compiler on PATH that cannot execute here (it is an x86-64-only binary) must
    leave the step reporting why, not crash it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "edgetpu_compiler"
    fake.write_bytes(b"\x7fELF not really a program")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert "does not run" in edgetpu.compiler_version()
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(b"not used")
    result = edgetpu.compile_model(model, tmp_path)
    assert result["compiled"] is False
    assert result["error"].startswith("edgetpu_compiler did not run: ")
    assert not (tmp_path / "model_int8_edgetpu.tflite").exists()
