"""Serialize ``tf.train.Example`` protos without importing TensorFlow.

Ingest runs in Beam workers that never need TensorFlow otherwise; importing it would add 15-30 s
to every worker start. The Example message is small and stable, so its protobuf wire format is
written here directly (tensorflow/core/example/{example,feature}.proto):

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }       # map entry: key = 1, value = 2
    Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2;
                       Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

Entries are written in sorted key order so that equal inputs give byte-identical records.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

_LEN = 2  # wire type of length-delimited fields (messages, bytes, packed repeated)

FeatureValue = Sequence[float] | str | bytes | None


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes negative varints
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | _LEN) + _varint(len(payload)) + payload


def _float_list(values: Sequence[float]) -> bytes:
    packed = struct.pack(f"<{len(values)}f", *values)
    return _field(2, _field(1, packed) if values else b"")


def _bytes_list(values: Sequence[bytes]) -> bytes:
    return _field(1, b"".join(_field(1, v) for v in values))


def _int64_list(values: Sequence[int]) -> bytes:
    packed = b"".join(_varint(int(v)) for v in values)
    return _field(3, _field(1, packed) if values else b"")


def serialize_example(features: Mapping[str, FeatureValue], label_key: str, label: int) -> bytes:
    """One serialized Example: float lists, single strings, and the int64 label.

    A value of ``None`` leaves the feature out, which is how tf.Example marks a missing value.
    """
    encoded: dict[str, bytes] = {label_key: _int64_list([label])}
    for name, value in features.items():
        if value is None:
            continue
        if name == label_key:
            raise ValueError(f"feature '{name}' clashes with the label feature")
        if isinstance(value, str):
            encoded[name] = _bytes_list([value.encode("utf-8")])
        elif isinstance(value, bytes):
            encoded[name] = _bytes_list([value])
        else:
            encoded[name] = _float_list(value)
    entries = b"".join(
        _field(1, _field(1, key.encode("utf-8")) + _field(2, encoded[key]))
        for key in sorted(encoded)
    )
    return _field(1, entries)
