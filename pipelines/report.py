"""What ``edgeship run`` prints: per step its wall time and key result, then where things are."""

from __future__ import annotations

from edgeship.components.summaries import step_line
from edgeship.pipelines.local import RunResult


def format_run(result: RunResult) -> str:
    lines = [f"{'step':<10} {'status':<8} {'seconds':>8}  result"]
    total = 0.0
    for step in result.steps:
        total += step.seconds
        detail = step_line(step.name, step.summary)
        status = "CACHED" if step.cached else step.status
        lines.append(f"{step.name:<10} {status:<8} {step.seconds:>8.1f}  {detail}")
    lines.append(f"{'total':<10} {'':<8} {total:>8.1f}")
    for step in result.steps:  # what a step wants the person to know, after the table
        if step.summary.get("warning"):
            lines += ["", f"warning from {step.name}: {step.summary['warning']}"]
    quantize = next((s for s in result.steps if s.name == "quantize"), None)
    if quantize and quantize.summary.get("table"):
        lines += ["", "quantized variants:", quantize.summary["table"]]
    lines += ["", f"work folder: {result.workdir}", f"log:         {result.log_path}"]
    if result.run_dir:
        lines.append(f"artifacts:   {result.run_dir}")
    return "\n".join(lines)
