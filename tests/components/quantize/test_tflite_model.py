"""Reading a .tflite file's operators: a flatbuffer that lacks a part every runnable model has
is refused in one line naming the file, not with a TypeError from deep inside the reader."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import pytest
from ai_edge_litert import schema_py_generated as schema

from edgeship.components.quantize.tflite_model import read_operators
from edgeship.errors import InputError


def packed(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(64)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def test_a_model_without_subgraphs_is_refused_naming_the_file(tmp_path: Path) -> None:
    model = schema.ModelT()
    model.version = 3
    path = tmp_path / "empty.tflite"
    path.write_bytes(packed(model))
    with pytest.raises(InputError, match=r"empty\.tflite: not a runnable TFLite model: it has "
                                         r"no subgraphs"):
        read_operators(path)


def test_a_subgraph_without_operator_codes_is_refused() -> None:
    model = schema.ModelT()
    model.version = 3
    subgraph = schema.SubGraphT()
    tensor = schema.TensorT()
    tensor.shape = [1]
    subgraph.tensors = [tensor]
    model.subgraphs = [subgraph]
    with pytest.raises(InputError, match="the model: .* it has no operator codes"):
        read_operators(packed(model))


def test_operators_read_with_their_tensors_in_order() -> None:
    """The unpacked flatbuffer holds tensor indices as numpy arrays (-1: an absent input)."""
    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    code.version = 1
    model.operatorCodes = [code]
    subgraph = schema.SubGraphT()
    subgraph.tensors = []
    for name in (b"a", b"b", b"sum"):
        tensor = schema.TensorT()
        tensor.name = name
        tensor.shape = [1, 4]
        subgraph.tensors.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0, 1, -1]
    op.outputs = [2]
    subgraph.operators = [op]
    model.subgraphs = [subgraph]
    read = read_operators(packed(model))
    assert read["subgraphs"] == 1
    (add,) = read["operators"]
    assert add["op"] == "ADD"
    assert [t["name"] for t in add["inputs"]] == ["a", "b"]
    assert [t["name"] for t in add["outputs"]] == ["sum"]
    assert add["inputs"][0]["shape"] == [1, 4]
