"""Each step's key result in one line, from the summary its executor returns: the run table's
``result`` column, whichever orchestrator ran the step (``edgeship run`` under kfp.local or
TFX's LocalDagRunner)."""

from __future__ import annotations

from typing import Any


def _pct(value: Any) -> str:
    return f"{100 * float(value):.1f}%" if isinstance(value, int | float) else "?"


def _ingest(s: dict[str, Any]) -> str:
    rows = s.get("rows", {})
    order = sorted(rows, key=lambda split: (split != "train", split))
    text = ", ".join(f"{split} {rows[split]}" for split in order)
    classes = len(s.get("classes", []))
    shape = f"; {s['sensor_shape']}" if s.get("sensor_shape") else ""  # what sensor data chose
    return f"rows {text}; {s.get('bad_rows', 0)} bad rows dropped; {classes} classes{shape}"


def _validate(s: dict[str, Any]) -> str:
    return f"{s.get('num_anomalies', 0)} anomalies in {s.get('features', '?')} features"


def _train(s: dict[str, Any]) -> str:
    note = f" ({s['schedule']})" if s.get("schedule") else ""
    return (
        f"train accuracy {_pct(s.get('train_accuracy'))}, eval accuracy "
        f"{_pct(s.get('eval_accuracy'))}, {s.get('parameters', '?')} parameters, "
        f"{s.get('epochs', '?')} epochs{note}"
    )


def _evaluate(s: dict[str, Any]) -> str:
    """The blessing's one-line verdict (eval examples, accuracy with its 95 % interval, the
    majority share), then balanced accuracy and macro-F1; a summary from before verdicts
    existed (a cached step) keeps its old line."""
    if not s.get("verdict"):
        verdict = "BLESSED" if s.get("blessed") else \
            "NOT BLESSED: " + "; ".join(s.get("reasons", []))
        return f"eval accuracy {_pct(s.get('accuracy'))} on {s.get('examples', '?')} examples; " \
            f"{verdict}"
    macro_f1 = s.get("macro_f1")
    return (f"{s['verdict']}; balanced accuracy {_pct(s.get('balanced_accuracy'))}, macro-F1 "
            f"{f'{macro_f1:.2f}' if isinstance(macro_f1, int | float) else '?'}")


def _quantize(s: dict[str, Any]) -> str:
    verdict = "BLESSED" if s.get("blessed") else "NOT BLESSED: " + "; ".join(s.get("reasons", []))
    return f"float accuracy {_pct(s.get('float_accuracy'))}; int8 {verdict}"


def _push(s: dict[str, Any]) -> str:
    return str(s.get("message", "?"))


FORMATTERS = {
    "ingest": _ingest,
    "validate": _validate,
    "train": _train,
    "evaluate": _evaluate,
    "quantize": _quantize,
    "push": _push,
}


def step_line(step: str, summary: dict[str, Any] | None) -> str:
    """``step``'s result in one line ("" for a step without a summary or a formatter)."""
    describe = FORMATTERS.get(step)
    return describe(summary) if describe and summary else ""
