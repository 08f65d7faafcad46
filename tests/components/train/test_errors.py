"""train refuses bad input with one readable line naming the file, split or parameter, and leaves
no model folder (nor a scratch sibling) behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.components.artifacts import EXAMPLES_META
from edgeship.components.train.executor import run_train
from tests.helpers import builders
from tests.helpers.checks import assert_nothing_written, one_line_error


def _fails(examples_dir: Path, tmp_path: Path, match: str, **kwargs) -> str:
    model_dir, logs_dir = tmp_path / "out" / "model", tmp_path / "out" / "logs"
    message = one_line_error(
        lambda: run_train(str(examples_dir), str(model_dir), logs_dir=str(logs_dir), **kwargs),
        match)
    assert_nothing_written(tmp_path / "out")
    return message


def _tabular_rows(n: int, label: int | None = None) -> list[dict]:
    return [{"x": float(i), "label": i % 2 if label is None else label} for i in range(n)]


TABULAR = [{"name": "x", "dtype": "float", "shape": [1]}]


def test_single_class_in_train(tmp_path) -> None:
    rows = {"train": _tabular_rows(20, label=1), "eval": _tabular_rows(6)}
    ex = builders.write_examples(tmp_path / "ex", "tabular", TABULAR, ["a", "b"], rows)
    message = _fails(ex, tmp_path, r"every example has class 'b'")
    assert str(ex) in message and "split 'train'" in message


def test_meta_with_a_single_class(tmp_path) -> None:
    rows = {"train": _tabular_rows(20, label=0), "eval": _tabular_rows(6, label=0)}
    ex = builders.write_examples(tmp_path / "ex", "tabular", TABULAR, ["only"], rows)
    _fails(ex, tmp_path, r"examples_meta\.json: needs at least 2 classes")


def test_empty_train_split(tmp_path) -> None:
    rows = {"train": [], "eval": _tabular_rows(6)}
    ex = builders.write_examples(tmp_path / "ex", "tabular", TABULAR, ["a", "b"], rows)
    _fails(ex, tmp_path, r"split 'train': no examples")


def test_missing_train_split(tmp_path) -> None:
    rows = {"eval": _tabular_rows(6)}
    ex = builders.write_examples(tmp_path / "ex", "tabular", TABULAR, ["a", "b"], rows)
    _fails(ex, tmp_path, r"Split-train: no TFRecord files")


def test_label_outside_the_classes(tmp_path) -> None:
    rows = {"train": _tabular_rows(20) + [{"x": 1.0, "label": 5}], "eval": _tabular_rows(6)}
    ex = builders.write_examples(tmp_path / "ex", "tabular", TABULAR, ["a", "b"], rows)
    _fails(ex, tmp_path, r"example 20 has label 5")


def test_nan_in_sensor_window(tmp_path) -> None:
    features = [{"name": "ax", "dtype": "float", "shape": [4]}]
    rows = [{"ax": [0.0, 1.0, 2.0, 3.0], "label": i % 2} for i in range(10)]
    rows[3]["ax"] = [0.0, float("nan"), 0.0, 0.0]
    ex = builders.write_examples(
        tmp_path / "ex", "sensor", features, ["a", "b"], {"train": rows, "eval": rows[:4]}
    )
    _fails(ex, tmp_path, r"split 'train': example 3 has NaN")


def test_missing_meta(tmp_path) -> None:
    (tmp_path / "ex").mkdir()
    _fails(tmp_path / "ex", tmp_path, r"examples_meta\.json: examples metadata not found")


@pytest.mark.parametrize(
    "text,match",
    [
        ("{not json", r"not valid JSON"),
        ('{"kind": "audio"}', r"'kind' must be one of"),
        (
            '{"kind": "tabular", "label_feature": "label", "classes": ["a", "b"], "features": []}',
            r"'features' must be a non-empty list",
        ),
    ],
)
def test_invalid_meta(tmp_path, text, match) -> None:
    ex = builders.tabular_examples(tmp_path / "ex", n=20)
    (ex / EXAMPLES_META).write_text(text)
    message = _fails(ex, tmp_path, match)
    assert EXAMPLES_META in message


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"epochs": 0}, r"epochs: 0, must be a positive integer"),
        ({"learning_rate": -1.0}, r"learning_rate: -1.0, must be a positive number"),
        ({"hyperparameters": [8]}, r"hyperparameters: \[8\], must be an object of settings"),
        ({"hyperparameters": {"filtres": 8}}, r"unknown key\(s\) \['filtres'\]"),
        ({"hyperparameters": {"units": [8, -1]}}, r"'units' must be positive integers"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, match) -> None:
    ex = builders.tabular_examples(tmp_path / "ex", n=20)
    _fails(ex, tmp_path, match, **kwargs)


WRONG_WIDTH = """
import keras

def build_model(input_shape, num_classes, hyperparameters, normalizer):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes + 1, activation="softmax")(inputs))
"""

NOT_SOFTMAX = """
import keras

def build_model(input_shape, num_classes, hyperparameters, normalizer):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes, bias_initializer="ones")(inputs))
"""


@pytest.mark.parametrize(
    "source,match",
    [
        (None, r"module file not found"),
        ("def build(): pass\n", r"defines no build_model"),
        ("import not_a_module_anywhere\n", r"import failed: ModuleNotFoundError"),
        ("def build_model(a, b, c, d):\n    return 3\n", r"returned int, not keras\.Model"),
        (WRONG_WIDTH, r"output has shape \[None, 3\], expected \[None, 2\]"),
        (NOT_SOFTMAX, r"must be softmax probabilities"),
    ],
    ids=["missing", "no-build-model", "import-error", "not-a-model", "wrong-shape", "no-softmax"],
)
def test_bad_module_file(tmp_path, source, match) -> None:
    ex = builders.tabular_examples(tmp_path / "ex", n=20)
    module = tmp_path / "user_module.py"
    if source is not None:
        module.write_text(source)
    message = _fails(ex, tmp_path, match, module_file=str(module))
    assert str(module) in message


