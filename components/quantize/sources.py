"""What quantize converts and measures: edgeship's own train and ingest outputs, or a model and
examples edgeship did not make (TFX's Trainer and CsvExampleGen, a user's KFP component, a CSV).

edgeship's outputs describe themselves (``model_meta.json``, ``examples_meta.json``). Anything
else is read under the serving contract the quantize README states: a SavedModel signature with
one float32 input tensor, static apart from the batch, and one output of class scores; examples
in TFX's layout (``Split-train/``, ``Split-eval/``, gzipped TFRecord ``tf.Example``) or a CSV,
with the label and the features the model reads named by parameters. The features are fed to
the model as they are (the ``raw`` encoding of ``components/_dataset.py``): whatever scaling the
model expects is the model's, as it is for every device that runs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.components._dataset import READ_BATCH, Columns, iter_examples
from edgeship.components.artifacts import (
    EXAMPLES_META,
    MODEL_META,
    SERVING_DIR,
    read_examples_meta,
    read_model_meta,
    split_dir,
)
from edgeship.errors import InputError

#: A class index as a CSV writes it (ASCII digits: ``str.isdigit`` also takes "²").
CLASS_INDEX = re.compile(r"[0-9]{1,9}")
#: The model_meta.json fields an edgeship-trained model carries.
EDGESHIP_MODEL_KEYS = ("classes", "encoding", "input_name", "output_name")


@dataclass(frozen=True)
class Sources:
    """The resolved inputs: the SavedModel folder, examples described as ``examples_meta.json``
    describes them, the model metadata quantize writes next to the TFLite files, and the CSV
    the examples come from when they are not TFRecord splits."""

    examples_dir: str
    serving_dir: Path
    examples_meta: dict[str, Any]
    model_meta: dict[str, Any]
    csv: Path | None = None

    def batches(self, split: str) -> Iterable[tuple[Columns, np.ndarray]] | None:
        """A CSV's rows (it has no splits: both calibration and measurement sample all of
        them); ``None`` for TFRecord splits, which ``sample_split`` reads itself."""
        if self.csv is None:
            return None
        meta = self.examples_meta
        return csv_batches(self.csv, meta["label_feature"], [f["name"] for f in meta["features"]],
                           meta["classes"])

    def where(self, split: str) -> str:
        return str(self.csv) if self.csv else f"{self.examples_dir} split '{split}'"


def resolve(model_dir: str, examples_dir: str, params: Any) -> tuple[Sources, Any, Any]:
    """The sources for ``run_quantize``, plus the loaded SavedModel and its ``ServingSpec``.

    Without ``feature_keys`` the model is edgeship's and is read as train wrote it
    (``model_meta.json``). With them, it is held to the serving contract, and its examples are
    described by ``feature_keys``, ``label_key`` and ``classes`` (the last two default to the
    examples' own ``examples_meta.json`` when edgeship's ingest wrote them).
    """
    from edgeship.components.quantize.convert import load_serving

    model_path = Path(model_dir)
    if not params.feature_keys:
        if not (model_path / MODEL_META).is_file():
            raise InputError(
                f"{model_path / MODEL_META}: model metadata not found: a model edgeship trained "
                "carries it; for any other model name its input features with feature_keys"
            )
        examples_meta = read_examples_meta(examples_dir)
        model_meta = read_model_meta(model_path, EDGESHIP_MODEL_KEYS, examples_meta["classes"])
        loaded, spec = load_serving(model_path / SERVING_DIR, model_meta["input_name"],
                                    model_meta["output_name"], params.signature)
        return Sources(examples_dir, model_path / SERVING_DIR, examples_meta, model_meta), \
            loaded, spec

    serving = model_path / SERVING_DIR if (model_path / SERVING_DIR).is_dir() else model_path
    loaded, spec = load_serving(serving, None, None, params.signature)
    own = (read_examples_meta(examples_dir)
           if (Path(examples_dir) / EXAMPLES_META).is_file() else None)
    label_key = params.label_key or (own["label_feature"] if own else "")
    if not label_key:
        raise InputError(f"label_key: name the label in {examples_dir} (the model is not "
                         "edgeship's, so the examples must say which feature is the label)")
    feature_keys = list(params.feature_keys)
    classes = list(params.classes) or (list(own["classes"]) if own else [])
    width = spec.output_width
    if classes and width and len(classes) != width:
        raise InputError(f"classes: {len(classes)} names given, but '{spec.signature}' output "
                         f"'{spec.output_name}' scores {width} classes")
    if not classes and not width:
        raise InputError(f"classes: '{spec.signature}' output '{spec.output_name}' has no static "
                         "class dimension; name the classes")
    csv = csv_file(examples_dir)
    if csv is not None:
        features = [{"name": key, "dtype": "float", "shape": [1]} for key in feature_keys]
        check_csv_header(csv, [label_key, *feature_keys])
    else:
        features = tfrecord_features(examples_dir, label_key, feature_keys)
    size = sum(int(np.prod(f["shape"])) for f in features)
    if size != int(np.prod(spec.input_shape)):
        shown = " + ".join(f"{f['name']} ({int(np.prod(f['shape']))})" for f in features)
        raise InputError(
            f"feature_keys: {shown} give {size} values per example, but the model's input "
            f"'{spec.input_name}' takes {int(np.prod(spec.input_shape))} "
            f"(shape {list(spec.input_shape)})"
        )
    examples_meta = {"kind": "raw", "label_feature": label_key,
                     "classes": classes or [str(i) for i in range(width)], "features": features}
    model_meta = {"classes": classes, "trained_by": "user", "signature": spec.signature,
                  "input_name": spec.input_name, "output_name": spec.output_name,
                  "encoding": {"kind": "raw", "columns": feature_keys,
                               "input_shape": list(spec.input_shape)}}
    return Sources(examples_dir, serving, examples_meta, model_meta, csv), loaded, spec


def csv_file(examples_dir: str | os.PathLike) -> Path | None:
    """The CSV the examples are: the path itself, or the one ``.csv`` in a folder without
    TFRecord splits (a KFP ``Dataset`` is a file; TFX's CsvExampleGen reads a folder)."""
    path = Path(examples_dir)
    if path.is_file():
        return path
    if not path.is_dir() or split_dir(path, "train").is_dir() or split_dir(path, "eval").is_dir():
        return None
    found = sorted(path.glob("*.csv"))
    if len(found) > 1:
        raise InputError(f"{path}: holds {len(found)} CSV files; quantize reads one")
    return found[0] if found else None


def check_csv_header(path: Path, keys: list[str]) -> None:
    import pandas as pd

    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise InputError(f"{path}: not a readable CSV ({' '.join(str(err).split())})") from None
    missing = [key for key in keys if key not in header]
    if missing:
        raise InputError(f"{path}: no column '{missing[0]}' (columns: {', '.join(header)})")


def csv_batches(path: Path, label_key: str, feature_keys: list[str], classes: list[str],
                batch_size: int = READ_BATCH) -> Iterator[tuple[Columns, np.ndarray]]:
    """Stream a CSV as ``(columns, labels)``; a label is a class index or one of ``classes``.
    A gap or a non-number in a feature, or an unknown label, is one line naming its CSV line."""
    import pandas as pd

    index = {name: i for i, name in enumerate(classes)}
    first_line = 2  # line 1 is the header
    reader = pd.read_csv(path, usecols=[label_key, *feature_keys], dtype=str,
                         keep_default_na=False, chunksize=batch_size)
    for chunk in reader:
        columns: Columns = {}
        for key in feature_keys:
            text = chunk[key].str.strip()
            values = pd.to_numeric(text, errors="coerce").to_numpy(np.float32)
            bad = np.flatnonzero(~np.isfinite(values))  # a gap, a word, inf, or beyond float32
            if bad.size:
                at = int(bad[0])
                raise InputError(f"{path} line {first_line + at}: feature '{key}' is "
                                 f"{text.iloc[at]!r}, not a finite number")
            columns[key] = values
        labels = np.empty(len(chunk), dtype=np.int64)
        for at, label in enumerate(chunk[label_key].str.strip()):
            if label in index:
                labels[at] = index[label]
            elif CLASS_INDEX.fullmatch(label) and int(label) < len(classes):
                labels[at] = int(label)
            else:
                raise InputError(f"{path} line {first_line + at}: label {label!r} is neither "
                                 f"one of the classes {classes} nor a class index")
        first_line += len(chunk)
        yield columns, labels


def tfrecord_features(examples_dir: str, label_key: str, feature_keys: list[str]
                      ) -> list[dict[str, Any]]:
    """Describe ``feature_keys`` from the first train example: each float or int feature's
    length. TFX's CsvExampleGen writes integer columns as int64 lists, so both are read."""
    first = next(iter_examples(examples_dir, "train"), None)
    if first is None:
        raise InputError(f"{split_dir(examples_dir, 'train')}: no examples")
    fmap = first.features.feature
    where = f"{examples_dir} split 'train' example 0"
    if label_key not in fmap or fmap[label_key].WhichOneof("kind") != "int64_list":
        have = fmap[label_key].WhichOneof("kind") if label_key in fmap else "no such feature"
        raise InputError(f"{where}: label '{label_key}' must be an int64 class index "
                         f"({have}); examples with class names can come as a CSV")
    features = []
    for key in feature_keys:
        if key not in fmap:
            raise InputError(f"{where}: no feature '{key}' (it has {', '.join(sorted(fmap))})")
        kind = fmap[key].WhichOneof("kind")
        if kind not in ("float_list", "int64_list"):
            raise InputError(f"{where}: feature '{key}' holds {kind}; the model's input is "
                             "numbers")
        values = getattr(fmap[key], kind).value
        features.append({"name": key, "dtype": "float" if kind == "float_list" else "int",
                         "shape": [max(len(values), 1)]})
    return features
