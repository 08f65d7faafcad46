"""The quantization report: the quantize -> push contract, its file name, version and reader.

Quantize measures every variant it makes and writes ``quantization_report.json`` beside the
models; push reads it to sign only the files quantize measured (their ``sha256``), with the
numbers quantize measured, and to check its own LiteRT against the self-test quantize recorded.
What the device runs is derived from it (the signed self-test), so the report is part of the
contract quantize, the publisher and the device share, and lives here with the rest of it
rather than in the quantize step (the publisher imports no step). How people see a report (a
table, Markdown) stays with quantize (``edgeship.components.quantize.report``).

The fields push reads (quantize writes more; readers ignore what they do not use)::

    schema_version   REPORT_SCHEMA_VERSION, else the report is refused
    variants         {name: {"file", "sha256", "accuracy", "size_bytes", "latency_ms": {...},
                      "input_quantization", "output_quantization", ...}}
    float_accuracy   the float SavedModel's accuracy on the same examples
    edgetpu          {"compiled", "sha256" (of model_int8_edgetpu.tflite), ...}
    self_test        {"variant", "input", "expected_output", "atol", "rtol"} (real values) or null

A reader refuses a ``schema_version`` it does not know, so a push never signs numbers it
misreads. Standard library and ``edgeship.errors`` only: whatever a device has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeGuard, cast

from edgeship.errors import InputError

__all__ = ["REPORT_JSON", "REPORT_SCHEMA_VERSION", "SELF_TEST_FIELDS", "read_report"]

#: The report's file name, in quantize's output folder beside the models.
REPORT_JSON = "quantization_report.json"
#: 1: the first versioned layout (the self-test in real values, for the published variant only).
#: Reports from before it carry no schema_version and are refused: quantize again.
REPORT_SCHEMA_VERSION = 1
#: What a recorded self-test holds: the variant it was measured on, a real-valued input, the
#: real output LiteRT gave for it, and the tolerance to compare with.
SELF_TEST_FIELDS = frozenset({"variant", "input", "expected_output", "atol", "rtol"})


def _is_object(value: object) -> TypeGuard[dict[str, object]]:
    """``value`` is a JSON object (whose keys are always strings)."""
    return isinstance(value, dict)


def read_report(path: str | Path) -> dict[str, Any]:
    """A quantization report, checked to be one this edgeship can read; InputError otherwise."""
    path = Path(path)
    try:
        report: object = json.loads(path.read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read the quantization report ({err.strerror})") from None
    except ValueError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not _is_object(report):
        raise InputError(f"{path}: must hold a JSON object")
    version = report.get("schema_version")
    if version != REPORT_SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {version!r}, this edgeship reads {REPORT_SCHEMA_VERSION}; "
            "quantize the model again with this version"
        )
    if not _is_object(report.get("variants")):
        raise InputError(f"{path}: no 'variants' object")
    self_test = report.get("self_test")
    if self_test is not None and not (_is_object(self_test) and SELF_TEST_FIELDS <= set(self_test)):
        raise InputError(f"{path}: 'self_test' must hold variant, input, expected_output, "
                         "atol and rtol")
    # Checked above as far as a reader relies on it; the numbers are read where they are used.
    return cast(dict[str, Any], report)
