"""Quantize on a model and examples edgeship did not make: a plain SavedModel with the serving
contract (one float32 tensor in, class scores out), examples in TFX's layout without
``examples_meta.json`` (float and int64 features, as TFX's CsvExampleGen writes them), or a CSV.
The model is a hand-built tf.Module that separates the classes by ``a + b > 0``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.components.artifacts import MODEL_META, SERVING_DIR, split_dir
from edgeship.components.quantize.executor import run_quantize
from edgeship.errors import InputError
from edgeship.quantization_report import REPORT_JSON
from tests.helpers import builders, checks

FEATURES = ["a", "b", "count"]


def rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    count = rng.integers(0, 5, size=n)
    return [{"a": float(a[i]), "b": float(b[i]), "count": int(count[i]),
             "species": int(a[i] + b[i] > 0)} for i in range(n)]


def tf_example(row: dict) -> bytes:
    from tensorflow.core.example import example_pb2, feature_pb2

    def feature(value):
        if isinstance(value, int):
            return feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=[value]))
        return feature_pb2.Feature(float_list=feature_pb2.FloatList(value=[value]))

    features = feature_pb2.Features(feature={k: feature(v) for k, v in row.items()})
    return example_pb2.Example(features=features).SerializeToString()


@pytest.fixture(scope="module")
def tfx_examples(tmp_path_factory) -> Path:
    """TFX's Examples layout, as CsvExampleGen writes it: no examples_meta.json."""
    root = tmp_path_factory.mktemp("tfx") / "examples"
    for split, seed in (("train", 0), ("eval", 1)):
        split_dir(root, split).mkdir(parents=True)
        builders.write_tfrecord_gz(split_dir(root, split) / "data_tfrecord-00000-of-00001.gz",
                                   [tf_example(r) for r in rows(300, seed)])
    return root


@pytest.fixture(scope="module")
def csv_examples(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "eval.csv"
    names = ["low", "high"]
    lines = ["species,a,b,count,note"] + [
        f"{names[r['species']]},{r['a']:.6f},{r['b']:.6f},{r['count']},x" for r in rows(200, 2)]
    path.write_text("\n".join(lines) + "\n")
    return path


def save_user_model(folder: Path, tfx_style: bool = False) -> Path:
    """A SavedModel in ``folder`` itself (no Format-Serving/, no model_meta.json) taking
    [None, 3] floats (a, b, count) and returning one tensor of 2 class scores. ``tfx_style``:
    ``serving_default`` takes serialized tf.Examples, as TFX's module files export, and the
    float signature is ``serving_float``."""
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable([[-4.0, 4.0], [-4.0, 4.0], [0.0, 0.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve_float(x):
        return {"scores": tf.nn.softmax(x @ module.w)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized):
        spec = {"a": tf.io.FixedLenFeature([], tf.float32),
                "b": tf.io.FixedLenFeature([], tf.float32),
                "count": tf.io.FixedLenFeature([], tf.int64)}
        parsed = tf.io.parse_example(serialized, spec)
        x = tf.stack([parsed["a"], parsed["b"], tf.cast(parsed["count"], tf.float32)], axis=1)
        return serve_float(x)

    signatures = ({"serving_default": serve_examples, "serving_float": serve_float}
                  if tfx_style else {"serving_default": serve_float})
    tf.saved_model.save(module, str(folder), signatures=signatures)
    return folder


@pytest.fixture(scope="module")
def user_model(tmp_path_factory) -> Path:
    return save_user_model(tmp_path_factory.mktemp("user") / "model")


def quantize(model: Path, examples: Path, root: Path, **kwargs) -> dict:
    blessing = root / "model_blessing"
    blessing.mkdir(exist_ok=True)
    (blessing / "BLESSED").write_text("")
    return run_quantize(str(model), str(examples), str(root / "out"), str(root / "blessing"),
                        str(root / "report"), latency_runs=3, variants=["int8"],
                        model_blessing_dir=str(blessing), **kwargs)


def test_user_model_on_tfx_examples_is_measured_and_blessed(user_model, tfx_examples,
                                                            tmp_path) -> None:
    summary = quantize(user_model, tfx_examples, tmp_path, label_key="species",
                       feature_keys=FEATURES)
    report = json.loads((tmp_path / "out" / REPORT_JSON).read_text())
    assert report["float_accuracy"] == 1.0  # the hand-built model is exact on a + b > 0
    assert report["variants"]["int8"]["accuracy"] >= 0.97
    assert report["eval_examples"] == 300 and report["classes"] == []
    assert summary["blessed"] and (tmp_path / "blessing" / "BLESSED").is_file()
    meta = json.loads((tmp_path / "out" / MODEL_META).read_text())
    assert meta["trained_by"] == "user" and meta["classes"] == []
    assert meta["encoding"] == {"kind": "raw", "columns": FEATURES, "input_shape": [3]}
    assert (meta["input_name"], meta["output_name"]) == ("x", "scores")
    # the self-test push signs is the first eval example, as the model reads it
    first = rows(300, 1)[0]
    assert report["self_test"]["input"][0] == pytest.approx(
        [first["a"], first["b"], first["count"]], rel=1e-6)


def test_user_model_on_a_csv_with_class_names(user_model, csv_examples, tmp_path) -> None:
    quantize(user_model, csv_examples, tmp_path, label_key="species", feature_keys=FEATURES,
             classes=["low", "high"])
    report = json.loads((tmp_path / "out" / REPORT_JSON).read_text())
    assert report["classes"] == ["low", "high"] and report["eval_examples"] == 200
    assert report["float_accuracy"] == 1.0 and report["calibration_examples"] == 200


def test_tfx_style_model_converts_its_float_signature(tfx_examples, tmp_path) -> None:
    model = save_user_model(tmp_path / "model", tfx_style=True)
    with pytest.raises(InputError, match=r"'serving_default' takes strings \('examples', "
                       r"serialized tf.Example as TFX exports\).*signature=") as err:
        quantize(model, tfx_examples, tmp_path, label_key="species", feature_keys=FEATURES)
    assert "\n" not in str(err.value)
    checks.assert_nothing_written(tmp_path, keep=["model", "model_blessing"])
    quantize(model, tfx_examples, tmp_path, label_key="species", feature_keys=FEATURES,
             signature="serving_float")
    assert (tmp_path / "blessing" / "BLESSED").is_file()


def test_format_serving_layout_is_found(tfx_examples, tmp_path) -> None:
    save_user_model(tmp_path / "model" / SERVING_DIR)  # TFX Trainer's Model artifact layout
    quantize(tmp_path / "model", tfx_examples, tmp_path, label_key="species",
             feature_keys=FEATURES)
    assert (tmp_path / "out" / "model_int8.tflite").is_file()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"label_key": "species", "feature_keys": FEATURES, "signature": "float_in"},
     r"no 'float_in' signature \(found: serving_default\)"),
    ({"feature_keys": FEATURES}, r"label_key: name the label in .*examples"),
    ({"label_key": "species", "feature_keys": ["a", "size", "count"]},
     r"split 'train' example 0: no feature 'size' \(it has a, b, count, species\)"),
    ({"label_key": "species", "feature_keys": ["a", "b"]},
     r"feature_keys: a \(1\) \+ b \(1\) give 2 values per example, but the model's input 'x' "
     r"takes 3"),
    ({"label_key": "a", "feature_keys": FEATURES},
     r"label 'a' must be an int64 class index \(float_list\)"),
    ({"label_key": "species", "feature_keys": FEATURES, "classes": ["x", "y", "z"]},
     r"classes: 3 names given, but 'serving_default' output 'scores' scores 2 classes"),
])
def test_bad_description_of_the_user_inputs(user_model, tfx_examples, tmp_path, kwargs,
                                            message) -> None:
    with pytest.raises(InputError, match=message) as err:
        quantize(user_model, tfx_examples, tmp_path, **kwargs)
    assert "\n" not in str(err.value)
    checks.assert_nothing_written(tmp_path, keep=["model_blessing"])


@pytest.mark.parametrize(("line", "message"), [
    ("high,0.5,abc,1,x", r"eval.csv line 4: feature 'b' is 'abc', not a finite number"),
    ("high,0.5,,1,x", r"eval.csv line 4: feature 'b' is '', not a finite number"),
    ("medium,0.5,0.1,1,x", r"eval.csv line 4: label 'medium' is neither one of the classes"),
    # found in review: inf reached the converter (a segfault), "²" passed str.isdigit
    ("high,0.5,inf,1,x", r"eval.csv line 4: feature 'b' is 'inf', not a finite number"),
    ("high,0.5,1e400,1,x", r"eval.csv line 4: feature 'b' is '1e400', not a finite number"),
    ("²,0.5,0.1,1,x", r"eval.csv line 4: label '²' is neither one of the classes"),
])
def test_bad_csv_row_is_named_by_its_line(user_model, tmp_path, line, message) -> None:
    csv = tmp_path / "eval.csv"
    csv.write_text("species,a,b,count,note\nlow,-1,-1,0,x\nhigh,1,1,0,x\n" + line + "\n")
    with pytest.raises(InputError, match=message):
        quantize(user_model, csv, tmp_path, label_key="species", feature_keys=FEATURES,
                 classes=["low", "high"])
    checks.assert_nothing_written(tmp_path, keep=["model_blessing", "eval.csv"])


def test_csv_without_a_named_column(user_model, tmp_path) -> None:
    csv = tmp_path / "eval.csv"
    csv.write_text("species,a,b\nlow,-1,-1\n")
    with pytest.raises(InputError, match=r"eval.csv: no column 'count' \(columns: species, a, b"):
        quantize(user_model, csv, tmp_path, label_key="species", feature_keys=FEATURES)


def test_an_output_that_is_not_class_scores_is_refused(tfx_examples, tmp_path) -> None:
    """Found in review: a rank-1 or rank-3 output failed deep in numpy."""
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable([[1.0], [1.0], [0.0]])
    serve = tf.function(lambda x: {"score": tf.reshape(x @ module.w, [-1])},
                        input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path / "model"), signatures={"serving_default": serve})
    with pytest.raises(InputError, match=r"output 'score' has shape \[None\]; the serving "
                                         r"contract is class scores \[None, classes\]"):
        quantize(tmp_path / "model", tfx_examples, tmp_path, label_key="species",
                 feature_keys=FEATURES, classes=["low", "high"])
    checks.assert_nothing_written(tmp_path, keep=["model", "model_blessing"])
