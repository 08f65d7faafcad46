"""evaluate on real TFMA runs: metrics against numpy, slices, thresholds, blessing, KFP artifacts.

TFMA runs are shared by the module: the good model alone through the KFP component function
(value threshold met: blessed), the weak model against the good one as baseline through the
executor (both thresholds fail), and (slow) the good against the weak one (change threshold met).
Every expected number is recomputed here with numpy from the exported models' own outputs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgeship.components._dataset import build_encoding, encode, load_split
from edgeship.components.artifacts import (
    EXAMPLES_META,
    OUTPUT_MARKER,
    SERVING_DIR,
    is_blessed,
    read_examples_meta,
    read_json,
    write_json,
)
from tests.helpers import builders

CLASSES = ["low", "high"]
TOL = 1.5e-4  # reasons print 4 decimals of float32 metrics


def _tabular_with_site(examples_dir: Path, n: int = 320, seed: int = 1) -> Path:
    """Tabular examples plus a passthrough string feature ``site`` (like a sensor group id)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        x, y = float(rng.normal()), float(rng.normal())
        colour = str(rng.choice(["red", "green", "blue"]))
        score = x + (1.5 if colour == "red" else 0.0) + 0.1 * y
        rows.append(
            {
                "x": x,
                "y": y,
                "colour": colour,
                "site": str(rng.choice(["north", "south"])),
                "label": int(score > 0.5),
            }
        )
    features = [
        {"name": "x", "dtype": "float", "shape": [1]},
        {"name": "y", "dtype": "float", "shape": [1]},
        {"name": "colour", "dtype": "string", "shape": [1]},
    ]
    cut = int(n * 0.7)
    builders.write_examples(
        examples_dir, "tabular", features, CLASSES, {"train": rows[:cut], "eval": rows[cut:]}
    )
    meta = read_examples_meta(examples_dir)
    meta["passthrough"] = ["site"]
    write_json(examples_dir / EXAMPLES_META, meta)
    return examples_dir


def _mlp(encoding: dict, x: np.ndarray, y: np.ndarray, epochs: int, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(encoding["input_shape"]),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(len(CLASSES), activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    if epochs:
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def _serving_probs(model_dir: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir / SERVING_DIR))
    fn = loaded.signatures["serving_default"]
    return fn(inputs=tf.constant(x))["probabilities"].numpy()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Examples, a good and a weak model, and numpy's view of their eval predictions."""
    root = tmp_path_factory.mktemp("evaluate")
    examples = _tabular_with_site(root / "examples")
    meta = read_examples_meta(examples)
    train_cols, train_y = load_split(examples, "train", meta)
    encoding = build_encoding(meta, train_cols)
    x_train = encode(encoding, train_cols)
    good = builders.export_model(
        root / "good", _mlp(encoding, x_train, train_y, 15, 0), encoding, CLASSES, "tabular"
    )
    weak = builders.export_model(
        root / "weak", _mlp(encoding, x_train, train_y, 0, 3), encoding, CLASSES, "tabular"
    )
    eval_cols, eval_y = load_split(examples, "eval", meta)
    x_eval = encode(encoding, eval_cols)
    ref = {
        "root": root,
        "examples": examples,
        "good": good,
        "weak": weak,
        "labels": eval_y,
        "colour": eval_cols["colour"],
        "pred_good": _serving_probs(good, x_eval).argmax(axis=1),
        "pred_weak": _serving_probs(weak, x_eval).argmax(axis=1),
    }
    ref["acc_good"] = float(np.mean(ref["pred_good"] == eval_y))
    ref["acc_weak"] = float(np.mean(ref["pred_weak"] == eval_y))
    assert ref["acc_good"] - ref["acc_weak"] >= 0.1, "test models must differ clearly"
    return ref


@pytest.fixture(scope="module")
def blessed_run(setup):
    """The good model alone through the KFP component function, sliced by colour."""
    from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Metrics, Model

    from edgeship.components.evaluate.component import evaluate

    out = setup["root"] / "blessed"
    artifacts = {
        "blessing": Artifact(uri=str(out / "blessing")),
        "evaluation": Artifact(uri=str(out / "evaluation")),
        "metrics": Metrics(uri=str(out / "metrics")),
        "classification_metrics": ClassificationMetrics(uri=str(out / "cm")),
    }
    result = evaluate.python_func(
        examples=Dataset(uri=str(setup["examples"])),
        model=Model(uri=str(setup["good"])),
        slice_feature="colour",
        min_accuracy=0.5,
        beam_pipeline_args=[],
        **artifacts,
    )
    return {"summary": json.loads(result), "out": out, **artifacts}


@pytest.fixture(scope="module")
def failed_run(setup):
    """Weak candidate vs good baseline through the executor: both thresholds fail.

    Small input batches make TFMA merge partial results, as it does on a distributed runner:
    this run takes the Beam path (the blessed run, small, takes the in-memory one).
    """
    from edgeship.components.evaluate import _tfma, executor
    from edgeship.components.evaluate.executor import run_evaluate

    out = setup["root"] / "failed"
    min_accuracy = round(setup["acc_weak"] + 0.05, 4)
    max_decrease = round((setup["acc_good"] - setup["acc_weak"]) / 2, 4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_tfma, "ROWS_PER_BATCH", 7)
        patch.setattr(executor, "LEAN_MAX_EXAMPLES", -1)
        summary = run_evaluate(
            str(setup["examples"]),
            str(setup["weak"]),
            str(out / "blessing"),
            str(out / "evaluation"),
            baseline_model_path=str(setup["good"]),
            slice_feature="site",
            min_accuracy=min_accuracy,
            max_accuracy_decrease=max_decrease,
        )
    return {"summary": summary, "out": out, "min": min_accuracy, "max_decrease": max_decrease}


def _numbers(text: str) -> list[float]:
    """The decimal numbers in a reason line, in order (reasons print 4 decimals)."""
    return [float(n) for n in re.findall(r"[-+]?\d+\.\d+", text)]


def _confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    matrix = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def test_metrics_equal_numpy(setup, blessed_run) -> None:
    summary = blessed_run["summary"]
    labels, predicted = setup["labels"], setup["pred_good"]
    matrix = _confusion(labels, predicted)
    assert summary["classes"] == CLASSES
    assert summary["examples"] == len(labels)
    assert summary["accuracy"] == pytest.approx(setup["acc_good"], abs=1e-6)
    assert "baseline_accuracy" not in summary
    assert summary["confusion_matrix"] == matrix.tolist()
    for i, name in enumerate(CLASSES):
        precision = matrix[i, i] / matrix[:, i].sum() if matrix[:, i].sum() else None
        recall = matrix[i, i] / matrix[i, :].sum()
        got = summary["per_class"][name]
        assert got["recall"] == pytest.approx(recall, abs=1e-9)
        if precision is None:
            assert got["precision"] is None
        else:
            assert got["precision"] == pytest.approx(precision, abs=1e-9)


def test_slices_equal_numpy(setup, blessed_run) -> None:
    report = read_json(blessed_run["out"] / "evaluation" / "metrics.json", "metrics")
    colours = setup["colour"]
    slices = report["slices"]["colour"]
    assert sorted(slices) == sorted(set(colours))
    for value, numbers in slices.items():
        mask = colours == value
        assert numbers["examples"] == int(mask.sum())
        good = np.mean(setup["pred_good"][mask] == setup["labels"][mask])
        assert numbers["accuracy"] == pytest.approx(good, abs=1e-6)


def test_blessed_when_thresholds_met_and_tfma_output_loads(setup, blessed_run) -> None:
    import tensorflow_model_analysis as tfma

    blessing = blessed_run["out"] / "blessing"
    assert is_blessed(blessing)
    assert sorted(p.name for p in blessing.iterdir()) == [OUTPUT_MARKER, "BLESSED"]
    summary = blessed_run["summary"]
    text = (blessing / "BLESSED").read_text().splitlines()
    assert text[0] == summary["verdict"] and text[1:len(summary["reasons"]) + 1] == \
        summary["reasons"]
    assert text[0].startswith(f"BLESSED: accuracy {100 * setup['acc_good']:.1f}% [")
    assert f"on {len(setup['labels'])} eval examples beats the majority class" in text[0]
    (line,) = [r for r in summary["reasons"] if ">= min_accuracy" in r]
    assert _numbers(line) == pytest.approx([setup["acc_good"], 0.5], abs=TOL)
    assert text[-2].startswith("measured: accuracy ") and "macro-F1" in text[-2]
    assert text[-1].startswith("recall per class: 'low' ")
    assert summary["blessed"] is True
    evaluation = str(blessed_run["out"] / "evaluation")
    assert tfma.load_validation_result(evaluation).validation_ok
    result = tfma.load_eval_result(evaluation)
    overall = dict(result.slicing_metrics)[()][""][""]
    assert overall["sparse_categorical_accuracy"]["doubleValue"] == pytest.approx(
        setup["acc_good"], abs=1e-6
    )
    leftovers = [p.name for p in blessed_run["out"].iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_kfp_metrics_and_confusion_matrix(setup, blessed_run) -> None:
    logged = blessed_run["metrics"].metadata
    summary = blessed_run["summary"]
    assert logged["accuracy"] == pytest.approx(setup["acc_good"], abs=1e-6)
    assert "baseline_accuracy" not in logged
    assert logged["examples"] == len(setup["labels"])
    assert logged["blessed"] == 1.0
    assert logged["recall_high"] == pytest.approx(summary["per_class"]["high"]["recall"])
    matrix = blessed_run["classification_metrics"].metadata["confusionMatrix"]
    assert [a["displayName"] for a in matrix["annotationSpecs"]] == CLASSES
    assert [row["row"] for row in matrix["rows"]] == summary["confusion_matrix"]
    assert blessed_run["blessing"].metadata["blessed"] is True
    # the evidence, as KFP Metrics and on the blessing artifact
    labels, predicted = setup["labels"], setup["pred_good"]
    recalls = [np.mean(predicted[labels == i] == i) for i in range(len(CLASSES))]
    assert logged["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert logged["majority_share"] == pytest.approx(max(np.mean(labels == i) for i in (0, 1)))
    assert logged["accuracy_lower_95"] < logged["accuracy"] <= logged["accuracy_upper_95"]
    assert logged["macro_f1"] == pytest.approx(summary["macro_f1"])
    assert logged["f1_low"] == pytest.approx(summary["per_class"]["low"]["f1"])
    blessing_meta = blessed_run["blessing"].metadata
    assert blessing_meta["verdict"] == summary["verdict"]
    assert blessing_meta["examples"] == len(labels)
    assert blessing_meta["accuracy_interval"] == summary["accuracy_interval"]


def test_not_blessed_names_each_failed_threshold(setup, failed_run) -> None:
    summary = failed_run["summary"]
    blessing = failed_run["out"] / "blessing"
    assert summary["blessed"] is False
    assert not is_blessed(blessing) and (blessing / "NOT_BLESSED").is_file()
    acc, base = setup["acc_weak"], setup["acc_good"]
    assert summary["accuracy"] == pytest.approx(acc, abs=1e-6)
    reasons = summary["reasons"]
    tfma_lines = [r for r in reasons if "min_accuracy" in r or "max_accuracy_decrease" in r]
    assert len(tfma_lines) == 2, reasons
    value = next(r for r in reasons if "is below min_accuracy" in r)
    minimum = failed_run["min"]
    assert _numbers(value) == pytest.approx([acc, minimum, minimum - acc], abs=TOL)
    change = next(r for r in reasons if "fell by" in r and "more than max_accuracy_decrease" in r)
    drop, allowed = base - acc, failed_run["max_decrease"]
    assert _numbers(change) == pytest.approx([drop, base, acc, allowed, drop - allowed], abs=TOL)
    text = (blessing / "NOT_BLESSED").read_text().splitlines()
    assert text[0] == summary["verdict"] and text[1:len(reasons) + 1] == reasons
    assert summary["verdict"].startswith("NOT BLESSED: ")
    assert summary["confusion_matrix"] == _confusion(setup["labels"], setup["pred_weak"]).tolist()


def test_slices_by_passthrough_feature(setup, failed_run) -> None:
    report = read_json(failed_run["out"] / "evaluation" / "metrics.json", "metrics")
    from edgeship.components._dataset import iter_examples

    sites = np.array(
        [
            e.features.feature["site"].bytes_list.value[0].decode()
            for e in iter_examples(setup["examples"], "eval")
        ]
    )
    slices = report["slices"]["site"]
    assert sorted(slices) == ["north", "south"]
    for value, numbers in slices.items():
        mask = sites == value
        expected = np.mean(setup["pred_weak"][mask] == setup["labels"][mask])
        assert numbers["examples"] == int(mask.sum())
        assert numbers["accuracy"] == pytest.approx(expected, abs=1e-6)


def test_blessed_when_within_change_threshold_and_slices_by_label(setup) -> None:
    """Good candidate vs weak baseline: the change threshold passes; slices by class name."""
    from edgeship.components.evaluate.executor import run_evaluate

    out = setup["root"] / "improved"
    summary = run_evaluate(
        str(setup["examples"]),
        str(setup["good"]),
        str(out / "blessing"),
        str(out / "evaluation"),
        baseline_model_path=str(setup["weak"]),
        slice_feature="label",
        max_accuracy_decrease=0.0,
    )
    assert summary["blessed"] is True and is_blessed(out / "blessing")
    assert summary["baseline_accuracy"] == pytest.approx(setup["acc_weak"], abs=1e-6)
    change = setup["acc_good"] - setup["acc_weak"]
    (line,) = [r for r in summary["reasons"] if "within max_accuracy_decrease" in r]
    assert _numbers(line) == pytest.approx([change, setup["acc_weak"], 0.0], abs=TOL)
    report = read_json(out / "evaluation" / "metrics.json", "metrics")
    labels = setup["labels"]
    for index, name in enumerate(CLASSES):
        mask = labels == index
        numbers = report["slices"]["label"][name]
        good = np.mean(setup["pred_good"][mask] == index)
        weak = np.mean(setup["pred_weak"][mask] == index)
        assert numbers["examples"] == int(mask.sum())
        assert numbers["accuracy"] == pytest.approx(good, abs=1e-6)
        assert numbers["accuracy_change"] == pytest.approx(good - weak, abs=1e-6)
        assert report["baseline"]["slices"]["label"][name]["accuracy"] == pytest.approx(
            weak, abs=1e-6
        )
        # slicing by label: a class's accuracy is its recall
        assert numbers["accuracy"] == pytest.approx(report["per_class"][name]["recall"])


def test_eval_config_gates_only_what_was_asked() -> None:
    from edgeship.components.evaluate import _tfma

    def thresholds(config):
        metrics = config.metrics_specs[0].metrics
        (accuracy,) = [m for m in metrics if m.class_name == "SparseCategoricalAccuracy"]
        return list(accuracy.per_slice_thresholds)

    assert thresholds(_tfma.eval_config(3, False, "", 0.0, None)) == []
    # a change threshold without a baseline would make TFMA refuse to run
    assert thresholds(_tfma.eval_config(3, False, "", 0.0, 0.05)) == []
    (gate,) = thresholds(_tfma.eval_config(3, True, "site", 0.8, 0.05))
    assert [s.feature_keys for s in gate.slicing_specs] == [[]]  # the overall slice only
    assert gate.threshold.value_threshold.lower_bound.value == pytest.approx(0.8)
    assert gate.threshold.change_threshold.absolute.value == pytest.approx(-0.05)
    config = _tfma.eval_config(3, True, "site", 0.8, 0.05)
    assert [s.is_baseline for s in config.model_specs] == [False, True]
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], ["site"]]
    assert list(config.metrics_specs[1].binarize.class_ids.values) == [0, 1, 2]
