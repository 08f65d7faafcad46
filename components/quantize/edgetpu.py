"""Edge TPU: a static check of the int8 model against Coral's documented requirements, and the
real ``edgetpu_compiler`` when it is installed.

The requirements (coral.ai/docs/edgetpu/models-intro/, "Model requirements" and "Supported
operations", Edge TPU compiler 16): tensors 8-bit (biases and shapes may be int32 constants),
sizes fixed at compile time, at most the 3 innermost dimensions larger than 1, a single
subgraph, and only the listed operations, some with limitations. The compiler maps one contiguous
run of operators from the start of the graph: from the first operator it cannot map, that operator
and everything after it runs on the CPU. The check reads the operators straight from the .tflite
flatbuffer (the schema that ai-edge-litert ships), so it needs neither TensorFlow nor the
compiler. It is an estimate; the compiler's own summary, when available, is the authority.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from edgeship.components.quantize.tflite_model import read_operators

log = logging.getLogger(__name__)

COMPILER = "edgetpu_compiler"
COMPILER_TIMEOUT_S = 600

# Operator -> its documented limitation ("" when none). TFLite builtin names.
SUPPORTED_OPS: dict[str, str] = {
    "ADD": "",
    "AVERAGE_POOL_2D": "no fused activation function",
    "CONCATENATION": "no fused activation function",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "default weights format only; one-dimensional output",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "unidirectional only",
    "MAXIMUM": "",
    "MAX_POOL_2D": "no fused activation function",
    "MEAN": "no reduction along the batch dimension",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "no packing along the batch dimension",
    "PAD": "no padding along the batch dimension",
    "PRELU": "",
    "QUANTIZE": "",
    "REDUCE_MAX": "no reduction along the batch dimension",
    "REDUCE_MIN": "no reduction along the batch dimension",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "large reshapes may stay on the CPU",
    "RESIZE_BILINEAR": "3-D input/output",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": "1-D input of at most 16,000 elements",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "no splitting along the batch dimension",
    "SQUARED_DIFFERENCE": "",
    "SQUEEZE": "",
    "STRIDED_SLICE": "all strides 1",
    "SUB": "",
    "SUM": "no reduction along the batch dimension",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}
SOFTMAX_MAX_ELEMENTS = 16000
NO_FUSED_ACTIVATION = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"}
EIGHT_BIT = {"INT8", "UINT8"}
CONSTANT_TYPES = EIGHT_BIT | {"INT32"}  # quantized biases and shape operands


def _non_unit(shape: list[int]) -> int:
    return sum(1 for d in shape if d != 1)


def operator_problems(op: dict[str, Any]) -> list[str]:
    """Why the Edge TPU could not run this operator ([] when it meets every requirement)."""
    name = op["op"]
    problems = []
    if name not in SUPPORTED_OPS:
        problems.append(f"{name} is not an Edge TPU operation")
    for t in op["inputs"] + op["outputs"]:
        allowed = CONSTANT_TYPES if t["constant"] else EIGHT_BIT
        if t["type"] not in allowed:
            problems.append(f"tensor '{t['name']}' is {t['type'].lower()}, not 8-bit")
        if any(d < 0 for d in t["shape_signature"]):
            problems.append(f"tensor '{t['name']}' has a dynamic shape {t['shape_signature']}")
        # the dimensionality rule is about activations; 4-D conv filters are fine
        if not t["constant"] and len(t["shape"]) > 3 and _non_unit(t["shape"][:-3]):
            problems.append(
                f"tensor '{t['name']}' shape {t['shape']} has a size > 1 outside the 3 "
                "innermost dimensions"
            )
    options = op["options"]
    if name in NO_FUSED_ACTIVATION and getattr(options, "fusedActivationFunction", 0):
        problems.append(f"{name} has a fused activation function")
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and options is not None:
        if options.dilationHFactor != options.dilationWFactor:
            problems.append(f"{name} dilation differs in x and y")
    if name == "FULLY_CONNECTED" and options is not None and options.weightsFormat != 0:
        problems.append("FULLY_CONNECTED weights are not in the default format")
    if name == "SOFTMAX" and op["inputs"]:
        shape = op["inputs"][0]["shape"]
        size = 1
        for d in shape:
            size *= d
        if _non_unit(shape) > 1 or size > SOFTMAX_MAX_ELEMENTS:
            problems.append(f"SOFTMAX input {shape} is not 1-D with <= {SOFTMAX_MAX_ELEMENTS}")
    return problems


def analyse(tflite_path: str | Path) -> dict[str, Any]:
    """Per operator: would it map to the Edge TPU, and if not, why; plus the mapped share."""
    model = read_operators(tflite_path)
    rows = []
    first_cpu: dict[str, Any] | None = None
    for op in model["operators"]:
        problems = operator_problems(op)
        if problems and first_cpu is None:
            first_cpu = op
        elif not problems and first_cpu is not None:
            problems = [
                f"follows operator #{first_cpu['index']} ({first_cpu['op']}), which stays on "
                "the CPU; the compiler maps only the first contiguous run"
            ]
        rows.append(
            {
                "index": op["index"],
                "op": op["op"],
                "version": op["version"],
                "maps": not problems,
                "reasons": problems,
            }
        )
    mapped = sum(1 for r in rows if r["maps"])
    notes = []
    if model["subgraphs"] > 1:
        notes.append(f"{model['subgraphs']} subgraphs; the Edge TPU runs only the first")
    return {
        "operators": rows,
        "mapped": mapped,
        "total": len(rows),
        "mapped_share": mapped / len(rows) if rows else 0.0,
        "notes": notes,
        "source": "coral.ai/docs/edgetpu/models-intro (requirements, compiler 16)",
    }


def compiler_version() -> str | None:
    """The compiler's version line, or None when it is not on PATH."""
    path = shutil.which(COMPILER)
    if path is None:
        return None
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:  # e.g. an x86-64 binary on arm64
        return f"{path} does not run: {err}"
    return (done.stdout or done.stderr).strip() or "unknown version"


def parse_compiler_log(text: str) -> dict[str, Any]:
    """The compiler's own mapping summary: operations on the Edge TPU / CPU and the op table."""
    summary: dict[str, Any] = {"operators": []}
    for key, pattern in (
        ("on_edgetpu", r"operations that will run on Edge TPU:\s*(\d+)"),
        ("on_cpu", r"operations that will run on CPU:\s*(\d+)"),
    ):
        match = re.search(pattern, text)
        if match:
            summary[key] = int(match.group(1))
    for line in text.splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$", line)
        if match and match.group(1) != "Operator":
            summary["operators"].append(
                {"op": match.group(1), "count": int(match.group(2)), "status": match.group(3)}
            )
    return summary


def compile_model(tflite_path: Path, out_dir: Path) -> dict[str, Any]:
    """Run ``edgetpu_compiler`` for real; returns whether it produced a file, and its summary.

    The compiler writes ``<stem>_edgetpu.tflite`` and ``<stem>_edgetpu.log`` into out_dir.
    """
    path = shutil.which(COMPILER)
    if path is None:
        return {"compiled": False, "error": f"{COMPILER} not found on PATH"}
    produced = out_dir / f"{tflite_path.stem}_edgetpu.tflite"
    try:
        done = subprocess.run(
            [path, "-s", "-o", str(out_dir), str(tflite_path)],
            capture_output=True,
            text=True,
            timeout=COMPILER_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as err:  # cannot execute, or timed out
        produced.unlink(missing_ok=True)
        log.warning("Edge TPU compilation failed: %s", err)
        return {"compiled": False, "operators": [], "error": f"{COMPILER} did not run: {err}"}
    result = parse_compiler_log(done.stdout)
    result["compiled"] = done.returncode == 0 and produced.is_file()
    if not result["compiled"]:
        produced.unlink(missing_ok=True)
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        result["error"] = f"{COMPILER} exited {done.returncode}: {tail[0]}"
        log.warning("Edge TPU compilation failed: %s", result["error"])
    (out_dir / f"{tflite_path.stem}_edgetpu.log").unlink(missing_ok=True)
    return result
