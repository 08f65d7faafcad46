"""The bundled pipelines' int8 models meet the quantize size target: at most 0.30 of float32.

A .tflite file's size follows from the architecture (tensor shapes, per-channel quantization
parameters), not from the trained values, so one epoch is enough to check it; the accuracy
targets need fully trained models and are measured by ``benchmarks/quantize_bench.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeship.components.ingest.executor import run_ingest
from edgeship.components.quantize.executor import run_quantize
from edgeship.components.train.executor import run_train
from edgeship.pipelines.registry import PIPELINES, default_ingest

MAX_SIZE_RATIO = 0.30


@pytest.mark.slow
@pytest.mark.parametrize("name", PIPELINES)
def test_int8_file_is_at_most_030_of_float32(name: str, tmp_path: Path) -> None:
    kind, data_path, ingest_args = default_ingest(name)
    examples, model, quantized = tmp_path / "examples", tmp_path / "model", tmp_path / "tflite"
    run_ingest(kind, data_path, str(examples), **ingest_args)
    run_train(str(examples), str(model), epochs=1)
    run_quantize(
        str(model),
        str(examples),
        str(quantized),
        str(tmp_path / "blessing"),
        str(tmp_path / "report"),
        variants=["float32", "int8"],
        calibration_examples=20,
        latency_runs=1,
    )
    report = json.loads((quantized / "quantization_report.json").read_text())
    sizes = {v: (quantized / f"model_{v}.tflite").stat().st_size for v in ("float32", "int8")}
    assert {v: report["variants"][v]["size_bytes"] for v in sizes} == sizes
    ratio = sizes["int8"] / sizes["float32"]
    assert ratio <= MAX_SIZE_RATIO, f"{name}: int8 is {ratio:.3f} of float32 ({sizes})"
