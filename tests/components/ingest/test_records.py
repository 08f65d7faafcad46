"""Ingest's records are real tf.Examples in real gzipped TFRecord files, read without TensorFlow.

The reader here declares tensorflow/core/example/{example,feature}.proto to the protobuf runtime
(the same messages, field numbers and packing) and checks TFRecord framing CRCs, so the ingest
tests can decode what ingest wrote without a 15-30 s TensorFlow import, and independently of
ingest's own encoder. Other ``test_ingest_*`` modules import ``read_split`` from here.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from edgeship.components.ingest._tfexample import serialize_example
from tests.helpers.builders import read_tfrecord_gz, write_tfrecord_gz

F = descriptor_pb2.FieldDescriptorProto
_POOLS: dict[str, Any] = {}


@functools.cache
def example_class() -> Any:
    """``tensorflow.Example`` declared from its .proto definition, in a private pool."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="ingest_test/example.proto", package="tensorflow", syntax="proto3"
    )

    def message(name: str, *fields: F, parent: Any = None) -> Any:
        msg = (parent.nested_type if parent else proto.message_type).add(name=name)
        msg.field.extend(fields)
        return msg

    def field(name: str, number: int, kind: int, repeated: bool = False, type_name: str = "") -> F:
        f = F(name=name, number=number, type=kind)
        if type_name:
            f.type_name = type_name
        f.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
        if repeated and kind in (F.TYPE_FLOAT, F.TYPE_INT64):
            f.options.packed = True
        return f

    message("BytesList", field("value", 1, F.TYPE_BYTES, True))
    message("FloatList", field("value", 1, F.TYPE_FLOAT, True))
    message("Int64List", field("value", 1, F.TYPE_INT64, True))
    feature = message(
        "Feature",
        field("bytes_list", 1, F.TYPE_MESSAGE, type_name=".tensorflow.BytesList"),
        field("float_list", 2, F.TYPE_MESSAGE, type_name=".tensorflow.FloatList"),
        field("int64_list", 3, F.TYPE_MESSAGE, type_name=".tensorflow.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for f in feature.field:
        f.oneof_index = 0
    features = message(
        "Features",
        field("feature", 1, F.TYPE_MESSAGE, True, type_name=".tensorflow.Features.FeatureEntry"),
    )
    entry = message(
        "FeatureEntry",
        field("key", 1, F.TYPE_STRING),
        field("value", 2, F.TYPE_MESSAGE, type_name=".tensorflow.Feature"),
        parent=features,
    )
    entry.options.map_entry = True
    message("Example", field("features", 1, F.TYPE_MESSAGE, type_name=".tensorflow.Features"))
    pool = _POOLS.setdefault("example", descriptor_pool.DescriptorPool())  # must outlive classes
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def decode(record: bytes) -> dict[str, Any]:
    """An Example as {feature: list of values}; bytes values decoded as UTF-8."""
    example = example_class().FromString(record)
    out: dict[str, Any] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value)
        out[name] = [v.decode("utf-8") for v in values] if kind == "bytes_list" else values
    return out


def read_split(examples_dir: Path, split: str) -> list[dict[str, Any]]:
    files = sorted((examples_dir / f"Split-{split}").glob("*.gz"))
    assert files, f"no TFRecord files in {examples_dir}/Split-{split}"
    return [decode(r) for path in files for r in read_tfrecord_gz(path)]


def test_encoder_matches_the_protobuf_runtime() -> None:
    record = serialize_example(
        {"x": [1.5, -2.0, 3.25], "name": "grüße", "gone": None, "empty": []}, "label", 300
    )
    parsed = example_class().FromString(record)
    reference = example_class()()
    fmap = reference.features.feature
    fmap["label"].int64_list.value.append(300)
    fmap["x"].float_list.value.extend([1.5, -2.0, 3.25])
    fmap["name"].bytes_list.value.append("grüße".encode())
    fmap["empty"].float_list.SetInParent()
    assert parsed == reference
    assert "gone" not in parsed.features.feature  # None means missing, as tf.Example has it


def test_encoding_is_byte_stable_whatever_the_feature_order() -> None:
    a = serialize_example({"b": [1.0], "a": "s"}, "label", 1)
    b = serialize_example({"a": "s", "b": [1.0]}, "label", 1)
    assert a == b


def test_reader_checks_framing(tmp_path: Path) -> None:
    record = serialize_example({"v": [0.5]}, "label", 0)
    path = tmp_path / "one.tfrecord.gz"
    write_tfrecord_gz(path, [record])
    assert [decode(r) for r in read_tfrecord_gz(path)] == [{"v": [0.5], "label": [0]}]
    # Flip one bit of the length CRC (byte 8), then of the data CRC (the last byte): the reader
    # must notice each, or the round trip above proves nothing about framing.
    framed = gzip.decompress(path.read_bytes())
    for position in (8, len(framed) - 1):
        corrupt = bytearray(framed)
        corrupt[position] ^= 0x01
        path.write_bytes(gzip.compress(bytes(corrupt)))
        with pytest.raises(AssertionError):
            read_tfrecord_gz(path)
