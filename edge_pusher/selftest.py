"""Running a model with LiteRT and checking it against its signed self-test.

Signatures prove the bytes are the ones the pipeline published; the self-test proves this device
*computes* what the pipeline computed with them (right runtime, right delegate, no silent
quantization mismatch, a model that loads at all). It runs before a model is activated.

The self-test travels inside the target's signed custom metadata::

    {"input": ARRAY, "expected_output": ARRAY, "atol": float, "rtol": float}

where ARRAY is ``{"dtype": "float32", "shape": [...], "b64": base64(little-endian bytes)}``:
real-valued (dequantized) numbers, so one self-test serves every variant; each device
quantizes the input with the model's *own* input parameters and dequantizes the output.

Only numpy and ai_edge_litert are imported, and LiteRT only when a model is actually run.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

EDGETPU_DELEGATE = "libedgetpu.so.1"
MAX_SELF_TEST_VALUES = 1 << 16  # keeps signed metadata small


class ModelLoadError(Exception):
    """The model could not be loaded or run by this device's runtime."""


class SelfTestMismatch(Exception):
    """The model ran but its output differs from the signed expected output."""


def encode_array(values) -> dict:
    arr = np.ascontiguousarray(np.asarray(values, dtype="<f4"))
    if arr.size > MAX_SELF_TEST_VALUES:
        raise ValueError(f"self-test array has {arr.size} values; at most "
                         f"{MAX_SELF_TEST_VALUES} fit in signed metadata")
    return {"dtype": "float32", "shape": list(arr.shape),
            "b64": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(obj) -> np.ndarray:
    """Decode an ARRAY (or accept a plain nested list); raise ValueError if malformed."""
    if isinstance(obj, list):
        return np.asarray(obj, dtype=np.float32)
    if not isinstance(obj, dict) or obj.get("dtype") != "float32":
        raise ValueError("self-test array must be {'dtype': 'float32', 'shape', 'b64'}")
    shape = [int(d) for d in obj.get("shape", [])]
    try:
        raw = base64.b64decode(obj.get("b64", ""), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("self-test array is not valid base64") from None
    arr = np.frombuffer(raw, dtype="<f4")
    if arr.size != int(np.prod(shape)) or arr.size > MAX_SELF_TEST_VALUES:
        raise ValueError(f"self-test array has {arr.size} values, shape says {shape}")
    return arr.reshape(shape).astype(np.float32)


def load_interpreter(model_path: str, hardware: str = "cpu"):
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate

        delegates = [load_delegate(EDGETPU_DELEGATE)] if hardware == "edgetpu" else None
        interpreter = Interpreter(model_path=model_path, experimental_delegates=delegates)
        interpreter.allocate_tensors()
        return interpreter
    except Exception as e:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError/OSError
        raise ModelLoadError(f"LiteRT cannot load the model: {e}") from None


def quantization_of(detail: dict) -> dict | None:
    """{'scale', 'zero_point', 'dtype'} of a quantized tensor, None for a float tensor."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"])
    if dtype.kind not in "iu" or not scale:
        return None
    return {"scale": float(scale), "zero_point": int(zero_point), "dtype": dtype.name}


def io_quantization(model_path: str) -> dict:
    """The first input's and output's quantization, read from the model itself."""
    it = load_interpreter(model_path)
    return {"input_quantization": quantization_of(it.get_input_details()[0]),
            "output_quantization": quantization_of(it.get_output_details()[0])}


def run(interpreter, x: np.ndarray) -> np.ndarray:
    """Feed real-valued ``x`` (quantized with the model's own parameters); return real output."""
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    x = np.asarray(x, dtype=np.float32)
    if x.size == int(np.prod(inp["shape"])):
        x = x.reshape(inp["shape"])
    else:
        interpreter.resize_tensor_input(inp["index"], list(x.shape))
        interpreter.allocate_tensors()
    q = quantization_of(inp)
    if q:
        info = np.iinfo(q["dtype"])
        x = np.clip(np.round(x / q["scale"] + q["zero_point"]), info.min, info.max)
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    q = quantization_of(out)
    if q:
        y = (y.astype(np.float32) - q["zero_point"]) * q["scale"]
    return np.asarray(y, dtype=np.float32)


def default_tolerance(model_path: str) -> tuple[float, float]:
    """One quantization step and a half for quantized outputs, else a small float slack."""
    q = io_quantization(model_path)["output_quantization"]
    if q:
        return 1.5 * q["scale"], 0.0
    return 1e-3, 1e-3


def make_self_test(model_path: str, x, expected=None, atol: float | None = None,
                   rtol: float | None = None, hardware: str = "cpu") -> dict:
    """Build the signed self-test. Without ``expected``, the publisher computes it with LiteRT
    (and with it, also checks that the model runs before anyone ships it)."""
    x = np.asarray(x, dtype=np.float32)
    if expected is None:
        expected = run(load_interpreter(model_path, hardware), x)
    d_atol, d_rtol = default_tolerance(model_path) if hardware == "cpu" else (None, None)
    atol = atol if atol is not None else (d_atol if d_atol is not None else 0.05)
    rtol = rtol if rtol is not None else (d_rtol if d_rtol is not None else 0.0)
    return {"input": encode_array(x), "expected_output": encode_array(expected),
            "atol": float(atol), "rtol": float(rtol)}


def check(model_path: str, self_test: dict, hardware: str = "cpu") -> None:
    """Raise ModelLoadError or SelfTestMismatch unless the model passes its self-test."""
    try:
        x = decode_array(self_test["input"])
        expected = decode_array(self_test["expected_output"])
        atol = float(self_test.get("atol", 0.0))
        rtol = float(self_test.get("rtol", 0.0))
    except (KeyError, TypeError, ValueError) as e:
        raise SelfTestMismatch(f"signed self-test is malformed: {e}") from None
    interpreter = load_interpreter(model_path, hardware)
    try:
        y = run(interpreter, x)
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"LiteRT failed to run the model: {e}") from None
    if y.size != expected.size:
        raise SelfTestMismatch(f"output has {y.size} values, expected {expected.size}")
    y = y.reshape(expected.shape)
    if not np.allclose(y, expected, atol=atol, rtol=rtol):
        worst = float(np.max(np.abs(y - expected)))
        raise SelfTestMismatch(f"output differs from the signed expected output by up to "
                               f"{worst:.6g} (atol {atol:.6g}, rtol {rtol:.6g})")
