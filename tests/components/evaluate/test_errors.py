"""evaluate refuses bad input with one line naming the file or feature, and leaves nothing behind.

None of these reach TFMA: the checks run before it. The model is a real (untrained) exported
Keras model for 8x8 grey images; it only needs the right signature.
"""

from __future__ import annotations

import shutil

import pytest

from edgeship.components.artifacts import MODEL_META, SERVING_DIR, read_json, write_json
from edgeship.errors import InputError
from tests.helpers import builders
from tests.helpers.builders import export_model

CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def image_setup(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("evaluate_inputs")
    examples = builders.image_examples(root / "examples", n=40, size=8)
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    model = keras.Sequential([keras.Input([8, 8, 1]), *layers])
    encoding = {"kind": "image", "columns": ["image"], "input_shape": [8, 8, 1]}
    model_dir = export_model(root / "model", model, encoding, CLASSES, "image")
    return {"root": root, "examples": examples, "model": model_dir}


def _evaluate(image_setup, examples=None, model=None, **kwargs):
    """Run evaluate into a fresh folder; return the error and that folder's contents after."""
    from edgeship.components.evaluate.executor import run_evaluate

    out = image_setup["root"] / f"out-{len(list(image_setup['root'].iterdir()))}"
    out.mkdir()
    with pytest.raises(InputError) as caught:
        run_evaluate(
            str(examples or image_setup["examples"]),
            str(model or image_setup["model"]),
            str(out / "blessing"),
            str(out / "evaluation"),
            **kwargs,
        )
    message = str(caught.value)
    assert "\n" not in message
    assert list(out.iterdir()) == [], "a failed evaluate must leave no output or scratch folder"
    return message


def test_model_for_other_input_shape(image_setup) -> None:
    bigger = builders.image_examples(image_setup["root"] / "big", n=20, size=16)
    message = _evaluate(image_setup, examples=bigger)
    assert "model expects inputs of shape [N, 8, 8, 1]" in message
    assert "got [5, 16, 16, 1]" in message  # 20 images, a quarter of them eval


def test_missing_or_broken_model(image_setup) -> None:
    no_serving = image_setup["root"] / "no_serving"
    no_serving.mkdir()
    shutil.copy(image_setup["model"] / MODEL_META, no_serving / MODEL_META)
    message = _evaluate(image_setup, model=no_serving)
    assert SERVING_DIR in message and "saved_model.pb missing" in message

    assert "model folder not found" in _evaluate(image_setup, model=image_setup["root"] / "nope")

    broken = image_setup["root"] / "broken"
    (broken / SERVING_DIR).mkdir(parents=True)
    (broken / SERVING_DIR / "saved_model.pb").write_bytes(b"not a protobuf")
    shutil.copy(image_setup["model"] / MODEL_META, broken / MODEL_META)
    message = _evaluate(image_setup, model=broken)
    assert str(broken / SERVING_DIR) in message and "not a loadable SavedModel" in message


def test_model_for_other_classes(image_setup) -> None:
    other = image_setup["root"] / "other_classes"
    shutil.copytree(image_setup["model"], other)
    meta = read_json(other / MODEL_META, "model metadata")
    write_json(other / MODEL_META, {**meta, "classes": ["cat", "dog"]})
    message = _evaluate(image_setup, model=other)
    assert "['cat', 'dog']" in message and "['left', 'right']" in message


def test_empty_eval_split(image_setup) -> None:
    features = [{"name": "image", "dtype": "float", "shape": [8, 8, 1]}]
    rows = {"train": [{"image": [[[0.0]] * 8] * 8, "label": 0}], "eval": []}
    empty = builders.write_examples(image_setup["root"] / "empty", "image", features, CLASSES, rows)
    message = _evaluate(image_setup, examples=empty)
    assert str(empty) in message and "no examples" in message


def test_unknown_or_multi_valued_slice_feature(image_setup) -> None:
    message = _evaluate(image_setup, slice_feature="colour")
    assert "slice_feature 'colour' is not a feature of" in message and "label" in message
    message = _evaluate(image_setup, slice_feature="image")
    assert "'image' has shape [8, 8, 1]" in message and "one value per example" in message


def test_bad_thresholds(image_setup) -> None:
    assert "min_accuracy" in _evaluate(image_setup, min_accuracy=1.5)
    assert "max_accuracy_decrease" in _evaluate(image_setup, max_accuracy_decrease=1.5)
    assert "max_accuracy_decrease" in _evaluate(image_setup, max_accuracy_decrease=-0.1)


def test_default_beam_runner_stays_in_process() -> None:
    from edgeship.components._beam import pipeline_options

    default = pipeline_options([]).get_all_options()
    assert default["runner"] == "FnApiRunner"
    chosen = pipeline_options(["--runner=DirectRunner", "--direct_num_workers=2"])
    assert chosen.get_all_options()["runner"] == "DirectRunner"
    assert chosen.get_all_options()["direct_num_workers"] == 2


