"""train executor: each family learns its builder data, exports the fixed signature, converts to
full-int8 TFLite, and trains deterministically; a module file can replace the family."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.components._dataset import encode, load_split
from edgeship.components.artifacts import MODEL_META, SERVING_DIR, read_examples_meta
from edgeship.components.train.executor import load_serving_fn, predict, run_train
from edgeship.errors import InputError
from tests.helpers import builders

# Few epochs keep the suite fast; chance is 1/2 (tabular, image) and 1/3 (sensor).
FAMILIES = {
    "tabular": (builders.tabular_examples, 10, 0.8),
    "sensor": (builders.sensor_examples, 6, 0.7),
    "image": (builders.image_examples, 6, 0.8),
}


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("examples")
    return {kind: make(root / kind) for kind, (make, _, _) in FAMILIES.items()}


@pytest.fixture(scope="module")
def trained(examples, tmp_path_factory) -> dict[str, tuple[Path, Path, dict]]:
    """kind -> (model_dir, logs_dir, summary), trained once for the module."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for kind, (_, epochs, _) in FAMILIES.items():
        model_dir, logs_dir = root / f"{kind}-model", root / f"{kind}-logs"
        summary = run_train(
            str(examples[kind]), str(model_dir), logs_dir=str(logs_dir), epochs=epochs,
            min_steps=50,  # these tests are not about the schedule: keep the runs short
        )
        out[kind] = (model_dir, logs_dir, summary)
    return out


def _eval_inputs(examples_dir: Path, model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    meta = read_examples_meta(examples_dir)
    encoding = json.loads((model_dir / MODEL_META).read_text())["encoding"]
    columns, labels = load_split(examples_dir, "eval", meta)
    return encode(encoding, columns), labels


@pytest.mark.parametrize("kind", FAMILIES)
def test_family_learns_better_than_chance(kind, trained, examples) -> None:
    model_dir, _, summary = trained[kind]
    threshold = FAMILIES[kind][2]
    assert summary["eval_accuracy"] >= threshold
    assert summary["model"] == str(model_dir)
    # The reported accuracy is what the exported model really scores on the eval split.
    x, y = _eval_inputs(examples[kind], model_dir)
    measured = float(np.mean(np.argmax(predict(str(model_dir), x), axis=1) == y))
    assert measured == pytest.approx(summary["eval_accuracy"], abs=1e-6)


@pytest.mark.parametrize("kind", FAMILIES)
def test_model_meta_describes_the_model(kind, trained, examples) -> None:
    model_dir, _, summary = trained[kind]
    meta = json.loads((model_dir / MODEL_META).read_text())
    ex_meta = read_examples_meta(examples[kind])
    assert meta["kind"] == kind
    assert meta["classes"] == ex_meta["classes"]
    assert meta["num_classes"] == len(ex_meta["classes"])
    assert meta["input_name"] == "inputs" and meta["output_name"] == "probabilities"
    assert meta["input_shape"] == meta["encoding"]["input_shape"]
    assert meta["family"] == {"image": "ds_cnn", "sensor": "conv1d", "tabular": "mlp"}[kind]
    assert meta["seed"] == 42
    plan = meta["schedule"]
    assert plan["min_epochs"] <= meta["epochs_run"] <= plan["max_epochs"]
    assert plan["max_epochs"] * plan["passes_per_epoch"] >= FAMILIES[kind][1]
    assert plan["max_epochs"] * plan["steps_per_epoch"] >= 50  # min_steps
    assert meta["steps_run"] == meta["epochs_run"] * plan["steps_per_epoch"]
    assert meta["train_examples"] == ex_meta["counts"]["train"]
    assert meta["parameters"] == summary["parameters"] > 0
    assert meta["eval_accuracy"] == summary["eval_accuracy"]
    assert 0.0 <= meta["train_accuracy"] <= 1.0
    assert not list(model_dir.parent.glob(f".{model_dir.name}.partial-*"))


@pytest.mark.parametrize("kind", FAMILIES)
def test_serving_signature_names_shapes_dtypes(kind, trained) -> None:
    import tensorflow as tf

    model_dir, _, _ = trained[kind]
    meta = json.loads((model_dir / MODEL_META).read_text())
    fn = load_serving_fn(str(model_dir))
    (spec,) = fn.structured_input_signature[1].values()
    assert list(fn.structured_input_signature[1]) == ["inputs"]
    assert spec.dtype == tf.float32
    assert spec.shape.as_list() == [None, *meta["input_shape"]]
    assert list(fn.structured_outputs) == ["probabilities"]
    out = fn.structured_outputs["probabilities"]
    assert out.dtype == tf.float32 and out.shape.as_list() == [None, meta["num_classes"]]
    x = np.random.default_rng(1).normal(size=(300, *meta["input_shape"])).astype(np.float32)
    probabilities = predict(str(model_dir), x, batch_size=128)  # several batches
    assert probabilities.shape == (300, meta["num_classes"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_predict_rejects_inputs_of_the_wrong_shape(trained) -> None:
    model_dir, _, _ = trained["sensor"]
    with pytest.raises(InputError, match=r"expects inputs of shape \[N, 32, 3\]"):
        predict(str(model_dir), np.zeros((4, 16, 3), dtype=np.float32))


def test_tensorboard_logs_are_written(trained) -> None:
    _, logs_dir, _ = trained["tabular"]
    for run in ("train", "validation"):
        assert list((logs_dir / run).glob("events.out.tfevents.*")), run


@pytest.mark.parametrize("kind", FAMILIES)
def test_converts_to_full_int8_tflite(kind, trained, examples) -> None:
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model_dir, _, summary = trained[kind]
    x, y = _eval_inputs(examples[kind], model_dir)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(model_dir / SERVING_DIR))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    scale, zero = inp["quantization"]
    correct = 0
    for row, label in zip(x, y, strict=True):
        q = np.clip(np.round(row / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[None])
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(out["index"])[0]) == label)
    # Normalisation lives inside the model, so the int8 model still classifies raw inputs.
    assert correct / len(y) >= summary["eval_accuracy"] - 0.1


def test_same_seed_gives_the_same_model(trained, examples, tmp_path) -> None:
    """Retrain with the fixture's settings: predictions and metadata must match exactly."""
    model_dir, _, summary = trained["tabular"]
    again = tmp_path / "again"
    run_train(str(examples["tabular"]), str(again), epochs=FAMILIES["tabular"][1], seed=42,
              min_steps=50)
    first = json.loads((model_dir / MODEL_META).read_text())
    probe = np.random.default_rng(3).normal(size=(64, *first["input_shape"])).astype(np.float32)
    np.testing.assert_array_equal(predict(str(model_dir), probe), predict(str(again), probe))
    assert json.loads((again / MODEL_META).read_text()) == first


MODULE = """
import keras


def build_model(input_shape, num_classes, hyperparameters, normalizer):
    inputs = keras.Input(shape=input_shape)
    x = normalizer(inputs)
    x = keras.layers.Dense(hyperparameters["width"], activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)
"""


def test_module_file_replaces_build_model(examples, tmp_path) -> None:
    module = tmp_path / "my_model.py"
    module.write_text(MODULE)
    summary = run_train(
        str(examples["tabular"]),
        str(tmp_path / "model"),
        epochs=10,
        module_file=str(module),
        hyperparameters={"width": 7.0},  # as KFP delivers whole numbers
    )
    meta = json.loads((tmp_path / "model" / MODEL_META).read_text())
    assert meta["family"] == "module_file:my_model.py"
    assert meta["hyperparameters"] == {"width": 7}
    # Dense(6->7) + Dense(7->2) (x, y and colour's 3 values plus its out-of-vocabulary slot);
    # the normaliser's mean and variance are constants, not weights
    assert summary["parameters"] == (6 * 7 + 7) + (7 * 2 + 2)
    assert summary["eval_accuracy"] >= 0.8


def test_a_model_that_learnt_nothing_says_so(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rows = [{"x": float(rng.normal()), "label": int(rng.random() < 0.7)} for _ in range(300)]
    features = [{"name": "x", "dtype": "float", "shape": [1]}]
    examples = builders.write_examples(tmp_path / "ex", "tabular", features, ["rare", "common"],
                                       {"train": rows[:240], "eval": rows[240:]})
    summary = run_train(str(examples), str(tmp_path / "model"), min_steps=50, epochs=3)
    assert summary["warning"].startswith("the model learnt nothing: eval accuracy ")
    assert "between always answering 'common'" in summary["warning"]
    meta = json.loads((tmp_path / "model" / MODEL_META).read_text())
    assert meta["warning"] == summary["warning"]


def test_a_model_that_learnt_has_no_warning(trained) -> None:
    assert all(summary["warning"] == "" for _, _, summary in trained.values())


def test_near_chance_is_judged_against_the_class_balance() -> None:
    from edgeship.components.train.executor import _near_chance

    meta = {"train_accuracy": 0.99, "eval_accuracy": 0.99}
    rare = (np.array([3, 97]), np.array([3, 97]))  # 97% one class: 99% is a real detector
    assert _near_chance(meta, *rare, ["fault", "ok"], "tabular") == ""
    meta = {"train_accuracy": 0.97, "eval_accuracy": 0.97}
    assert _near_chance(meta, *rare, ["fault", "ok"], "tabular").startswith(
        "the model learnt nothing")
    meta = {"train_accuracy": 0.34, "eval_accuracy": 0.34}  # three balanced classes
    warning = _near_chance(meta, np.array([50, 50, 50]), np.array([9, 9, 8]), list("abc"),
                           "image")
    assert "image_size and channels" in warning


def test_the_summary_says_when_min_steps_overrides_epochs(examples, tmp_path) -> None:
    """epochs=1 on a small split: min_steps decides, and the run says so."""
    summary = run_train(str(examples["tabular"]), str(tmp_path / "model"), epochs=1,
                        min_steps=200, max_steps=400)
    assert summary["schedule"].startswith("at most ")
    assert "not epochs=1: min_steps=200 asks for more steps than 1 passes of" in \
        summary["schedule"]
    quick = run_train(str(examples["tabular"]), str(tmp_path / "model2"), epochs=2,
                      min_steps=0, max_steps=400)
    assert quick["schedule"] == ""
