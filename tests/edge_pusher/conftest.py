"""Fixtures of the push tests: the quantize step's output, as quantize writes it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeship import litert
from edgeship.contract import self_test_tolerance
from edgeship.quantization_report import REPORT_JSON, REPORT_SCHEMA_VERSION


@pytest.fixture
def quantized(tmp_path, tiny_models) -> Path:
    """The quantize step's layout, with a report in its exact shape (a real-valued self-test
    input and the output LiteRT gave for it)."""
    out = tmp_path / "quantized"
    out.mkdir()
    for name in ("model_int8.tflite", "model_float32.tflite"):
        shutil.copyfile(tiny_models / name, out / name)
    interpreter = litert.load(str(out / "model_int8.tflite"))
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    expected = litert.run(interpreter, x)
    atol, rtol = self_test_tolerance(litert.output_quantization(interpreter).step)
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "float_accuracy": 0.93,
        "variants": {
            "int8": {"accuracy": 0.92, "size_bytes": 1608, "agreement": 0.99,
                     "sha256": hashlib.sha256((out / "model_int8.tflite").read_bytes())
                     .hexdigest(),
                     "latency_ms": {"median": 0.01, "p90": 0.02},
                     "input_quantization":
                         litert.input_quantization(interpreter).as_dict(),
                     "output_quantization":
                         litert.output_quantization(interpreter).as_dict()},
            "float32": {"accuracy": 0.93, "size_bytes": 1824},
        },
        "self_test": {"variant": "int8", "input": x.tolist(), "expected_output":
                      expected.tolist(), "atol": atol, "rtol": rtol},
    }
    (out / REPORT_JSON).write_text(json.dumps(report))
    return out
