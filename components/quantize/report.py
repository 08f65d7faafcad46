"""How people see the quantization report: a plain-text table (the CLI) and Markdown (the KFP UI).

The report's file name, ``schema_version`` and reader are the quantize -> push contract and live
in the shared layer (``edgeship.quantization_report``), which the publisher imports without
importing this step. Standard library only.
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("variant", "accuracy", "delta pp", "agreement", "size KiB", "median ms", "p90 ms")


def _rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = [("float SavedModel", f"{report['float_accuracy']:.4f}", "", "", "", "", "")]
    for name, v in report["variants"].items():
        rows.append(
            (
                name,
                f"{v['accuracy']:.4f}",
                f"{v['accuracy_delta_pp']:+.2f}",
                f"{v['agreement']:.4f}",
                f"{v['size_bytes'] / 1024:.1f}",
                f"{v['latency_ms']['median']:.3f}",
                f"{v['latency_ms']['p90']:.3f}",
            )
        )
    return rows


def format_table(report: dict[str, Any]) -> str:
    """The variant table as aligned plain text, followed by the blessing verdict."""
    rows = [COLUMNS, *_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    verdict = "BLESSED" if report["blessed"] else "NOT_BLESSED"
    lines.append(
        f"{verdict} on {_examples(report)}: " + "; ".join(report["reasons"])
    )
    lines.append(f"Edge TPU: {edgetpu_line(report['edgetpu'])}")
    return "\n".join(lines)


def edgetpu_line(edgetpu: dict[str, Any]) -> str:
    """One line on Edge TPU readiness: the static estimate and what the compiler did."""
    analysis = edgetpu.get("analysis")
    parts = []
    if analysis:
        parts.append(
            f"{analysis['mapped']}/{analysis['total']} operators would map "
            f"({analysis['mapped_share']:.0%}, static check)"
        )
    if edgetpu["compiled"]:
        parts.append(f"compiled with {edgetpu['compiler']}")
    else:
        parts.append(f"not compiled: {edgetpu.get('compile_error') or edgetpu['compiler']}")
    return "; ".join(parts)


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (shown by the KFP UI)."""
    verdict = "BLESSED" if report["blessed"] else "NOT_BLESSED"
    out = [
        "# Quantization report",
        "",
        f"**{verdict}** — " + "; ".join(report["reasons"]),
        "",
        f"Measured with the LiteRT interpreter on {_examples(report)} "
        f"({report['num_threads']} thread(s), {report['latency_runs']} timed single-example "
        "invokes per variant); deltas against the float SavedModel in the same run.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    out += ["| " + " | ".join(r) + " |" for r in _rows(report)]
    out += ["", "| variant | file | input | output | tensors |", "|---|---|---|---|---|"]
    for name, v in report["variants"].items():
        q_in, q_out = v["input_quantization"], v["output_quantization"]
        dtypes = ", ".join(f"{n} {k}" for k, n in sorted(v["tensor_dtypes"].items()))
        out.append(
            f"| {name} | `{v['file']}` | {_q(q_in)} {v['input_shape']} | {_q(q_out)} | {dtypes} |"
        )
    coarse = report["variants"].get("int8", {}).get("coarse_inputs")
    if coarse:
        shown = ", ".join(f"{c['feature']} ({c['steps']:.1f} steps)" for c in coarse[:10])
        out += ["", f"int8 input features with too few quantization steps: {shown}."]
    out += _remedies_markdown(report.get("int8_remedies"))
    edgetpu = report["edgetpu"]
    out += ["", "## Edge TPU", "", edgetpu_line(edgetpu), ""]
    analysis = edgetpu.get("analysis")
    if analysis:
        out += ["| # | operator | maps | why not |", "|---|---|---|---|"]
        for row in analysis["operators"]:
            why = "; ".join(row["reasons"]).replace("|", "\\|")
            out.append(
                f"| {row['index']} | {row['op']} | {'yes' if row['maps'] else 'no'} | {why} |"
            )
        out += [f"- {note}" for note in analysis["notes"]]
        out += ["", f"Requirements from {analysis['source']}."]
    compiler_summary = edgetpu.get("compiler_summary")
    if compiler_summary:
        out += ["", "Compiler summary:", "", "| operator | count | status |", "|---|---|---|"]
        out += [
            f"| {r['op']} | {r['count']} | {r['status']} |" for r in compiler_summary["operators"]
        ]
    return "\n".join(out) + "\n"


def _remedies_markdown(remedies: dict[str, Any] | None) -> list[str]:
    """The int8 diagnosis and every remedy tried, when int8 missed its budget."""
    if not remedies:
        return []
    out = ["", "## int8 diagnosis", "", remedies["diagnosis"]["remedy"] + ".", "",
           "| layer | int8 range | error (RMS) | error in steps | tensor |",
           "|---|---|---|---|---|"]
    out += [f"| {r['layer']} | {r['range']:.4g} | {r['rmse']:.4g} | {r['rmse_per_step']:.2f} "
            f"| `{r['tensor']}` |" for r in remedies["diagnosis"]["layers"]]
    plain = remedies.get("plain")
    if plain:
        out += ["", f"Plain calibration, on the eval examples: int8 accuracy "
                f"{plain['accuracy']:.4f} ({plain['accuracy_delta_pp']:+.2f} pp)."]
    if not remedies["held_back_examples"]:
        return out + ["", "Range clipping: not tried, every train example calibrates.",
                      f"Quantization-aware training: {remedies['quantization_aware_training']}."]
    out += ["", f"Range clipping, compared on {remedies['held_back_examples']} held-back train "
            "examples:", "", "| calibration | held-back accuracy |", "|---|---|",
            f"| plain | {remedies['plain_held_back_accuracy']:.4f} |"]
    for t in remedies["range_clipping"]:
        result = f"{t['held_back_accuracy']:.4f}" if "held_back_accuracy" in t else t["error"]
        out.append(f"| without the {100 * t['share']:.0f}% most extreme | {result} |")
    applied = remedies["applied"]
    out += ["", "Applied: " + ("none (no candidate beat plain calibration)." if applied is None
                               else f"without the {100 * applied:.0f}% most extreme examples."),
            f"Quantization-aware training: {remedies['quantization_aware_training']}."]
    return out


def _examples(report: dict[str, Any]) -> str:
    """"500 eval examples", or "20000 of 200000 eval examples (a seeded sample)"."""
    used = report["eval_examples"]
    total = report.get("eval_split_examples", used)
    if used == total:
        return f"{used} eval examples"
    return f"{used} of {total} eval examples (a seeded sample)"


def _q(q: dict[str, Any]) -> str:
    if "scale" not in q:
        return q["dtype"]
    if isinstance(q["scale"], list):
        return f"{q['dtype']} ({len(q['scale'])} scales along axis {q['axis']})"
    return f"{q['dtype']} (scale {q['scale']:.6g}, zero point {q['zero_point']})"
