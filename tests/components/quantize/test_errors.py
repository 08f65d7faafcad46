"""Bad input to quantize: one readable line naming the variant(s) concerned, and no output left
behind. The models here are hand-built tf.Modules, so no training is needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.components._dataset import build_encoding, input_names, load_split
from edgeship.components.artifacts import MODEL_META, SERVING_DIR, read_examples_meta, write_json
from edgeship.components.quantize.executor import run_quantize
from edgeship.errors import InputError
from tests.helpers import builders, checks

# Inputs of the model after train's encoding: x, y, and colour's vocabulary with its slot for
# values train never saw (edgeship.components._dataset.input_names).
WIDTH = 6


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> tuple[Path, dict]:
    """Tabular examples (x, y and a 3-value colour: WIDTH input columns after encoding) and the
    encoding train would record."""
    folder = builders.tabular_examples(tmp_path_factory.mktemp("ex") / "examples", n=80)
    meta = read_examples_meta(folder)
    encoding = build_encoding(meta, load_split(folder, "train", meta)[0])
    assert len(input_names(encoding)) == WIDTH, input_names(encoding)
    return folder, encoding


def save_module(model_dir: Path, encoding: dict, spec, body, signature: bool = True) -> Path:
    """A SavedModel whose serving function is ``body(inputs)`` with input ``spec``."""
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(np.random.default_rng(0).normal(size=(WIDTH, 2)).astype(np.float32))
    serve = tf.function(
        lambda inputs: {"probabilities": body(module, inputs)}, input_signature=[spec]
    )
    module.serve = serve
    tf.saved_model.save(
        module,
        str(model_dir / SERVING_DIR),
        signatures={"serving_default": serve} if signature else {},
    )
    write_json(
        model_dir / MODEL_META,
        {
            "kind": "tabular",
            "classes": ["low", "high"],
            "encoding": encoding,
            "input_name": "inputs",
            "output_name": "probabilities",
            "input_shape": [WIDTH],
            "num_classes": 2,
        },
    )
    return model_dir


def dense(module, inputs):
    import tensorflow as tf

    return tf.nn.softmax(inputs @ module.w)


def sine(module, inputs):
    import tensorflow as tf

    return tf.nn.softmax(tf.math.sin(inputs @ module.w))


def float_spec(shape):
    import tensorflow as tf

    return tf.TensorSpec(shape, tf.float32, name="inputs")


def quantize(model: Path, examples: Path, root: Path, **kwargs) -> dict:
    return run_quantize(
        str(model),
        str(examples),
        str(root / "out"),
        str(root / "blessing"),
        str(root / "report"),
        latency_runs=3,
        **kwargs,
    )


def assert_nothing_written(root: Path) -> None:
    checks.assert_nothing_written(root, keep=["model"])


def test_model_without_serving_signature(examples, tmp_path) -> None:
    folder, encoding = examples
    model = save_module(tmp_path / "model", encoding, float_spec([None, WIDTH]), dense,
                        signature=False)
    with pytest.raises(InputError, match="no 'serving_default' signature.*no variant") as err:
        quantize(model, folder, tmp_path)
    assert "\n" not in str(err.value)
    assert_nothing_written(tmp_path)


def test_model_with_string_input(examples, tmp_path) -> None:
    import tensorflow as tf

    folder, encoding = examples
    model = save_module(
        tmp_path / "model",
        encoding,
        tf.TensorSpec([None, WIDTH], tf.string, name="inputs"),
        lambda m, s: dense(m, tf.strings.to_number(s)),
    )
    with pytest.raises(InputError, match=r"'serving_default' takes strings \('inputs', serial"):
        quantize(model, folder, tmp_path)
    assert_nothing_written(tmp_path)


def test_model_with_dynamic_input_shape(examples, tmp_path) -> None:
    folder, encoding = examples
    model = save_module(
        tmp_path / "model", encoding, float_spec([None, None]), lambda m, x: dense(m, x[:, :WIDTH])
    )
    with pytest.raises(InputError, match=r"shape \[None, None\], not static.*no variant"):
        quantize(model, folder, tmp_path)
    assert_nothing_written(tmp_path)


def test_op_without_int8_kernel_fails_int8_and_names_what_converts(examples, tmp_path) -> None:
    folder, encoding = examples
    model = save_module(tmp_path / "model", encoding, float_spec([None, WIDTH]), sine)
    with pytest.raises(InputError) as err:
        quantize(model, folder, tmp_path)
    message = str(err.value)
    assert message.startswith("int8: cannot be fully quantized: SIN #")
    assert "these convert: float32, dynamic_range, float16" in message
    assert_nothing_written(tmp_path)
    # asked for by name, the variants that can be made are made
    summary = quantize(model, folder, tmp_path, variants=["float32", "float16"])
    assert sorted(summary["variants"]) == ["float16", "float32"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tflite")) == [
        "model_float16.tflite",
        "model_float32.tflite",
    ]


def test_empty_calibration_split(examples, tmp_path) -> None:
    folder, encoding = examples
    meta = read_examples_meta(folder)
    cols, labels = load_split(folder, "eval", meta)
    rows = [
        {
            "x": float(cols["x"][i]),
            "y": float(cols["y"][i]),
            "colour": cols["colour"][i],
            "label": int(labels[i]),
        }
        for i in range(len(labels))
    ]
    empty = builders.write_examples(
        tmp_path / "examples",
        "tabular",
        meta["features"],
        meta["classes"],
        {"train": [], "eval": rows},
    )
    model = save_module(tmp_path / "model", encoding, float_spec([None, WIDTH]), dense)
    with pytest.raises(InputError, match="int8: .* split 'train' has no examples to calibrate"):
        quantize(model, empty, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples", "model"]


def test_model_for_other_classes_is_refused(examples, tmp_path) -> None:
    """Same number of classes in another order: every accuracy would be scored against the
    wrong labels, so nothing is measured."""
    folder, encoding = examples
    model = save_module(tmp_path / "model", encoding, float_spec([None, WIDTH]), dense)
    meta = json.loads((model / MODEL_META).read_text())
    write_json(model / MODEL_META, {**meta, "classes": ["high", "low"]})
    with pytest.raises(InputError) as err:
        quantize(model, folder, tmp_path)
    assert str(err.value) == (
        f"{model / MODEL_META}: the model predicts classes ['high', 'low'], "
        "the examples have ['low', 'high']"
    )
    assert_nothing_written(tmp_path)


def test_model_reading_a_feature_the_examples_lack(examples, tmp_path) -> None:
    folder, encoding = examples
    renamed = [{**c, "name": "ghost"} if c["name"] == "x" else c for c in encoding["columns"]]
    model = save_module(
        tmp_path / "model", {**encoding, "columns": renamed}, float_spec([None, WIDTH]), dense
    )
    with pytest.raises(InputError, match=r"split 'eval': the model reads feature 'ghost'") as err:
        quantize(model, folder, tmp_path)
    assert "\n" not in str(err.value)
    assert_nothing_written(tmp_path)


def test_missing_model_meta(examples, tmp_path) -> None:
    folder, _ = examples
    (tmp_path / "model").mkdir()
    with pytest.raises(InputError, match=f"{MODEL_META}: model metadata not found: .*feature_k"):
        quantize(tmp_path / "model", folder, tmp_path)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("params,match", [
    ({"variants": ["int4"]}, "variants: unknown 'int4'"),
    ({"calibration_examples": 0}, "calibration_examples: 0, must be >= 1"),
    ({"latency_runs": 0}, "latency_runs: 0, must be >= 1"),
    ({"max_accuracy_drop": -1.0}, "max_accuracy_drop: -1.0, must be >= 0"),
    ({"num_thread": 2}, r"unknown parameter\(s\) num_thread"),
])
def test_bad_parameters_fail_before_any_work(tmp_path, params, match) -> None:
    """Refused before a model or example is read: the paths here do not even exist."""
    outputs = [str(tmp_path / name) for name in ("quantized", "blessing", "report")]
    checks.one_line_error(
        lambda: run_quantize(str(tmp_path / "model"), str(tmp_path / "examples"), *outputs,
                             **params), match)
    checks.assert_nothing_written(tmp_path)
