"""The blessing needs evidence, on real TFMA runs with no threshold set: a model that only
answers the majority class, or one trained on a label independent of its features, is NOT
BLESSED; a model that truly learns is BLESSED; 12 eval examples are reported as 12 with their
wide interval; train's "learnt nothing" finding is among the reasons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.components._dataset import build_encoding, encode, load_split
from edgeship.components.artifacts import MODEL_META, is_blessed, read_examples_meta
from edgeship.components.evaluate.evidence import wilson_interval
from tests.helpers import builders

CLASSES = ["late", "on_time"]
FEATURES = [{"name": "x", "dtype": "float", "shape": [1]}]


def _table(root: Path, name: str, labels_of, n_train: int, n_eval: int, seed: int) -> Path:
    """One float feature ``x``; ``labels_of(x, rng)`` gives each row's class index."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_train + n_eval):
        x = float(rng.normal())
        rows.append({"x": x, "label": int(labels_of(x, rng))})
    return builders.write_examples(root / name, "tabular", FEATURES, CLASSES,
                                   {"train": rows[:n_train], "eval": rows[n_train:]})


def _encoding(examples: Path) -> dict:
    meta = read_examples_meta(examples)
    return build_encoding(meta, load_split(examples, "train", meta)[0])


def _fixed_model(model_dir: Path, encoding: dict, kernel: list[float], bias: list[float]) -> Path:
    """softmax(x_std * kernel + bias): a model whose answers are known before it runs."""
    import keras

    model = keras.Sequential([keras.Input([1]), keras.layers.Dense(2, activation="softmax")])
    model.layers[0].set_weights([np.array([kernel], np.float32), np.array(bias, np.float32)])
    return builders.export_model(model_dir, model, encoding, CLASSES, "tabular")


def _majority_model(model_dir: Path, encoding: dict) -> Path:
    """Always 'on_time', whatever x is."""
    return _fixed_model(model_dir, encoding, [0.0, 0.0], [0.0, 5.0])


def _sign_model(model_dir: Path, encoding: dict) -> Path:
    """'on_time' exactly when the raw x > 0 (x is standardised by the encoding first)."""
    (column,) = encoding["columns"]
    cut = -column["mean"] / column["std"]
    return _fixed_model(model_dir, encoding, [0.0, 50.0], [0.0, -50.0 * cut])


def _evaluate(examples: Path, model: Path, out: Path, **params) -> dict:
    from edgeship.components.evaluate.executor import run_evaluate

    return run_evaluate(str(examples), str(model), str(out / "blessing"),
                        str(out / "evaluation"), **params)


def _eval_labels(examples: Path) -> np.ndarray:
    meta = read_examples_meta(examples)
    return load_split(examples, "eval", meta)[1]


@pytest.fixture(scope="module")
def unbalanced(tmp_path_factory) -> Path:
    """76 % on time, and the label is independent of x (like a delay table whose features
    carry nothing)."""
    root = tmp_path_factory.mktemp("independent")
    return _table(root, "examples", lambda x, rng: rng.random() < 0.76, 200, 300, seed=5)


def test_a_majority_only_model_is_not_blessed(unbalanced, tmp_path) -> None:
    model = _majority_model(tmp_path / "model", _encoding(unbalanced))
    summary = _evaluate(unbalanced, model, tmp_path)
    labels = _eval_labels(unbalanced)
    share = float(np.mean(labels == 1))
    assert summary["blessed"] is False and not is_blessed(tmp_path / "blessing")
    assert summary["examples"] == 300 and summary["majority_class"] == "on_time"
    assert summary["accuracy"] == pytest.approx(share, abs=1e-6)
    assert summary["majority_share"] == pytest.approx(share)
    assert summary["balanced_accuracy"] == pytest.approx(0.5)
    assert summary["per_class"]["late"]["recall"] == 0.0
    low, high = wilson_interval(int(labels.sum()), 300)
    assert summary["accuracy_interval"] == pytest.approx([low, high])
    verdict = summary["verdict"]
    assert "\n" not in verdict
    assert verdict == (
        f"NOT BLESSED: accuracy {100 * share:.1f}% [{100 * low:.1f}%, {100 * high:.1f}%] on 300 "
        f"eval examples does not beat the majority class 'on_time' ({100 * share:.1f}%)")
    text = (tmp_path / "blessing" / "NOT_BLESSED").read_text()
    assert text.splitlines()[0] == verdict
    assert "balanced accuracy 50.0%" in text and "recall per class: 'late' 0.0% of" in text
    report = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert report["thresholds"]["require_beats_majority"] is True
    assert report["macro_f1"] == pytest.approx(summary["macro_f1"])


def test_a_model_trained_on_an_independent_label_is_not_blessed(unbalanced, tmp_path) -> None:
    """A real fit of a small network on a label x says nothing about: whatever noise it learnt
    does not beat answering 'on_time' with confidence."""
    import keras

    encoding = _encoding(unbalanced)
    meta = read_examples_meta(unbalanced)
    columns, labels = load_split(unbalanced, "train", meta)
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input([1]), keras.layers.Dense(16, activation="relu"),
                            keras.layers.Dense(2, activation="softmax")])
    net.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    net.fit(encode(encoding, columns), labels, epochs=40, batch_size=16, verbose=0)
    model = builders.export_model(tmp_path / "model", net, encoding, CLASSES, "tabular")
    summary = _evaluate(unbalanced, model, tmp_path)
    assert summary["blessed"] is False
    assert summary["accuracy_interval"][0] <= summary["majority_share"]
    assert summary["verdict"].startswith("NOT BLESSED: accuracy ")
    assert "does not beat the majority class 'on_time'" in summary["verdict"]


def test_turning_the_check_off_takes_an_explicit_false(unbalanced, tmp_path) -> None:
    model = _majority_model(tmp_path / "model", _encoding(unbalanced))
    summary = _evaluate(unbalanced, model, tmp_path, require_beats_majority=False)
    assert summary["blessed"] is True
    assert summary["verdict"].startswith("BLESSED without the majority check")
    (note,) = [r for r in summary["reasons"] if "check is off" in r]
    assert "does not beat the majority class" in note


def test_a_model_that_learns_is_blessed_and_per_class_recall_can_gate(tmp_path) -> None:
    examples = _table(tmp_path, "examples", lambda x, rng: x > 0, 200, 300, seed=6)
    model = _sign_model(tmp_path / "model", _encoding(examples))
    summary = _evaluate(examples, model, tmp_path / "run")
    assert summary["blessed"] is True and is_blessed(tmp_path / "run" / "blessing")
    assert summary["accuracy"] == 1.0 and summary["macro_f1"] == 1.0
    assert summary["verdict"].startswith("BLESSED: accuracy 100.0% [")
    assert "on 300 eval examples beats the majority class" in summary["verdict"]
    # the same model held to a margin it cannot clear: the margin is a parameter
    strict = _evaluate(examples, model, tmp_path / "strict", min_lift_over_majority=0.49)
    assert strict["blessed"] is False
    assert "by min_lift_over_majority 49.0%" in strict["verdict"]


def test_min_class_recall_refuses_a_model_that_misses_a_class(unbalanced, tmp_path) -> None:
    """Evidence off, a floor on every class's recall: 'late' is never found, so refused."""
    model = _majority_model(tmp_path / "model", _encoding(unbalanced))
    summary = _evaluate(unbalanced, model, tmp_path, require_beats_majority=False,
                        min_class_recall=0.2)
    assert summary["blessed"] is False
    assert summary["verdict"].startswith("NOT BLESSED: recall of class 'late' 0.0% (0 of ")
    assert "is below min_class_recall 20.0%" in summary["verdict"]
    # whichever check refused, the verdict states the eval examples and the interval
    assert "on 300 eval examples does not beat the majority class 'on_time'" in \
        summary["verdict"]


@pytest.mark.parametrize("balance,blessed", [(6, True), (10, False)])
def test_twelve_eval_examples_read_as_twelve_with_their_wide_interval(tmp_path, balance,
                                                                     blessed) -> None:
    """12 of 12 right is [75.8 %, 100 %]: enough against a 6/6 split, not against 10/2, where
    answering the commonest class already scores 83 %."""
    rng = np.random.default_rng(7)
    train = [{"x": float(v), "label": int(v > 0)} for v in rng.normal(size=60)]
    xs = [float(v) for v in np.r_[rng.uniform(0.5, 2, balance), -rng.uniform(0.5, 2, 12 - balance)]]
    rows = [{"x": x, "label": int(x > 0)} for x in xs]
    examples = builders.write_examples(tmp_path / "examples", "tabular", FEATURES, CLASSES,
                                       {"train": train, "eval": rows})
    model = _sign_model(tmp_path / "model", _encoding(examples))
    summary = _evaluate(examples, model, tmp_path / "run")
    low, high = wilson_interval(12, 12)
    assert summary["examples"] == 12 and summary["accuracy"] == 1.0
    assert summary["accuracy_interval"] == pytest.approx([low, high])
    assert high - low > 0.2
    assert f"accuracy 100.0% [{100 * low:.1f}%, 100.0%] on 12 eval examples" in summary["verdict"]
    assert summary["blessed"] is blessed


def test_trains_finding_is_among_the_reasons(unbalanced, tmp_path) -> None:
    """Train's warning (in model_meta.json) is stated; it is the interval that refuses."""
    model = _majority_model(tmp_path / "model", _encoding(unbalanced))
    meta = json.loads((model / MODEL_META).read_text())
    meta["warning"] = "the model learnt nothing: eval accuracy 76.0% (train 76.0%) ..."
    (model / MODEL_META).write_text(json.dumps(meta))
    summary = _evaluate(unbalanced, model, tmp_path / "run")
    assert summary["blessed"] is False
    assert f"train found: {meta['warning']}" in summary["reasons"]
    assert summary["verdict"].endswith("; train found: the model learnt nothing")
    assert summary["train_warning"] == meta["warning"]
    text = (tmp_path / "run" / "blessing" / "NOT_BLESSED").read_text()
    assert "train found: the model learnt nothing" in text
