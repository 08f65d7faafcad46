"""Train's "the model learnt nothing" finding reaches the blessing: a real train on a label
independent of its features, then evaluate with its defaults (no threshold set)."""

from __future__ import annotations

import json

import numpy as np

from edgeship.components.artifacts import MODEL_META, is_blessed
from edgeship.components.evaluate.executor import run_evaluate
from edgeship.components.train.executor import run_train
from tests.helpers import builders


def test_a_label_independent_of_the_features_ends_not_blessed_saying_why(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rows = [{"x": float(rng.normal()), "label": int(rng.random() < 0.7)} for _ in range(400)]
    features = [{"name": "x", "dtype": "float", "shape": [1]}]
    examples = builders.write_examples(tmp_path / "ex", "tabular", features, ["rare", "common"],
                                       {"train": rows[:240], "eval": rows[240:]})
    trained = run_train(str(examples), str(tmp_path / "model"), min_steps=50, epochs=3)
    assert trained["warning"].startswith("the model learnt nothing")
    assert json.loads((tmp_path / "model" / MODEL_META).read_text())["warning"] == \
        trained["warning"]

    summary = run_evaluate(str(examples), str(tmp_path / "model"), str(tmp_path / "blessing"),
                           str(tmp_path / "evaluation"))
    assert summary["blessed"] is False and not is_blessed(tmp_path / "blessing")
    assert summary["examples"] == 160
    # the evidence refuses; train's finding is stated beside it
    assert summary["reasons"][0].endswith(
        f"is not above {100 * summary['majority_share']:.2f}%)")
    assert "does not beat the majority class 'common'" in summary["reasons"][0]
    assert f"train found: {trained['warning']}" in summary["reasons"]
    verdict = summary["verdict"]
    assert "\n" not in verdict and verdict.startswith("NOT BLESSED: accuracy ")
    assert verdict.endswith("; train found: the model learnt nothing")
    text = (tmp_path / "blessing" / "NOT_BLESSED").read_text()
    assert text.startswith(verdict + "\n") and trained["warning"] in text
