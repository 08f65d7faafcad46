"""Ingest's records are real tf.Examples in real gzipped TFRecord files, read without TensorFlow.

The reader here declares tensorflow/core/example/{example,feature}.proto to the protobuf runtime
(the same messages, field numbers and packing) and checks TFRecord framing CRCs, so the ingest
tests can decode what ingest wrote without a 15-30 s TensorFlow import, and independently of
ingest's own encoder (``tests.helpers.records``).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from edgeship.components.ingest._tfexample import serialize_example
from tests.helpers.builders import read_tfrecord_gz, write_tfrecord_gz
from tests.helpers.records import decode, example_class


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
