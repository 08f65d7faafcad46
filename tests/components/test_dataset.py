"""load_split on broken Examples: one InputError line naming folder or file, split and example."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from edgeship.components._dataset import load_split
from edgeship.components.artifacts import read_examples_meta
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


def _parsed(examples: Path, split: str, meta: dict) -> dict:
    """A split as tf.io.parse_example gives it to encode_tf (the training stream's view)."""
    import tensorflow as tf

    from edgeship.components._dataset import feature_spec, tfrecord_files

    records = tf.data.TFRecordDataset(tfrecord_files(examples, split), compression_type="GZIP")
    (batch,) = records.batch(10_000).map(lambda r: tf.io.parse_example(r, feature_spec(meta)))
    return batch


@pytest.mark.parametrize("kind", ["tabular", "sensor", "image"])
def test_the_graph_encoding_equals_the_numpy_one(tmp_path: Path, kind: str) -> None:
    """Training streams through encode_tf; evaluate, quantize and devices use encode: the two
    must give the same input tensor, gaps and unseen categories included."""
    from edgeship.components._dataset import build_encoding, encode, encode_tf
    from tests.helpers import builders

    if kind == "tabular":
        features = [{"name": "x", "dtype": "float", "shape": [1]},
                    {"name": "colour", "dtype": "string", "shape": [1]},
                    {"name": "never", "dtype": "string", "shape": [1]}]
        train = [{"x": float(i) * 3.5, "colour": ["red", "blue"][i % 2], "label": i % 2}
                 for i in range(20)]
        held = [{"x": None, "colour": "green", "label": 0}, {"x": 2.0, "colour": None, "label": 1},
                {"x": -1e6, "colour": "red", "label": 0}]
        examples = write_examples(tmp_path / "ex", kind, features, ["a", "b"],
                                  {"train": train, "eval": held})
    else:
        make = builders.sensor_examples if kind == "sensor" else builders.image_examples
        examples = make(tmp_path / "ex")
    meta = read_examples_meta(examples)
    encoding = build_encoding(meta, load_split(examples, "train", meta)[0])
    for split in ("train", "eval"):
        columns, _ = load_split(examples, split, meta)
        want = encode(encoding, columns)
        got = encode_tf(encoding, _parsed(examples, split, meta)).numpy()
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_a_streamed_sample_is_uniform_ordered_and_placed(tmp_path: Path) -> None:
    from edgeship.components._dataset import READ_BATCH, sample_split

    rows = [{"x": float(i), "label": i % 2} for i in range(3 * READ_BATCH + 17)]
    examples = write_examples(tmp_path / "ex", "tabular", FEATURES, ["a", "b"], {"train": rows})
    meta = read_examples_meta(examples)
    values, _ = load_split(examples, "train", meta)
    sample = sample_split(examples, "train", meta, 500, seed=3)
    assert sample.total == len(rows) and len(sample.labels) == 500
    assert np.all(np.diff(sample.positions) > 0)  # in the split's order
    np.testing.assert_array_equal(sample.columns["x"], values["x"][sample.positions])
    again = sample_split(examples, "train", meta, 500, seed=3)
    np.testing.assert_array_equal(again.positions, sample.positions)  # the same seed
    assert abs(np.mean(sample.positions) / len(rows) - 0.5) < 0.05  # from all over the split
    whole = sample_split(examples, "train", meta, 10**9, seed=3)
    assert np.array_equal(whole.positions, np.arange(len(rows)))


def test_running_moments_equal_numpy() -> None:
    from edgeship.components._dataset import Moments

    data = np.random.default_rng(0).normal(5, 3, size=(10_000, 3))
    moments = Moments()
    for chunk in np.array_split(data, 7):
        moments.add(chunk)
    mean, std = moments.mean_std()
    np.testing.assert_allclose(mean, data.mean(axis=0))
    np.testing.assert_allclose(std, data.std(axis=0))
