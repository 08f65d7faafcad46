"""Turning an Examples artifact into model inputs, the same way in train, evaluate and quantize.

The exported model takes one float32 tensor (``inputs``): strings and missing values are handled
here, outside the graph, so that the model converts to a full-integer TFLite model. How to build
that tensor is recorded by train in ``model_meta.json`` ("encoding"), and every later step and
device reuses it instead of re-deriving it.

``examples_meta.json`` (written by ingest) looks like::

    {"kind": "tabular" | "sensor" | "image",
     "label_feature": "label",           # int64 class index in every tf.Example
     "classes": ["normal", "imbalance"],  # index -> class name
     "features": [{"name": "ax", "dtype": "float" | "string", "shape": [128]}, ...],
     "counts": {"train": 900, "eval": 100}, "bad_rows": 0, "source": "..."}

For sensor data each channel is a feature of shape [window]; the model input is [window,
channels]. For images the one feature ``image`` holds H*W*C floats in 0..255, shape [H, W, C].
Tabular features have shape [1] and may be missing in a row. Every input column gets a similar
range, because the input tensor is quantized to int8 with one scale (:func:`build_encoding` has
the rules, all learnt from the train split): a numeric column is scaled robustly (median and
interquartile range), log-transformed first when its tail is heavy, clipped to
``±CLIP`` and, when train has gaps in it, followed by a 0/1 missing-value indicator; a string
column becomes a one-hot block over its vocabulary (the commonest values, each seen at least
``MIN_COUNT`` times, at most ``VOCAB_MAX``) plus one out-of-vocabulary slot (a missing value is
all zeros); a column with a single value in train is dropped. The model turns a wide one-hot
block into an embedding (``embed``: a Dense layer without bias on the block, which is what an
embedding lookup is, and an int8 fully-connected kernel on devices).

A model edgeship did not train (quantize's "user model" inputs) has the ``raw`` encoding: its
named features, float or int, every one required, flattened and concatenated in order and
reshaped to the model's input, with no other change (``{"kind": "raw", "columns": [...],
"input_shape": [...]}``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from edgeship.components.artifacts import split_dir
from edgeship.components.progress import Progress
from edgeship.errors import InputError

Columns = dict[str, np.ndarray]
#: Records held to shuffle a split as it streams (a few MB of serialized examples at most).
SHUFFLE_BUFFER = 10_000
#: Examples read and parsed at once when a split is streamed.
READ_BATCH = 4096


def tfrecord_files(examples_dir: str | os.PathLike, split: str) -> list[str]:
    folder = split_dir(examples_dir, split)
    files = sorted(str(p) for p in folder.glob("*.gz")) if folder.is_dir() else []
    if not files:
        raise InputError(f"{folder}: no TFRecord files for split '{split}'")
    return files


def iter_examples(examples_dir: str | os.PathLike, split: str):
    """Yield parsed ``tf.train.Example`` protos of one split.

    A corrupt file or a record that is not an Example is an InputError naming the file and the
    example's index in the split, instead of TensorFlow's DataLossError or a protobuf error.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    index = 0
    for path in tfrecord_files(examples_dir, split):
        try:
            dataset = tf.data.TFRecordDataset(path, compression_type="GZIP")
            for record in dataset.as_numpy_iterator():
                yield tf.train.Example.FromString(record)
                index += 1
        except (tf.errors.OpError, DecodeError) as err:
            raise InputError(
                f"{path}: cannot read example {index} of split '{split}' ({_tf_reason(err)})"
            ) from None


def _tf_reason(err: Exception) -> str:
    """TensorFlow's message without the op names it wraps around it."""
    text = getattr(err, "message", str(err))
    return re.sub(r"^\{\{.*?\}\}\s*|\s*\[Op:.*$", "", text, flags=re.S).strip() or str(err)


def feature_spec(meta: dict[str, Any]) -> dict[str, Any]:
    """``tf.io.parse_example`` features for an Examples artifact: a missing tabular value reads
    as NaN (float) or "" (string: ingest never writes an empty string, it leaves the value out);
    window and image features and the label are required."""
    import tensorflow as tf

    spec = {meta["label_feature"]: tf.io.FixedLenFeature([], tf.int64)}
    for feature in meta["features"]:
        size = int(np.prod(feature["shape"]))
        if feature["dtype"] == "int":  # examples edgeship did not write (TFX's CsvExampleGen)
            spec[feature["name"]] = tf.io.FixedLenFeature([size], tf.int64)
        elif feature["dtype"] == "string":
            spec[feature["name"]] = tf.io.FixedLenFeature([], tf.string, default_value="")
        elif size == 1:
            spec[feature["name"]] = tf.io.FixedLenFeature([], tf.float32, default_value=math.nan)
        else:
            spec[feature["name"]] = tf.io.FixedLenFeature([size], tf.float32)
    return spec


def iter_batches(
    examples_dir: str | os.PathLike,
    split: str,
    meta: dict[str, Any],
    batch_size: int = READ_BATCH,
) -> Iterator[tuple[Columns, np.ndarray]]:
    """Stream a split as ``(columns, labels)`` batches in file order: memory holds one batch,
    whatever the split's size. TensorFlow reads and parses the records (``tf.data``,
    vectorised).

    Columns are as :func:`load_split` gives them. A record that cannot be parsed is an
    InputError naming the file and example (found by :func:`iter_examples`).
    """
    import tensorflow as tf

    files = tfrecord_files(examples_dir, split)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    spec = feature_spec(meta)
    parsed = records.batch(batch_size).map(
        lambda batch: tf.io.parse_example(batch, spec), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(2)
    try:
        for batch in parsed.as_numpy_iterator():
            # parse_example's output: a dict of columns (TF types the iterator as arrays)
            batch = cast(Columns, batch)
            yield _columns(batch, meta), batch[meta["label_feature"]].astype(np.int64)
    except (tf.errors.OpError, UnicodeDecodeError) as err:  # TF's message may quote raw bytes
        _diagnose(examples_dir, split, meta)  # raises the precise error where it can
        reason = _tf_reason(err) if isinstance(err, tf.errors.OpError) else "undecodable data"
        raise InputError(f"{examples_dir} split {split}: cannot read the examples ({reason})") \
            from None


def _columns(batch: dict[str, np.ndarray], meta: dict[str, Any]) -> Columns:
    columns: Columns = {}
    for feature in meta["features"]:
        name, values = feature["name"], batch[feature["name"]]
        if feature["dtype"] == "string":
            columns[name] = np.array([v.decode("utf-8") if v else None for v in values],
                                     dtype=object)
        else:
            size = int(np.prod(feature["shape"]))
            shape = [len(values)] + ([] if size == 1 else list(feature["shape"]))
            columns[name] = values.astype(np.float32).reshape(shape)
    return columns


#: Which ``tf.train.Feature`` list holds a feature of each dtype.
LIST_KIND = {"string": "bytes_list", "float": "float_list", "int": "int64_list"}


def _diagnose(examples_dir: str | os.PathLike, split: str, meta: dict[str, Any]) -> None:
    """Find the first example TensorFlow could not parse and raise an InputError naming it."""
    features = meta["features"]
    label_key = meta["label_feature"]
    for index, example in enumerate(iter_examples(examples_dir, split)):
        fmap = example.features.feature
        label = fmap[label_key].int64_list.value if label_key in fmap else []
        if len(label) != 1:
            raise InputError(
                f"{examples_dir} split {split}: label feature '{label_key}' has {len(label)} "
                f"int64 values in example {index}, expected 1"
            )
        for feature in features:
            name, size = feature["name"], int(np.prod(feature["shape"]))
            kind = LIST_KIND[feature["dtype"]]
            have = fmap[name].WhichOneof("kind") if name in fmap else None
            values = getattr(fmap[name], kind).value if have == kind else []
            if have not in (None, kind) or len(values) > size or (size > 1 and
                                                                   len(values) != size):
                raise InputError(
                    f"{examples_dir} split {split}: feature '{name}' has {len(values)} "
                    f"{kind.split('_')[0]} values in example {index}, expected {size}"
                )


@dataclass(frozen=True)
class Sample:
    """A uniform random sample of a split: its columns and labels in the split's order, each
    example's position in the split, and the split's size."""

    columns: Columns
    labels: np.ndarray
    positions: np.ndarray
    total: int


def sample_split(
    examples_dir: str | os.PathLike,
    split: str,
    meta: dict[str, Any],
    size: int,
    seed: int,
    progress: Progress | None = None,
    batches: Iterable[tuple[Columns, np.ndarray]] | None = None,
) -> Sample:
    """A uniform random sample of ``size`` examples of a split (all of them when it is smaller),
    streamed: every example draws a seeded random key and the ``size`` smallest keys are kept,
    so memory holds the sample and one batch. ``progress`` hears how far the read has come.
    ``batches`` replaces the split's TFRecord files as the source (a CSV, say)."""
    rng = np.random.default_rng(seed)
    keys: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    kept: list[tuple[Columns, np.ndarray]] = []
    held = total = 0
    if batches is None:
        batches = iter_batches(examples_dir, split, meta, batch_size=READ_BATCH)
    for columns, labels in batches:
        keys.append(rng.random(len(labels)))
        positions.append(total + np.arange(len(labels)))
        kept.append((columns, labels))
        held += len(labels)
        total += len(labels)
        if progress:
            progress.update(f"sampling the {split} split: {total} examples read")
        if held > 2 * size:  # prune now and then: amortised, never quadratic
            keys, positions, kept, held = _smallest(keys, positions, kept, size, meta)
    keys, positions, kept, held = _smallest(keys, positions, kept, size, meta)
    columns, labels = _concat(kept, meta)
    return Sample(columns, labels, positions[0] if positions else np.zeros(0, np.int64), total)


def _smallest(keys: list[np.ndarray], positions: list[np.ndarray],
              kept: list[tuple[Columns, np.ndarray]], size: int, meta: dict[str, Any]):
    """Keep the ``size`` examples with the smallest keys, in the split's order."""
    if not kept:
        return keys, positions, kept, 0
    all_keys = np.concatenate(keys)
    keep = np.arange(len(all_keys))
    if len(all_keys) > size:
        keep = np.sort(np.argpartition(all_keys, size)[:size])
    columns, labels = _concat(kept, meta)
    return ([all_keys[keep]], [np.concatenate(positions)[keep]],
            [(_take(columns, keep), labels[keep])], len(keep))


def _take(columns: Columns, rows: np.ndarray) -> Columns:
    return {name: values[rows] for name, values in columns.items()}


def _concat(parts: list[tuple[Columns, np.ndarray]], meta: dict[str, Any]
            ) -> tuple[Columns, np.ndarray]:
    if not parts:
        return _empty_columns(meta), np.zeros(0, dtype=np.int64)
    columns = {name: np.concatenate([p[0][name] for p in parts]) for name in parts[0][0]}
    return columns, np.concatenate([p[1] for p in parts])


def _empty_columns(meta: dict[str, Any]) -> Columns:
    return {f["name"]: (np.zeros(0, dtype=object) if f["dtype"] == "string" else
                        np.zeros([0] + ([] if int(np.prod(f["shape"])) == 1 else
                                        list(f["shape"])), dtype=np.float32))
            for f in meta["features"]}


def load_split(
    examples_dir: str | os.PathLike, split: str, meta: dict[str, Any]
) -> tuple[Columns, np.ndarray]:
    """Read a whole split into columns (one array per feature) and the label vector: for
    splits that fit in memory; :func:`iter_batches` streams the same, a batch at a time.

    Float features of shape [1] come back as float arrays with NaN where missing; string
    features as object arrays with None where missing; longer float features as [N, *shape].
    """
    return _concat(list(iter_batches(examples_dir, split, meta)), meta)


def build_encoding(meta: dict[str, Any], train: Columns | Iterable[Columns]) -> dict[str, Any]:
    """Derive the input encoding from the train split (vocabularies, fill values, input shape).

    ``train`` is the split's columns, or an iterable of column batches (:func:`iter_batches`):
    the statistics are accumulated batch by batch, so the split never has to fit in memory.
    """
    kind = meta["kind"]
    features = meta["features"]
    if kind == "image":
        (feature,) = features
        return {"kind": kind, "columns": [feature["name"]], "input_shape": list(feature["shape"])}
    if kind == "sensor":
        window = int(features[0]["shape"][0])
        return {
            "kind": kind,
            "columns": [f["name"] for f in features],
            "input_shape": [window, len(features)],
        }
    return _tabular_encoding(features, [cast(Columns, train)] if isinstance(train, dict)
                             else train)


#: A string value must be seen this many times in train to get its own one-hot slot ...
MIN_COUNT = 5
#: ... and a vocabulary holds at most this many values (the commonest); the rest share the
#: out-of-vocabulary slot.
VOCAB_MAX = 1000
#: Scaled numeric inputs are clipped to [-CLIP, CLIP]: one outlier must not widen the int8
#: input scale for every other column.
CLIP = 5.0
#: A non-negative column is log-transformed (log1p) when its skewness is above this ...
LOG_SKEW = 2.0
#: Values per batch kept for the quantiles (a uniform sample when batches are of one size).
QUANTILE_SAMPLE = 2048


def embedding_size(width: int) -> int:
    """Embedding width for a one-hot block of ``width`` slots: min(16, ceil(1.6 * width^0.56))
    (the rule of fast.ai's tabular models, capped for edge devices). A block not wider than its
    embedding is fed to the model as it is (``embed`` 0)."""
    size = min(16, math.ceil(1.6 * width**0.56))
    return size if width > size else 0


def _tabular_encoding(features: list[dict[str, Any]], batches: Iterable[Columns]
                      ) -> dict[str, Any]:
    """The tabular encoding (rules in the module docstring), from one pass over the batches."""
    from collections import Counter

    rng = np.random.default_rng(0)
    counts = {f["name"]: Counter() for f in features if f["dtype"] == "string"}
    samples: dict[str, list[np.ndarray]] = {f["name"]: [] for f in features
                                           if f["dtype"] != "string"}
    gaps = {f["name"]: 0 for f in features}
    rows = 0
    for batch in batches:
        size = 0
        for name, counter in counts.items():
            values = [v for v in batch[name] if v is not None]
            size = len(batch[name])
            gaps[name] += size - len(values)
            counter.update(values)
        for name, kept in samples.items():
            data = np.asarray(batch[name], dtype=np.float64).reshape(-1)
            size = len(data)
            present = data[~np.isnan(data)]
            gaps[name] += size - len(present)
            if len(present) > QUANTILE_SAMPLE:
                present = rng.choice(present, QUANTILE_SAMPLE, replace=False)
            kept.append(present)
        rows += size
    columns: list[dict[str, Any]] = []
    dropped: dict[str, str] = {}
    width = 0
    for feature in features:
        name = feature["name"]
        missing = gaps[name] > 0
        if feature["dtype"] == "string":
            counter = counts[name]
            if not counter:
                dropped[name] = "no value in the train split"
                continue
            if len(counter) == 1 and not missing:
                dropped[name] = f"one value in the train split ('{next(iter(counter))}')"
                continue
            ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
            vocab = [v for v, n in ranked[:VOCAB_MAX] if n >= MIN_COUNT]
            slots = len(vocab) + 1
            columns.append({"name": name, "dtype": "string", "vocab": vocab, "oov": True,
                            "distinct": len(counter), "embed": embedding_size(slots)})
            width += slots
            continue
        values = np.concatenate(samples[name]) if samples[name] else np.zeros(0)
        if values.size == 0:
            dropped[name] = "no value in the train split"
            continue
        if not missing and values.min() == values.max():
            dropped[name] = f"one value in the train split ({values[0]:g})"
            continue
        column = _numeric_column(name, values)
        column["missing"] = missing
        columns.append(column)
        width += 1 + int(missing)
    if not columns and rows:  # (an empty split is reported as such by its reader)
        raise InputError("every feature is dropped: " + "; ".join(
            f"'{name}': {why}" for name, why in dropped.items()))
    return {"kind": "tabular", "version": 2, "columns": columns, "dropped": dropped,
            "input_shape": [width]}


def _skew(values: np.ndarray) -> float:
    std = values.std()
    return float(((values - values.mean()) ** 3).mean() / std**3) if std > 0 else 0.0


def _numeric_column(name: str, values: np.ndarray) -> dict[str, Any]:
    """Fill, log, centre and scale of one numeric column from a sample of its train values."""
    fill = float(np.median(values))
    log = bool(values.min() >= 0 and _skew(values) > LOG_SKEW
               and abs(_skew(np.log1p(values))) < _skew(values))
    data = np.log1p(values) if log else values
    low, centre, high = np.percentile(data, [25, 50, 75])
    scale = (high - low) / 1.349  # the IQR of a normal distribution is 1.349 sigma
    if scale <= 0:
        scale = float(data.std())
    return {"name": name, "dtype": "float", "fill": fill, "log": log, "mean": float(centre),
            "std": float(scale) if scale > 0 else 1.0, "clip": CLIP}


def input_names(encoding: dict[str, Any]) -> list[str]:
    """A name per position of a tabular input vector: ``x``, ``x (missing)``, ``colour=red``,
    ``colour=<other>``."""
    names: list[str] = []
    for column in encoding["columns"]:
        name = column["name"]
        if column["dtype"] == "string":
            names += [f"{name}={v}" for v in column["vocab"]]
            names += [f"{name}=<other>"] if column.get("oov") else []
        else:
            names += [name] + ([f"{name} (missing)"] if column.get("missing") else [])
    return names


def string_blocks(encoding: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(first position, width, embedding size) of each one-hot block of a tabular input."""
    blocks = []
    at = 0
    for column in encoding["columns"]:
        if column["dtype"] == "string":
            width = len(column["vocab"]) + int(bool(column.get("oov")))
            blocks.append((at, width, int(column.get("embed", 0))))
            at += width
        else:
            at += 1 + int(bool(column.get("missing")))
    return blocks


class Moments:
    """Running count, mean and variance per column of 2-D batches (Chan et al.'s pairwise
    update, in float64): a split's statistics without holding the split."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | float = 0.0
        self.m2: np.ndarray | float = 0.0

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64)
        n = len(rows)
        if n == 0:
            return
        mean = rows.mean(axis=0)
        m2 = ((rows - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * n / total
        self.count = total

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and population standard deviation; zeros for columns that saw no value."""
        if self.count == 0:
            return np.zeros(1), np.zeros(1)
        return np.atleast_1d(self.mean), np.atleast_1d(np.sqrt(self.m2 / self.count))


def check_labels(where: str, labels: np.ndarray, classes: list[str],
                 positions: int | np.ndarray = 0) -> None:
    """Every label must index one of ``classes``; ``where`` names the examples and split.
    ``positions`` places ``labels`` in the split: the index of the first (a streamed batch), or
    one index per label (a sample)."""
    bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
    if bad.size:
        at = int(bad[0])
        index = at + positions if isinstance(positions, int) else int(positions[at])
        raise InputError(
            f"{where}: example {index} has label {labels[at]}, outside the "
            f"{len(classes)} classes {classes}"
        )


def encode(encoding: dict[str, Any], columns: Columns, where: str = "examples") -> np.ndarray:
    """Build the model's float32 input tensor from feature columns.

    Examples that lack a feature the encoding reads, or whose values do not fit it (sensor
    channels of different lengths), are an InputError naming ``where`` (examples and split).
    """
    names = [c if isinstance(c, str) else c["name"] for c in encoding["columns"]]
    missing = [name for name in names if name not in columns]
    if missing:
        raise InputError(
            f"{where}: the model reads feature '{missing[0]}', which these examples do not "
            f"have (they have {sorted(columns)})"
        )
    if encoding["kind"] == "raw":  # nothing fills a gap for a model edgeship did not train
        for name in names:
            values = np.asarray(columns[name], dtype=np.float64)
            gaps, infinite = int(np.isnan(values).sum()), int(np.isinf(values).sum())
            if gaps:
                raise InputError(f"{where}: feature '{name}' is missing in {gaps} example(s); "
                                 "the model's inputs are all required")
            if infinite or np.abs(values).max(initial=0.0) > np.finfo(np.float32).max:
                raise InputError(f"{where}: feature '{name}' is infinite (or beyond float32) in "
                                 "some examples; the model's inputs must be finite numbers")
    try:
        return _encode(encoding, columns)
    except ValueError as err:
        raise InputError(f"{where}: cannot encode the examples for the model ({err})") from None


def encode_tf(encoding: dict[str, Any], features: dict[str, Any]) -> Any:
    """:func:`encode` as TensorFlow ops, for ``tf.data`` pipelines: the same input tensor from a
    batch parsed with :func:`feature_spec` (missing floats NaN, missing strings ""), computed
    in the graph so that training streams without Python in the loop. A test holds the two
    equal on every kind of data train takes (not ``raw``: edgeship never trains on it)."""
    import tensorflow as tf

    kind = encoding["kind"]
    if kind == "image":
        name = encoding["columns"][0]
        return tf.reshape(features[name], [-1, *encoding["input_shape"]])
    if kind == "sensor":
        return tf.stack([features[name] for name in encoding["columns"]], axis=-1)
    parts = []
    for column in encoding["columns"]:
        data = features[column["name"]]
        if column["dtype"] == "string":
            vocab = tf.constant(column["vocab"] or [""], dtype=tf.string)
            hits = tf.cast(tf.equal(tf.expand_dims(data, -1), tf.expand_dims(vocab, 0)),
                           tf.float32)[:, :len(column["vocab"])]
            if column.get("oov"):  # a value, but not one of the vocabulary's
                other = tf.logical_and(tf.not_equal(data, ""),
                                       tf.equal(tf.reduce_sum(hits, axis=1), 0.0))
                hits = tf.concat([hits, tf.cast(other, tf.float32)[:, None]], axis=1)
            if hits.shape[1]:  # an old encoding's column with no value in train: nothing
                parts.append(hits)  # missing (and, without oov, unseen): all zeros
        else:
            gap = tf.math.is_nan(data)
            value = tf.where(gap, tf.constant(column["fill"], tf.float32), data)
            if column.get("log"):  # (train had no negative value; another split may)
                value = tf.math.log1p(tf.maximum(value, 0.0))
            value = (value - column.get("mean", 0.0)) / column.get("std", 1.0)
            if column.get("clip"):
                value = tf.clip_by_value(value, -column["clip"], column["clip"])
            parts.append(tf.reshape(tf.cast(value, tf.float32), [-1, 1]))
            if column.get("missing"):
                parts.append(tf.reshape(tf.cast(gap, tf.float32), [-1, 1]))
    return tf.concat(parts, axis=1)


def _encode(encoding: dict[str, Any], columns: Columns) -> np.ndarray:
    kind = encoding["kind"]
    if kind == "raw":
        flat = [np.asarray(columns[name], dtype=np.float32).reshape(len(columns[name]), -1)
                for name in encoding["columns"]]
        return np.concatenate(flat, axis=1).reshape(-1, *encoding["input_shape"])
    if kind == "image":
        return np.asarray(columns[encoding["columns"][0]], dtype=np.float32)
    if kind == "sensor":
        return np.stack([columns[name] for name in encoding["columns"]], axis=-1).astype(
            np.float32
        )
    parts = []
    for column in encoding["columns"]:
        data = columns[column["name"]]
        if column["dtype"] == "string":
            vocab = column["vocab"]
            index = {v: i for i, v in enumerate(vocab)}
            # missing values encode as all zeros; unseen ones in the out-of-vocabulary slot
            # when the encoding has one (all zeros in an old encoding without it)
            unseen = len(vocab) if column.get("oov") else -1
            positions = np.fromiter((-1 if v is None else index.get(v, unseen) for v in data),
                                    dtype=np.int64, count=len(data))
            one_hot = np.zeros((len(data), len(vocab) + 2), dtype=np.float32)
            one_hot[np.arange(len(data)), positions] = 1.0
            parts.append(one_hot[:, :len(vocab) + int(bool(column.get("oov")))])
        else:
            data = np.asarray(data, dtype=np.float32)
            gap = np.isnan(data)
            value = np.where(gap, np.float32(column["fill"]), data).astype(np.float32)
            if column.get("log"):  # (train had no negative value; another split may)
                value = np.log1p(np.maximum(value, np.float32(0)))
            # Scale here, not only in the model: an int8 input has one scale for the whole
            # tensor, so a column in the thousands would leave the others a handful of steps.
            value = (value - np.float32(column.get("mean", 0.0))) / np.float32(
                column.get("std", 1.0))
            if column.get("clip"):
                value = np.clip(value, -column["clip"], column["clip"])
            parts.append(value.reshape(-1, 1).astype(np.float32))
            if column.get("missing"):
                parts.append(gap.reshape(-1, 1).astype(np.float32))
    return np.concatenate(parts, axis=1)
