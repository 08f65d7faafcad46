"""Measuring a TFLite file with the LiteRT interpreter, exactly as a device runs it.

The arithmetic (which tensors are quantized, how values are rounded, clipped and dequantized)
is ``edgeship.litert``'s, the module the publisher's and the device's self-tests use too: the
numbers in the report come from the runtime and the code the devices ship.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeship import litert
from edgeship.components.progress import Progress

WARMUP_INVOKES = 10


def predict(interpreter: Any, x: np.ndarray, progress: Progress | None = None,
            what: str = "") -> np.ndarray:
    """Invoke once per example (as a device does); real-valued outputs [N, C]."""
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    q_in, q_out = litert.Quantization.of(inp), litert.Quantization.of(out)
    rows = []
    for row in x:
        interpreter.set_tensor(inp["index"], q_in.quantize(row[np.newaxis]))
        interpreter.invoke()
        rows.append(q_out.dequantize(interpreter.get_tensor(out["index"]))[0])
        if progress:
            progress.update(lambda: f"measuring {what}: {len(rows)} of {len(x)} examples")
    return np.stack(rows) if rows else np.zeros((0, int(out["shape"][-1])), dtype=np.float32)


def latency_ms(interpreter: Any, example: np.ndarray, runs: int) -> dict[str, float]:
    """Median and p90 wall time of single-example invokes, after a warm-up."""
    litert.set_input(interpreter, example[np.newaxis])
    for _ in range(WARMUP_INVOKES):
        interpreter.invoke()
    times = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        start = time.perf_counter_ns()
        interpreter.invoke()
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}


def tensor_dtypes(interpreter: Any) -> dict[str, int]:
    """How many tensors of each dtype the model holds (int8 models: int8, plus int32 biases)."""
    counts: dict[str, int] = {}
    for detail in interpreter.get_tensor_details():
        name = np.dtype(detail["dtype"]).name
        counts[name] = counts.get(name, 0) + 1
    return counts
