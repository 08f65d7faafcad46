"""Reading a .tflite flatbuffer's operators and tensors with the schema ai-edge-litert ships.

The interpreter's own op listing is taken after delegates (XNNPACK) have replaced nodes, so the
file itself is read instead: this is what a converter wrote and what a compiler will see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from edgeship.errors import InputError

T = TypeVar("T")


def _part(value: T | None, what: str, source: str) -> T:
    """A part every runnable model has; the flatbuffer's object API makes each one optional,
    and a file without it would otherwise fail later with a TypeError naming nothing."""
    if value is None:
        raise InputError(f"{source}: not a runnable TFLite model: it has no {what}")
    return value


def _enum_names(enum_class: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def _indices(values: Any) -> list[int]:
    """An operator's tensor indices (a numpy array once unpacked, or None), -1s left out."""
    return [int(i) for i in values if i >= 0] if values is not None else []


def read_operators(tflite: str | Path | bytes) -> dict[str, Any]:
    """The operators of a .tflite file (path or content), with their tensors, in run order."""
    from ai_edge_litert import schema_py_generated as schema

    source = "the model" if isinstance(tflite, bytes) else str(tflite)
    content = tflite if isinstance(tflite, bytes) else Path(tflite).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    subgraphs = _part(model.subgraphs, "subgraphs", source)
    if not subgraphs:
        raise InputError(f"{source}: not a runnable TFLite model: it has no subgraphs")
    subgraph = subgraphs[0]
    tensors = _part(subgraph.tensors, "tensors", source)
    buffers = model.buffers or []
    codes = _part(model.operatorCodes, "operator codes", source)

    def tensor(index: int) -> dict[str, Any]:
        t = tensors[index]
        buffer = buffers[t.buffer] if t.buffer else None
        constant = buffer is not None and (
            (buffer.data is not None and len(buffer.data) > 0) or (buffer.size or 0) > 0
        )
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        signature = [int(d) for d in t.shapeSignature] if t.shapeSignature is not None else shape
        return {
            "name": t.name.decode() if isinstance(t.name, bytes) else str(t.name),
            "type": type_names.get(t.type, str(t.type)),
            "shape": shape,
            "shape_signature": signature,
            "constant": constant,
        }

    operators = []
    for index, op in enumerate(subgraph.operators or []):
        code = codes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names.get(builtin, str(builtin))
        if name == "CUSTOM":
            custom = code.customCode
            name = f"CUSTOM:{custom.decode() if isinstance(custom, bytes) else custom}"
        operators.append(
            {
                "index": index,
                "op": name,
                "version": int(code.version),
                "inputs": [tensor(i) for i in _indices(op.inputs)],
                "outputs": [tensor(i) for i in _indices(op.outputs)],
                "options": op.builtinOptions,
            }
        )
    return {"subgraphs": len(subgraphs), "operators": operators}


def float_operators(tflite: str | Path | bytes) -> list[str]:
    """Operators that still compute in floating point (e.g. ``SIN #2``): in a model meant to be
    full-integer these are ops the converter could not quantize and wrapped in (de)quantize."""
    found = []
    for op in read_operators(tflite)["operators"]:
        if op["op"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(t["type"].startswith("FLOAT") for t in op["inputs"] + op["outputs"]):
            found.append(f"{op['op']} #{op['index']}")
    return found
