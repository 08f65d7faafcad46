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
Tabular features have shape [1] and may be missing in a row. Numeric tabular columns are
standardised with train-split mean and std and string columns one-hot encoded, so that every
input column has a similar range when the input tensor is quantized to int8 with one scale.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from edgeship.components._artifacts import split_dir
from edgeship.errors import InputError

Columns = dict[str, np.ndarray]


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


def load_split(
    examples_dir: str | os.PathLike, split: str, meta: dict[str, Any]
) -> tuple[Columns, np.ndarray]:
    """Read a split into columns (one array per feature) and the label vector.

    Float features of shape [1] come back as float arrays with NaN where missing; string
    features as object arrays with None where missing; longer float features as [N, *shape].
    """
    features = meta["features"]
    label_key = meta["label_feature"]
    values: dict[str, list] = {f["name"]: [] for f in features}
    labels: list[int] = []
    for index, example in enumerate(iter_examples(examples_dir, split)):
        fmap = example.features.feature
        label = fmap[label_key].int64_list.value if label_key in fmap else []
        if len(label) != 1:
            raise InputError(
                f"{examples_dir} split {split}: label feature '{label_key}' has {len(label)} "
                f"int64 values in example {index}, expected 1"
            )
        labels.append(int(label[0]))
        for feature in features:
            name = feature["name"]
            if feature["dtype"] == "string":
                raw = fmap[name].bytes_list.value if name in fmap else []
                values[name].append(raw[0].decode("utf-8") if raw else None)
            else:
                raw = fmap[name].float_list.value if name in fmap else []
                size = int(np.prod(feature["shape"]))
                if size == 1:
                    values[name].append(raw[0] if raw else math.nan)
                else:
                    if len(raw) != size:
                        raise InputError(
                            f"{examples_dir} split {split}: feature '{name}' has {len(raw)} "
                            f"values in example {index}, expected {size}"
                        )
                    values[name].append(raw)
    columns: Columns = {}
    for feature in features:
        name = feature["name"]
        if feature["dtype"] == "string":
            columns[name] = np.array(values[name], dtype=object)
        else:
            scalar = int(np.prod(feature["shape"])) == 1
            shape = [len(values[name])] + ([] if scalar else list(feature["shape"]))
            columns[name] = np.asarray(values[name], dtype=np.float32).reshape(shape)
    return columns, np.asarray(labels, dtype=np.int64)


def build_encoding(meta: dict[str, Any], train_columns: Columns) -> dict[str, Any]:
    """Derive the input encoding from the train split (vocabularies, fill values, input shape)."""
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
    columns = []
    width = 0
    for feature in features:
        name = feature["name"]
        data = train_columns[name]
        if feature["dtype"] == "string":
            vocab = sorted({v for v in data if v is not None})
            columns.append({"name": name, "dtype": "string", "vocab": vocab})
            width += len(vocab)
        else:
            present = data[~np.isnan(data)]
            mean = float(present.mean()) if present.size else 0.0
            std = float(present.std()) if present.size else 0.0
            columns.append(
                {"name": name, "dtype": "float", "fill": mean, "mean": mean, "std": std or 1.0}
            )
            width += 1
    return {"kind": kind, "columns": columns, "input_shape": [width]}


def check_labels(where: str, labels: np.ndarray, classes: list[str]) -> None:
    """Every label must index one of ``classes``; ``where`` names the examples and split."""
    bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
    if bad.size:
        raise InputError(
            f"{where}: example {bad[0]} has label {labels[bad[0]]}, outside the "
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
    try:
        return _encode(encoding, columns)
    except ValueError as err:
        raise InputError(f"{where}: cannot encode the examples for the model ({err})") from None


def _encode(encoding: dict[str, Any], columns: Columns) -> np.ndarray:
    kind = encoding["kind"]
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
            index = {v: i for i, v in enumerate(column["vocab"])}
            one_hot = np.zeros((len(data), len(column["vocab"])), dtype=np.float32)
            for row, value in enumerate(data):
                if value in index:  # unseen categories encode as all zeros
                    one_hot[row, index[value]] = 1.0
            parts.append(one_hot)
        else:
            filled = np.where(np.isnan(data), column["fill"], data).astype(np.float32)
            # Standardise here, not only in the model: an int8 input has one scale for the whole
            # tensor, so a column in the thousands would leave the others a handful of steps.
            filled = (filled - column.get("mean", 0.0)) / column.get("std", 1.0)
            parts.append(filled.reshape(-1, 1).astype(np.float32))
    return np.concatenate(parts, axis=1)
