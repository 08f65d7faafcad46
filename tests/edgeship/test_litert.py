"""The one LiteRT module: (de)quantization by a tensor's own parameters, loading and running."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship import litert
from edgeship.errors import ModelLoadError


def detail(dtype, scales, zero_points, axis=0):
    return {"dtype": dtype, "quantization": (scales[0], zero_points[0]) if scales else (0.0, 0),
            "quantization_parameters": {"scales": np.array(scales, dtype=np.float32),
                                        "zero_points": np.array(zero_points, dtype=np.int32),
                                        "quantized_dimension": axis}}


def test_uint8_per_tensor_rounds_and_clips_to_its_range() -> None:
    q = litert.Quantization.of(detail(np.uint8, [0.5], [128]))
    assert q.as_dict() == {"dtype": "uint8", "scale": 0.5, "zero_point": 128}
    stored = q.quantize([-64.0, 0.0, 0.26, 63.5, 1000.0, -1000.0, 0.25, -0.25])
    assert stored.dtype == np.uint8
    # halves round away from zero, as TFLite's QUANTIZE does (numpy's round would go to even)
    assert stored.tolist() == [0, 128, 129, 255, 255, 0, 129, 127]
    assert q.dequantize(stored).tolist() == [-64.0, 0.0, 0.5, 63.5, 63.5, -64.0, 0.5, -0.5]
    assert q.real_range() == (-64.0, 63.5)


def test_int8_per_channel_scales_each_slice_along_its_axis() -> None:
    q = litert.Quantization.of(detail(np.int8, [0.1, 1.0], [0, -10], axis=1))
    assert q.as_dict() == {"dtype": "int8", "scale": [pytest.approx(0.1), 1.0],
                           "zero_point": [0, -10], "axis": 1}
    real = np.array([[0.5, 5.0], [-0.5, -5.0]])
    stored = q.quantize(real)
    assert stored.tolist() == [[5, -5], [-5, -15]]
    assert np.allclose(q.dequantize(stored), real)
    assert q.real_range() == (pytest.approx(-118.0), pytest.approx(137.0))  # over both channels


def test_a_float_tensor_is_described_by_its_dtype_alone_and_passes_through() -> None:
    q = litert.Quantization.of(detail(np.float32, [], []))
    assert not q.quantized and q.step is None and q.as_dict() == {"dtype": "float32"}
    assert q.quantize([0.25]).dtype == np.float32 and q.dequantize([0.25]).tolist() == [0.25]
    # an integer tensor without a scale (e.g. an index) is not quantized either
    assert not litert.Quantization.of(detail(np.int32, [0.0], [0])).quantized


def test_per_channel_weights_of_a_real_model_round_trip(tiny_models) -> None:
    interpreter = litert.load(str(tiny_models / "model_int8.tflite"))
    weights = [d for d in interpreter.get_tensor_details()
               if len(d["quantization_parameters"]["scales"]) > 1]
    assert weights, "the int8 model has per-channel weights"
    for d in weights:
        q = litert.Quantization.of(d)
        stored = interpreter.get_tensor(d["index"])
        real = q.dequantize(stored)
        assert np.array_equal(q.quantize(real), stored)


def test_run_quantizes_the_input_and_dequantizes_the_output(tiny_models) -> None:
    interpreter = litert.load(str(tiny_models / "model_int8.tflite"))
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    y = litert.run(interpreter, x)
    assert y.dtype == np.float32 and y.shape == (1, 3)
    assert abs(float(y.sum()) - 1.0) < 0.05  # softmax probabilities, in real values
    assert litert.input_quantization(interpreter).dtype == "int8"
    again = litert.load((tiny_models / "model_int8.tflite").read_bytes())  # from bytes too
    assert np.array_equal(litert.run(again, x), y)


def test_what_cannot_load_is_a_model_load_error(tmp_path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 4)
    with pytest.raises(ModelLoadError, match="LiteRT cannot load the model"):
        litert.load(str(junk))
    with pytest.raises(ModelLoadError):  # a delegate library that is not installed
        litert.load(str(junk), delegate="libedgetpu-not-here.so.1")
    assert litert.delegate_for("edgetpu") == litert.EDGETPU_DELEGATE
    assert litert.delegate_for("cpu") is None
