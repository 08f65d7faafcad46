"""Build tiny real .tflite models with TensorFlow, once per cache (run as a subprocess).

Usage: python make_models.py OUTDIR
Writes OUTDIR/model_float32.tflite, model_int8.tflite, model_int8_b.tflite (different weights)
and OUTDIR/quantization_report.json in the quantize step's layout. Only tests run this; device
code never imports TensorFlow.
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def build(seed: int):
    rng = np.random.default_rng(seed)
    w1 = tf.constant(rng.normal(size=(8, 16)).astype(np.float32))
    w2 = tf.constant(rng.normal(size=(16, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def f(x):
        return tf.nn.softmax(tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2))

    return f


def convert(f, int8: bool) -> bytes:
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    if int8:
        rng = np.random.default_rng(0)

        def rep():
            for _ in range(32):
                yield [rng.uniform(-1, 1, size=(1, 8)).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    f = build(1)
    files = {"float32": convert(f, False), "int8": convert(f, True),
             "int8_b": convert(build(2), True)}
    for variant, data in files.items():
        with open(os.path.join(out, f"model_{variant}.tflite"), "wb") as fh:
            fh.write(data)
    from edgeship import litert
    from edgeship.contract import self_test_tolerance

    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    int8 = litert.load(os.path.join(out, "model_int8.tflite"))
    atol, rtol = self_test_tolerance(litert.output_quantization(int8).step)
    report = {
        "schema_version": 1,
        "float_accuracy": 0.91,
        "variants": {
            "float32": {"accuracy": 0.91, "size_bytes": len(files["float32"])},
            "int8": {"accuracy": 0.9, "size_bytes": len(files["int8"]),
                     "sha256": hashlib.sha256(files["int8"]).hexdigest()},
        },
        "self_test": {"variant": "int8", "input": x.tolist(),
                      "expected_output": litert.run(int8, x).tolist(), "atol": atol,
                      "rtol": rtol},
    }
    with open(os.path.join(out, "quantization_report.json"), "w") as fh:
        json.dump(report, fh)


if __name__ == "__main__":
    main(sys.argv[1])
