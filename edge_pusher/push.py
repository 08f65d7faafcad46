"""Push executor: publish every blessed hardware variant of a quantized model (no kfp import).

Inputs follow the quantize step's layout::

    QUANTIZED/model_int8.tflite           -> hardware "cpu"
    QUANTIZED/model_int8_edgetpu.tflite   -> hardware "edgetpu" (optional)
    QUANTIZED/quantization_report.json    metrics and the self-test quantize measured
    BLESSING/BLESSED | BLESSING/NOT_BLESSED   (TFX style), one for evaluate, one for quantize

Like TFX's Pusher, an unblessed model is *not an error*: nothing is published, the outcome says
"not pushed: <reason>", and the step exits 0 so the pipeline run is green but shipped nothing.
Anything else that goes wrong (unreadable model, version not newer, bucket unreachable) raises
an :class:`~edgeship.errors.EdgeshipError`.

Only the files quantize measured are signed: each file's sha256 must be the one in quantize's
report. The self-test devices run is computed here, with LiteRT, on the exact bytes being
signed, from the real-valued input quantize recorded, and must agree with the output quantize
measured for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgeship import litert
from edgeship.contract import (
    SCHEMA_VERSION,
    SelfTest,
    check_name,
    check_rollout,
    check_version,
    is_object,
    self_test_tolerance,
)
from edgeship.edge_pusher.buckets import open_bucket
from edgeship.edge_pusher.repository import Release, Repository
from edgeship.errors import InputError, ModelLoadError, OtaError
from edgeship.image import KEYS_DIR
from edgeship.params import StepParams, is_int
from edgeship.quantization_report import REPORT_JSON, read_report

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter

log = logging.getLogger(__name__)

EDGETPU_VARIANT = "int8_edgetpu"
VARIANT_HARDWARE = {"int8": "cpu", EDGETPU_VARIANT: "edgetpu"}
HARDWARE_VARIANT = {hardware: variant for variant, hardware in VARIANT_HARDWARE.items()}
#: An Edge TPU build is compiled from the int8 model and checked against what the int8 model
#: computes on the CPU: one more rounding step may separate them.
EDGETPU_TOLERANCE_FACTOR = 2.0


@dataclass(frozen=True)
class PushParams(StepParams):
    """Push's parameters (the component's, one for one); see the edge_pusher README."""

    bucket_url: str
    model_name: str
    keys_dir: str = KEYS_DIR
    version: int = 0
    channel: str = "stable"
    rollout_percent: int = 100
    pipeline_run: str = ""

    def check(self) -> None:
        if not _is_text(self.bucket_url):
            raise InputError("bucket_url: must name the OTA bucket (s3://... or file://...)")
        check_name("model name", self.model_name)
        check_name("channel", self.channel)
        check_rollout(self.rollout_percent)
        if not (is_int(self.version) and self.version == 0):
            check_version(self.version)


def _is_text(value: object) -> bool:
    """A non-empty string. Parameters arrive from KFP's ``locals()`` or a command line, so
    their annotations are checked at run time, not trusted."""
    return isinstance(value, str) and bool(value)


@dataclass
class PushOutcome:
    pushed: bool
    reason: str = ""
    targets: list[str] = field(default_factory=list)
    bucket: str = ""
    version: int | None = None
    timestamp_version: int | None = None
    rollout: int = 100

    def line(self) -> str:
        if not self.pushed:
            return f"not pushed: {self.reason}"
        stage = f" at {self.rollout}% rollout" if self.rollout < 100 else ""
        return f"pushed v{self.version}{stage} to {self.bucket}: {', '.join(self.targets)}"


def blessing_state(path: str | None, what: str) -> tuple[bool, str]:
    """(blessed, reason). Missing or ambiguous blessings count as not blessed."""
    if not path:
        return False, f"no {what} blessing given"
    if os.path.isfile(path):
        name = os.path.basename(path)
        if name in ("BLESSED", "NOT_BLESSED"):
            return name == "BLESSED", f"{what} blessing is {name}"
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        return False, f"{what} blessing {path} does not exist"
    blessed = os.path.exists(os.path.join(path, "BLESSED"))
    not_blessed = os.path.exists(os.path.join(path, "NOT_BLESSED"))
    if blessed and not not_blessed:
        return True, ""
    if not_blessed:
        return False, f"{what} did not bless the model ({path}/NOT_BLESSED)"
    return False, f"{what} blessing {path} holds neither BLESSED nor NOT_BLESSED"


def headline_metrics(report: Mapping[str, object], variant: str) -> dict[str, object]:
    """Numbers worth showing next to a build: the variant's scalar fields (accuracy, size,
    agreement, ...), one level of nested numbers (``latency_ms.median`` ->
    ``latency_ms_median``), and the float reference accuracy. An Edge TPU build shows the int8
    model's numbers it was compiled from."""
    variants = report.get("variants")
    found = (variants.get(variant) or variants.get("int8")) if is_object(variants) else None
    entry: dict[str, object] = found if is_object(found) else {}
    metrics: dict[str, object] = {}
    for key, value in entry.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[key] = value
        elif key == "latency_ms" and is_object(value):
            metrics.update({f"{key}_{k}": v for k, v in value.items()})
    if "float_accuracy" in report:
        metrics["float_accuracy"] = report["float_accuracy"]
    return metrics


def _default_input(interpreter: Interpreter) -> npt.NDArray[np.float32]:
    """A deterministic input spanning the model's input range, when no report gives one."""
    detail = interpreter.get_input_details()[0]
    low, high = litert.input_quantization(interpreter).real_range()
    rng = np.random.default_rng(0)
    return rng.uniform(low, high, size=[int(d) for d in detail["shape"]]).astype(np.float32)


def build_release_custom(model: bytes, hardware: str, report: Mapping[str, object] | None,
                         cpu_reference: bytes | None, pipeline_run: str) -> dict[str, object]:
    """Signed custom metadata for one build: the self-test, the model's input/output
    quantization, headline metrics and the pipeline run.

    ``model`` is the exact bytes being signed; ``report`` is quantize's (``read_report``) or
    None; ``cpu_reference`` is the int8 CPU model an Edge TPU build was compiled from (this
    machine cannot run the Edge TPU build itself). The self-test's tolerance comes from the
    model's own output scale, never from the report.
    """
    variant = HARDWARE_VARIANT.get(hardware, "int8")
    interpreter = litert.load(cpu_reference if cpu_reference is not None else model)
    q_out = litert.output_quantization(interpreter)
    atol, rtol = self_test_tolerance(q_out.step)
    measured = (report or {}).get("self_test")
    if is_object(measured) and measured:
        x = _reals(measured["input"], "input")
        expected = litert.run(interpreter, x)
        quantize_test = SelfTest(x, _reals(measured["expected_output"], "expected_output"),
                                 _tolerance(measured["atol"], "atol"),
                                 _tolerance(measured["rtol"], "rtol"))
        # This runtime must compute what quantize's did on the same file and input (the file's
        # identity is checked by hash before): another LiteRT would fail on devices too.
        why = quantize_test.differs(expected)
        if why:
            raise OtaError(f"LiteRT here computes other outputs than quantize measured ({why} "
                           "of quantize's self-test); run push with the LiteRT quantize used")
    else:
        x = _default_input(interpreter)
        expected = litert.run(interpreter, x)
    if cpu_reference is not None:
        atol *= EDGETPU_TOLERANCE_FACTOR
    return {
        "schema_version": SCHEMA_VERSION,
        "self_test": SelfTest(x, expected, atol, rtol).as_dict(),
        "input_quantization": litert.input_quantization(interpreter).as_dict(),
        "output_quantization": q_out.as_dict(),
        "metrics": headline_metrics(report or {}, variant),
        "pipeline_run": pipeline_run or "",
        "variant": variant,
    }


def _reals(values: object, what: str) -> npt.NDArray[np.float32]:
    """Real values the quantization report's self-test records (nested JSON lists)."""
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise OtaError(f"the quantization report's self-test {what} is not an array of "
                       "numbers") from None


def _tolerance(value: object, what: str) -> float:
    """A tolerance the quantization report's self-test records: a number (or its text)."""
    try:
        if isinstance(value, int | float | str):
            return float(value)
    except ValueError:
        pass
    raise OtaError(f"the quantization report's self-test {what} {value!r} is not a number")


def measured_sha256(report: Mapping[str, object], variant: str) -> str | None:
    """The sha256 quantize recorded for the file of ``variant``."""
    if variant == EDGETPU_VARIANT:
        holder = report.get("edgetpu")
    else:
        variants = report.get("variants")
        holder = variants.get(variant) if is_object(variants) else None
    sha256 = holder.get("sha256") if is_object(holder) else None
    return sha256 if isinstance(sha256, str) else None


def push(quantized_dir: str, evaluate_blessing: str | None, quantize_blessing: str | None,
         params: PushParams | None = None, *, output_dir: str | None = None,
         repository: Repository | None = None, **overrides: Any) -> PushOutcome:
    """Publish the blessed variants; write the outcome into ``output_dir`` if given.

    The parameters are :class:`PushParams` (or the same names as keywords); ``version`` 0
    publishes the next version after the newest on (model_name, channel). ``repository``
    replaces the one ``bucket_url`` and ``keys_dir`` would open (tests, custom buckets)."""
    p = PushParams.build(params, **overrides)
    outcome = _push(quantized_dir, evaluate_blessing, quantize_blessing, p, repository)
    if output_dir:
        write_outcome(output_dir, outcome)
    log.info("%s", outcome.line())
    return outcome


def _push(quantized_dir: str, evaluate_blessing: str | None, quantize_blessing: str | None,
          p: PushParams, repository: Repository | None) -> PushOutcome:
    for what, path in (("evaluate", evaluate_blessing), ("quantize", quantize_blessing)):
        blessed, reason = blessing_state(path, what)
        if not blessed:
            return PushOutcome(False, reason, bucket=p.bucket_url)
    if not os.path.isdir(quantized_dir):
        raise OtaError(f"quantized models directory {quantized_dir} does not exist")
    report = read_report(os.path.join(quantized_dir, REPORT_JSON))
    cpu_model = os.path.join(quantized_dir, "model_int8.tflite")
    if not os.path.isfile(cpu_model):
        raise OtaError(f"{cpu_model} is missing: the int8 model is what devices run")
    repo = repository or Repository(open_bucket(p.bucket_url), p.keys_dir)
    files = {variant: _measured_file(quantized_dir, variant, report)
             for variant in VARIANT_HARDWARE
             if os.path.isfile(os.path.join(quantized_dir, f"model_{variant}.tflite"))}
    releases: list[Release] = []
    for variant, data in files.items():
        hardware = VARIANT_HARDWARE[variant]
        reference = files["int8"] if hardware != "cpu" else None
        try:
            custom = build_release_custom(data, hardware, report, reference, p.pipeline_run)
        except ModelLoadError as e:
            raise OtaError(f"{os.path.join(quantized_dir, f'model_{variant}.tflite')}: {e}") \
                from None
        releases.append(Release(data, p.model_name, p.version, hardware, p.channel,
                                p.rollout_percent, custom))
    result = repo.publish(releases)
    return PushOutcome(True, "", result.paths, repo.bucket.url, releases[0].version or None,
                       result.timestamp_version, p.rollout_percent)


def _measured_file(quantized_dir: str, variant: str, report: Mapping[str, object]) -> bytes:
    """The variant's bytes, read once, and only if they are the file quantize measured: a file
    swapped or rebuilt after quantize blessed it is not what the blessing speaks for."""
    path = os.path.join(quantized_dir, f"model_{variant}.tflite")
    with open(path, "rb") as f:
        data = f.read()
    recorded = measured_sha256(report, variant)
    if recorded != hashlib.sha256(data).hexdigest():
        why = "has no sha256 for it" if recorded is None else "recorded another sha256"
        raise OtaError(f"{path}: not the model quantize measured (its report {why})")
    return data


def write_outcome(output_dir: str, outcome: PushOutcome) -> None:
    os.makedirs(output_dir, exist_ok=True)
    for stale in ("PUSHED", "NOT_PUSHED"):
        if os.path.exists(os.path.join(output_dir, stale)):
            os.unlink(os.path.join(output_dir, stale))
    marker = "PUSHED" if outcome.pushed else "NOT_PUSHED"
    with open(os.path.join(output_dir, marker), "w") as f:
        f.write(outcome.line() + "\n")
    with open(os.path.join(output_dir, "push_result.json"), "w") as f:
        json.dump(asdict(outcome) | {"message": outcome.line()}, f, indent=2)
