"""load_split on broken Examples: one InputError line naming folder or file, split and example."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from edgeship.components._artifacts import read_examples_meta
from edgeship.components._dataset import load_split
from tests.helpers.builders import tabular_examples, write_examples, write_tfrecord_gz
from tests.helpers.checks import one_line_error

FEATURES = [{"name": "x", "dtype": "float", "shape": [1]}]
RECORD = "data-00000-of-00001.tfrecord.gz"


def _fails(examples: Path, split: str, pattern: str) -> str:
    return one_line_error(lambda: load_split(examples, split, read_examples_meta(examples)),
                          pattern)


def test_an_example_without_a_label_is_named(tmp_path: Path) -> None:
    rows = {"train": [{"x": 1.0, "label": 0}, {"x": 2.0, "label": None}]}
    examples = write_examples(tmp_path / "ex", "tabular", FEATURES, ["a", "b"], rows)
    message = _fails(examples, "train", r"label feature 'label' has 0 int64 values in example 1")
    assert message.startswith(f"{examples} split train: ")


def _corrupt(data: bytes) -> dict[str, bytes]:
    plain = gzip.decompress(data)
    flipped = plain[:20] + bytes([plain[20] ^ 0xFF]) + plain[21:]
    return {
        "not gzip": b"this is not a tfrecord",
        "truncated gzip": data[:-30],
        "bad checksum": gzip.compress(flipped),
    }


@pytest.mark.parametrize("case", ["not gzip", "truncated gzip", "bad checksum"])
def test_a_corrupt_tfrecord_file_is_named(tmp_path: Path, case: str) -> None:
    examples = tabular_examples(tmp_path / "ex", n=40)
    record = examples / "Split-eval" / RECORD
    record.write_bytes(_corrupt(record.read_bytes())[case])
    message = _fails(examples, "eval", r"cannot read example \d+ of split 'eval' \(.+\)$")
    assert message.startswith(f"{record}: ")
    assert "{{" not in message and "[Op:" not in message  # TensorFlow's noise is dropped


def test_a_record_that_is_not_an_example_is_named(tmp_path: Path) -> None:
    examples = tabular_examples(tmp_path / "ex", n=40)
    record = examples / "Split-train" / RECORD
    write_tfrecord_gz(record, [b"\xff\xff not a tf.Example"])
    _fails(examples, "train", rf"^{record}: cannot read example 0 of split 'train' \(")
