"""Running a TFLite file with the LiteRT interpreter, exactly as a device would.

Only ai-edge-litert and numpy: the numbers in the report come from the same runtime the devices
ship, not from TensorFlow's own interpreter.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

WARMUP_INVOKES = 10


def interpreter(path: str, num_threads: int) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=path, num_threads=num_threads)
    interp.allocate_tensors()
    return interp


def quantization(detail: dict[str, Any]) -> dict[str, Any]:
    """A tensor's dtype and per-tensor scale/zero point (0.0/0 for float tensors)."""
    scale, zero_point = detail["quantization"]
    return {
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def to_model_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float examples -> the model's input dtype, quantized with the model's own parameters."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind != "i":
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.round(x / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def from_model_output(raw: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Raw output tensor -> float, dequantized with the model's own parameters."""
    if np.dtype(detail["dtype"]).kind != "i":
        return raw.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (raw.astype(np.float32) - zero_point) * scale


def run(interp: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Invoke once per example; returns (dequantized outputs [N, C], raw outputs [N, C])."""
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    raws = []
    for row in x:
        interp.set_tensor(inp["index"], to_model_input(row[np.newaxis], inp))
        interp.invoke()
        raws.append(interp.get_tensor(out["index"])[0].copy())
    raw = np.stack(raws) if raws else np.zeros((0,), dtype=np.dtype(out["dtype"]))
    return from_model_output(raw, out), raw


def latency_ms(interp: Any, example: np.ndarray, runs: int) -> dict[str, float]:
    """Median and p90 wall time of single-example invokes, after a warm-up."""
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], to_model_input(example[np.newaxis], inp))
    for _ in range(WARMUP_INVOKES):
        interp.invoke()
    times = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        start = time.perf_counter_ns()
        interp.invoke()
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}


def tensor_dtypes(path: str) -> dict[str, int]:
    """How many tensors of each dtype the file holds (int8 models: int8, plus int32 biases)."""
    interp = interpreter(path, num_threads=1)
    counts: dict[str, int] = {}
    for detail in interp.get_tensor_details():
        name = np.dtype(detail["dtype"]).name
        counts[name] = counts.get(name, 0) + 1
    return counts
