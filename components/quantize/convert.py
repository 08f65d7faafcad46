"""Turning the trained SavedModel into TFLite variants with the standard TFLite converter.

Every variant is converted from a SavedModel whose serving signature takes exactly one example
([1, *input_shape], float32): devices invoke one example at a time, and the Edge TPU compiler
accepts only static tensor shapes, so the batch dimension is fixed here rather than left dynamic.
TensorFlow is imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.components.quantize.tflite_model import float_operators
from edgeship.errors import InputError

log = logging.getLogger(__name__)

VARIANTS = ("float32", "dynamic_range", "float16", "int8")
SIGNATURE = "serving_default"


@dataclass(frozen=True)
class ServingSpec:
    """What the chosen signature takes and returns (batch dimension excluded)."""

    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    output_width: int = 0  # classes the output scores, when its last dimension is static
    signature: str = SIGNATURE


def load_serving(
    serving_dir: str | os.PathLike,
    input_name: str | None,
    output_name: str | None,
    signature: str = SIGNATURE,
) -> tuple[Any, ServingSpec]:
    """Load the SavedModel and check that ``signature`` suits a TFLite model: one float32
    tensor in, static apart from the batch, and ``output_name`` out (``None``: the names are
    the signature's own, and it must have exactly one input and one output).

    Returns the loaded object (kept alive: the signature function refers to its variables) and
    the spec. Every problem found here affects all variants, so the message says so.
    """
    import tensorflow as tf

    serving_dir = Path(serving_dir)
    if not (serving_dir / "saved_model.pb").is_file():
        raise InputError(f"{serving_dir}: no SavedModel (saved_model.pb) for any variant")
    try:
        loaded = tf.saved_model.load(str(serving_dir))
    except Exception as err:  # a corrupt SavedModel surfaces as many TF error types
        raise InputError(f"{serving_dir}: cannot load SavedModel for any variant ({err})") from None
    if signature not in loaded.signatures:
        found = ", ".join(sorted(loaded.signatures)) or "none"
        raise InputError(
            f"{serving_dir}: no '{signature}' signature (found: {found}); no variant can be "
            "converted: export one that takes a single float32 tensor and returns class scores "
            "(see the quantize README, 'Models edgeship did not train')"
        )
    fn = loaded.signatures[signature]
    _, kwargs = fn.structured_input_signature
    if len(kwargs) != 1:
        raise InputError(
            f"{serving_dir}: '{signature}' takes {len(kwargs)} inputs "
            f"({', '.join(sorted(kwargs))}); every variant needs exactly one float32 tensor"
        )
    name, spec = next(iter(kwargs.items()))
    if input_name is not None and name != input_name:
        raise InputError(
            f"{serving_dir}: '{signature}' input is '{name}' but model_meta.json says "
            f"'{input_name}'; no variant can be converted"
        )
    if spec.dtype == tf.string:
        raise InputError(
            f"{serving_dir}: '{signature}' takes strings ('{name}', serialized tf.Example as TFX "
            "exports); TFLite needs one float32 tensor: export a float signature too and name it "
            "with signature=... (see the quantize README, 'Models edgeship did not train')"
        )
    if spec.dtype != tf.float32:
        raise InputError(
            f"{serving_dir}: input '{name}' is {spec.dtype.name}, not float32; no variant can be "
            "converted (encode strings to numbers outside the graph, see components/_dataset.py)"
        )
    dims = spec.shape.as_list() if spec.shape.rank is not None else None
    if dims is None or len(dims) < 2 or any(d is None for d in dims[1:]):
        raise InputError(
            f"{serving_dir}: input '{name}' has shape {dims}, not static apart from the batch "
            "dimension; no variant can be converted (TFLite and the Edge TPU need fixed shapes)"
        )
    outputs = fn.structured_outputs
    if output_name is None:
        if len(outputs) != 1:
            raise InputError(
                f"{serving_dir}: '{signature}' has {len(outputs)} outputs "
                f"({', '.join(sorted(outputs))}); the serving contract is one output of class "
                "scores"
            )
        output_name = next(iter(outputs))
    if output_name not in outputs:
        raise InputError(
            f"{serving_dir}: '{signature}' has no output '{output_name}' "
            f"(found: {', '.join(sorted(outputs))}); no variant can be converted"
        )
    out_shape = outputs[output_name].shape
    out_dims = out_shape.as_list() if out_shape.rank is not None else None
    if out_dims is None or len(out_dims) != 2:
        raise InputError(
            f"{serving_dir}: '{signature}' output '{output_name}' has shape {out_dims}; the "
            "serving contract is class scores [None, classes]; no variant can be converted"
        )
    width = out_dims[-1] if out_dims[-1] is not None else 0
    return loaded, ServingSpec(name, tuple(int(d) for d in dims[1:]), output_name, int(width),
                               signature)


def predict_saved_model(
    loaded: Any, spec: ServingSpec, x: np.ndarray, batch: int = 256
) -> np.ndarray:
    """The float SavedModel's outputs on ``x``: the reference every variant is compared with."""
    import tensorflow as tf

    fn = loaded.signatures[spec.signature]
    parts = [
        fn(**{spec.input_name: tf.constant(x[i : i + batch])})[spec.output_name].numpy()
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(parts, axis=0)


def save_single_example_model(loaded: Any, spec: ServingSpec, target: str | os.PathLike) -> str:
    """Re-export the chosen signature as ``serving_default`` with a static batch of one, for
    the converter."""
    import tensorflow as tf

    fn = loaded.signatures[spec.signature]
    module = tf.Module()
    # tracks the variables the signature function reads (tf.Module declares no attributes)
    module.model = loaded  # pyright: ignore[reportAttributeAccessIssue]

    @tf.function(
        input_signature=[tf.TensorSpec([1, *spec.input_shape], tf.float32, name=spec.input_name)]
    )
    def serve(inputs):
        return {spec.output_name: fn(**{spec.input_name: inputs})[spec.output_name]}

    tf.saved_model.save(module, str(target), signatures={SIGNATURE: serve})
    return str(target)


def convert(saved_model_dir: str, variant: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert one variant; ``calibration`` ([N, *input_shape] float32) is needed for int8.

    Converter failures (an op with no int8 kernel, say) become an InputError naming the variant.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, [SIGNATURE])
    if variant == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if calibration is None or len(calibration) == 0:
            raise InputError("int8: no calibration examples")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8

        def representative_dataset():
            for row in calibration:
                yield [row[np.newaxis].astype(np.float32)]

        converter.representative_dataset = representative_dataset
    elif variant != "float32":
        raise InputError(f"{variant}: unknown variant (known: {', '.join(VARIANTS)})")
    try:
        content = converter.convert()
    except Exception as err:  # ConverterError and friends; keep the first informative line
        raise InputError(f"{variant}: conversion failed: {_first_line(err)}") from None
    if variant == "int8":
        # The converter keeps ops with no int8 kernel in float32 between (de)quantize ops
        # rather than failing; such a model is not full-integer, so it is refused here.
        floats = float_operators(content)
        if floats:
            raise InputError(
                f"int8: cannot be fully quantized: {', '.join(floats)} would still run in "
                "float32 (no int8 kernel)"
            )
    return content


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "error:" in line:
            return line[line.index("error:") + len("error:") :].strip()
    return lines[0] if lines else type(err).__name__
