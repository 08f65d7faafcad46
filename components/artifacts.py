"""Artifact layouts shared by all components (TFX's conventions) and safe writing of outputs.

Examples:    <dir>/Split-<name>/data-*.tfrecord.gz  +  <dir>/examples_meta.json
Statistics:  <dir>/Split-<name>/FeatureStats.pb
Schema:      <dir>/schema.pbtxt
Anomalies:   <dir>/Split-<name>/SchemaDiff.pb
Model:       <dir>/Format-Serving/ (SavedModel)  +  <dir>/model_meta.json
Blessing:    <dir>/BLESSED or <dir>/NOT_BLESSED

Every output folder also holds ``.edgeship-output``, the mark that a rerun may replace it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeship.errors import InputError

SPLITS = ("train", "eval")
EXAMPLES_META = "examples_meta.json"
MODEL_META = "model_meta.json"
SERVING_DIR = "Format-Serving"
LABEL_FEATURE = "label"
# In every folder atomic_output_dir writes, so a rerun knows it may replace that folder.
OUTPUT_MARKER = ".edgeship-output"


def split_dir(artifact_dir: str | os.PathLike, split: str) -> Path:
    return Path(artifact_dir) / f"Split-{split}"


@contextlib.contextmanager
def atomic_output_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch folder that becomes ``final`` only if the block finishes.

    A failed step must leave nothing that a later step or run could mistake for its output, so
    the work happens in a hidden sibling that is renamed into place at the end (a rename within
    one filesystem is atomic) and removed on any error. What is already at ``final`` is replaced
    only if it is safe to delete (see ``_check_replaceable``), checked before the work starts and
    again just before the replacement.
    """
    final = Path(final)
    _check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    try:
        yield scratch
        (scratch / OUTPUT_MARKER).write_text("edgeship output: a rerun may replace this folder\n")
        _check_replaceable(final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(scratch, final)


def _check_replaceable(final: Path) -> None:
    """Refuse an output path holding anything but an empty folder (KFP pre-creates output
    folders) or an earlier edgeship output: it may be the user's data folder, or a file."""
    if not os.path.lexists(final):
        return
    if final.is_dir() and not final.is_symlink():
        if (final / OUTPUT_MARKER).is_file() or not any(final.iterdir()):
            return
    raise InputError(
        f"{final}: exists and is not an earlier edgeship output; choose an empty or new folder"
    )


def write_json(path: str | os.PathLike, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: {what} is not valid JSON ({err})") from None


EXAMPLE_KINDS = ("tabular", "sensor", "image")


def read_examples_meta(examples_dir: str | os.PathLike) -> dict[str, Any]:
    """``examples_meta.json``, with the fields every later step relies on checked, so that a
    malformed file is one line naming it rather than a KeyError deep inside a step."""
    path = Path(examples_dir) / EXAMPLES_META
    meta = read_json(path, "examples metadata")

    def bad(why: str) -> InputError:
        return InputError(f"{path}: {why}")

    if not isinstance(meta, dict):
        raise bad("expected a JSON object")
    if meta.get("kind") not in EXAMPLE_KINDS:
        raise bad(f"'kind' must be one of {list(EXAMPLE_KINDS)}, got {meta.get('kind')!r}")
    if not isinstance(meta.get("label_feature"), str):
        raise bad("'label_feature' missing")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise bad("'classes' must be a list of class names")
    features = meta.get("features")
    if not isinstance(features, list) or not features:
        raise bad("'features' must be a non-empty list")
    for feature in features:
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            raise bad(f"feature entry {feature!r} has no 'name'")
        if feature.get("dtype") not in ("float", "string"):
            raise bad(f"feature '{feature['name']}': dtype must be 'float' or 'string'")
        shape = feature.get("shape")
        if not (
            isinstance(shape, list) and shape and all(isinstance(d, int) and d > 0 for d in shape)
        ):
            raise bad(f"feature '{feature['name']}': shape must be a list of positive ints")
    if meta["kind"] != "tabular" and any(f["dtype"] != "float" for f in features):
        raise bad(f"{meta['kind']} features must all be float")
    if meta["kind"] == "image" and (len(features) != 1 or len(features[0]["shape"]) != 3):
        raise bad("image examples need exactly one feature of shape [H, W, C]")
    if meta["kind"] == "sensor" and len({tuple(f["shape"]) for f in features}) != 1:
        raise bad("sensor channels must all have the same window shape")
    return meta


def read_model_meta(
    model_dir: str | os.PathLike, keys: tuple[str, ...], classes: list[str] | None = None
) -> dict[str, Any]:
    """``model_meta.json`` of a trained model, checked to have ``keys`` and, given the examples'
    ``classes``, to predict exactly those in that order: a label index must name the same class
    for the examples and the model, or every accuracy computed from them is wrong."""
    path = Path(model_dir) / MODEL_META
    meta = read_json(path, "model metadata")
    missing = [key for key in keys if key not in meta]
    if missing:
        raise InputError(f"{path}: missing {', '.join(repr(k) for k in missing)}")
    if classes is not None and list(meta.get("classes", [])) != list(classes):
        raise InputError(
            f"{path}: the model predicts classes {meta.get('classes')}, the examples have "
            f"{list(classes)}"
        )
    return meta


def write_blessing(blessing_dir: str | os.PathLike, blessed: bool, reasons: list[str]) -> None:
    """Write a TFX-style blessing: an empty-named marker plus the reasons, for people."""
    blessing_dir = Path(blessing_dir)
    blessing_dir.mkdir(parents=True, exist_ok=True)
    marker = "BLESSED" if blessed else "NOT_BLESSED"
    (blessing_dir / marker).write_text("\n".join(reasons) + ("\n" if reasons else ""))


def is_blessed(blessing_dir: str | os.PathLike) -> bool:
    blessing_dir = Path(blessing_dir)
    return (blessing_dir / "BLESSED").is_file() and not (blessing_dir / "NOT_BLESSED").exists()
