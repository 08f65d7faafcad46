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
