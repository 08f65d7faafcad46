"""Reading ingest's records without TensorFlow: real tf.Examples in real gzipped TFRecords.

``example_class`` declares tensorflow/core/example/{example,feature}.proto to the protobuf
runtime (the same messages, field numbers and packing), and the TFRecord reader checks framing
CRCs, so tests decode what ingest wrote without a 15-30 s TensorFlow import, and independently
of ingest's own encoder.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.helpers.builders import read_tfrecord_gz

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
