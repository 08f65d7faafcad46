"""The one LiteRT module: load a .tflite model, quantize and dequantize by a tensor's own
parameters, and run one input, exactly as a device does.

Quantize's measurements, the publisher's self-test and the device's self-test all go through
here, so the three can never disagree on the arithmetic (which dtypes are quantized, how a float
tensor is described, how values are rounded and clipped). Only numpy and ``ai_edge_litert`` are
imported, LiteRT only when a model is loaded: the device carries this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgeship.errors import ModelLoadError

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter

#: An array of real values, as the self-test and the measurements hold them.
Real = npt.NDArray[np.float32]

#: The Edge TPU runtime's delegate library, loaded for builds whose hardware is ``edgetpu``.
EDGETPU_DELEGATE = "libedgetpu.so.1"
_DELEGATES = {"edgetpu": EDGETPU_DELEGATE}


@dataclass(frozen=True)
class Quantization:
    """How a tensor maps real values to its stored values: ``real = scale * (q - zero_point)``.

    ``scales``/``zero_points`` hold one entry per tensor (per-tensor) or one per slice along
    ``axis`` (per-channel); both are empty for a float tensor, whose values are real already.
    """

    dtype: str
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    axis: int = 0

    @classmethod
    def of(cls, detail: Mapping[str, Any]) -> Quantization:
        """Read a tensor detail from ``get_input_details``/``get_tensor_details`` (a mapping:
        older runtimes give fewer fields)."""
        dtype = np.dtype(detail["dtype"])
        params: Mapping[str, Any] = detail.get("quantization_parameters") or {}
        scales = tuple(float(s) for s in np.ravel(params.get("scales", [])))
        zero_points = tuple(int(z) for z in np.ravel(params.get("zero_points", [])))
        if not scales:  # older runtimes give only the per-tensor pair
            scale, zero_point = detail.get("quantization", (0.0, 0))
            scales, zero_points = ((float(scale),), (int(zero_point),)) if scale else ((), ())
        if dtype.kind not in "iu" or not any(scales):
            return cls(dtype.name)
        if len(zero_points) != len(scales):  # one zero point shared by every channel
            zero_points = (zero_points[0] if zero_points else 0,) * len(scales)
        return cls(dtype.name, scales, zero_points, int(params.get("quantized_dimension", 0)))

    @property
    def quantized(self) -> bool:
        return bool(self.scales)

    @property
    def step(self) -> float | None:
        """The real value of one integer step (per-tensor), None for a float tensor."""
        return max(self.scales) if self.scales else None

    def as_dict(self) -> dict[str, Any]:
        """``{"dtype": "float32"}``; per-tensor ``{"dtype", "scale", "zero_point"}``;
        per-channel ``{"dtype", "scale": [...], "zero_point": [...], "axis"}``."""
        if not self.scales:
            return {"dtype": self.dtype}
        if len(self.scales) == 1:
            return {"dtype": self.dtype, "scale": self.scales[0],
                    "zero_point": self.zero_points[0]}
        return {"dtype": self.dtype, "scale": list(self.scales),
                "zero_point": list(self.zero_points), "axis": self.axis}

    def _broadcast(self, ndim: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        scales = np.asarray(self.scales, dtype=np.float64)
        zero_points = np.asarray(self.zero_points, dtype=np.float64)
        if len(self.scales) > 1:
            shape = [1] * ndim
            shape[self.axis] = len(self.scales)
            scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
        return scales, zero_points

    def quantize(self, real: npt.ArrayLike) -> npt.NDArray[Any]:
        """Real values -> this tensor's dtype: ``round(real / scale) + zero_point``, rounding
        halves away from zero as TFLite's QUANTIZE does, clipped to the dtype's range."""
        values = np.asarray(real, dtype=np.float64)
        if not self.scales:
            return values.astype(self.dtype)
        scales, zero_points = self._broadcast(values.ndim)
        info = np.iinfo(self.dtype)
        steps = values / scales
        q = np.sign(steps) * np.floor(np.abs(steps) + 0.5) + zero_points
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, stored: npt.ArrayLike) -> Real:
        """This tensor's stored values -> real values (float32)."""
        values = np.asarray(stored)
        if not self.scales:
            return values.astype(np.float32)
        scales, zero_points = self._broadcast(values.ndim)
        return ((values.astype(np.float64) - zero_points) * scales).astype(np.float32)

    def real_range(self) -> tuple[float, float]:
        """The smallest and largest real value the tensor can hold (over all its channels);
        (-1, 1) as a stand-in for a float tensor."""
        if not self.scales:
            return -1.0, 1.0
        info = np.iinfo(self.dtype)
        scales = np.asarray(self.scales, dtype=np.float64)
        zero_points = np.asarray(self.zero_points, dtype=np.float64)
        ends = np.concatenate([(limit - zero_points) * scales for limit in (info.min, info.max)])
        return float(ends.min()), float(ends.max())


def delegate_for(hardware: str) -> str | None:
    """The delegate library a build for ``hardware`` needs (None: the CPU kernels)."""
    return _DELEGATES.get(hardware)


def load(model: str | bytes, *, delegate: str | None = None, num_threads: int | None = None
         ) -> Interpreter:
    """An allocated LiteRT interpreter for a model file (path) or its bytes.

    Raises :class:`~edgeship.errors.ModelLoadError` when the runtime cannot load it: a corrupt
    file, an op this runtime lacks, or a delegate that is not installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate

        delegates = [load_delegate(delegate)] if delegate else None
        if isinstance(model, bytes):
            interpreter = Interpreter(model_content=model, experimental_delegates=delegates,
                                      num_threads=num_threads)
        else:
            interpreter = Interpreter(model_path=model, experimental_delegates=delegates,
                                      num_threads=num_threads)
        interpreter.allocate_tensors()
        return interpreter
    except Exception as err:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError/OSError
        raise ModelLoadError(f"LiteRT cannot load the model: {err}") from None


def input_quantization(interpreter: Interpreter) -> Quantization:
    return Quantization.of(interpreter.get_input_details()[0])


def output_quantization(interpreter: Interpreter) -> Quantization:
    return Quantization.of(interpreter.get_output_details()[0])


def set_input(interpreter: Interpreter, real: npt.ArrayLike) -> None:
    """Quantize a real-valued input with the model's own parameters and set it, resizing the
    input tensor when ``real`` has another shape (e.g. a batch of several examples)."""
    detail = interpreter.get_input_details()[0]
    values = np.asarray(real, dtype=np.float32)
    if values.size == int(np.prod(detail["shape"])):
        values = values.reshape(detail["shape"])
    else:
        interpreter.resize_tensor_input(detail["index"], list(values.shape))
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], Quantization.of(detail).quantize(values))


def get_output(interpreter: Interpreter) -> Real:
    """The first output, dequantized with the model's own parameters."""
    detail = interpreter.get_output_details()[0]
    return Quantization.of(detail).dequantize(interpreter.get_tensor(detail["index"]))


def run(interpreter: Interpreter, real: npt.ArrayLike) -> Real:
    """Run one real-valued input and return the real-valued first output.

    Raises :class:`~edgeship.errors.ModelLoadError` if the runtime fails to run it.
    """
    try:
        set_input(interpreter, real)
        interpreter.invoke()
        return get_output(interpreter)
    except Exception as err:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError
        raise ModelLoadError(f"LiteRT failed to run the model: {err}") from None
