"""The run table's evaluate row: the blessing's one-line verdict, then balanced accuracy and
macro-F1; a NOT BLESSED row says why in one line."""

from __future__ import annotations

from pathlib import Path

from edgeship.pipelines.local import RunResult, StepResult
from edgeship.pipelines.report import format_run

VERDICT = ("NOT BLESSED: accuracy 76.1% [75.8%, 76.4%] on 65,400 eval examples does not beat "
           "the majority class 'on_time' (76.3%); train found: the model learnt nothing")


def _table(summary: dict) -> str:
    result = RunResult("tabular", Path("w"), None, Path("w/run.log"),
                       [StepResult("evaluate", "SUCCESS", 1.0, summary)])
    return format_run(result)


def test_a_not_blessed_row_is_the_verdict_in_one_line() -> None:
    reasons = ["accuracy 76.1% [...] does not beat ... (the Wilson interval's lower bound ...)",
               "train found: the model learnt nothing: eval accuracy 76.1% ...\nsecond line"]
    text = _table({"blessed": False, "verdict": VERDICT, "reasons": reasons,
                   "balanced_accuracy": 0.5, "macro_f1": 0.4321, "accuracy": 0.761,
                   "examples": 65400})
    (row,) = [line for line in text.splitlines() if line.startswith("evaluate")]
    assert row.endswith(f"{VERDICT}; balanced accuracy 50.0%, macro-F1 0.43")
    assert "second line" not in text  # the reasons stay in the blessing, not in the table


def test_a_summary_from_before_verdicts_keeps_its_old_row() -> None:
    """A cached evaluate step from an older edgeship has no verdict."""
    text = _table({"blessed": True, "accuracy": 1.0, "examples": 91, "reasons": []})
    assert "eval accuracy 100.0% on 91 examples; BLESSED" in text
