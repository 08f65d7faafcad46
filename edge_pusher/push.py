"""Push executor: publish every blessed hardware variant of a quantized model (no kfp import).

Inputs follow the quantize step's layout::

    QUANTIZED/model_int8.tflite           -> hardware "cpu"
    QUANTIZED/model_int8_edgetpu.tflite   -> hardware "edgetpu" (optional)
    QUANTIZED/quantization_report.json    (optional but expected; read defensively)
    BLESSING/BLESSED | BLESSING/NOT_BLESSED   (TFX style), one for evaluate, one for quantize

Like TFX's Pusher, an unblessed model is *not an error*: nothing is published, the outcome says
"not pushed: <reason>", and the step exits 0 so the pipeline run is green but shipped nothing.
Anything else that goes wrong (unreadable model, version not newer, bucket unreachable) raises
:class:`~edge_pusher.errors.OtaError`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from edge_pusher import selftest
from edge_pusher.buckets import open_bucket
from edge_pusher.errors import OtaError
from edge_pusher.repository import Release, Repository

log = logging.getLogger(__name__)

VARIANT_HARDWARE = {"int8": "cpu", "int8_edgetpu": "edgetpu"}
REPORT_NAME = "quantization_report.json"


@dataclass
class PushOutcome:
    pushed: bool
    reason: str = ""
    targets: list[str] = field(default_factory=list)
    bucket: str = ""
    version: int | None = None
    timestamp_version: int | None = None

    def line(self) -> str:
        if not self.pushed:
            return f"not pushed: {self.reason}"
        return f"pushed v{self.version} to {self.bucket}: {', '.join(self.targets)}"


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


def read_report(quantized_dir: str) -> dict:
    return read_report_file(os.path.join(quantized_dir, REPORT_NAME))


def read_report_file(path: str) -> dict:
    if not os.path.exists(path):
        log.warning("no %s; publishing without headline metrics", path)
        return {}
    try:
        with open(path) as f:
            report = json.load(f)
    except ValueError as e:
        raise OtaError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(report, dict):
        raise OtaError(f"{path} must hold a JSON object")
    return report


_NOT_METRICS = ("input_quantization", "output_quantization", "tensor_dtypes", "input_shape",
                "file")


def headline_metrics(report: dict, variant: str) -> dict:
    """Numbers worth showing next to a build: the variant's scalar fields (accuracy, size,
    agreement, ...), one level of nested numbers (``latency_ms.median`` ->
    ``latency_ms_median``), and the float reference accuracy."""
    variants = report.get("variants") if isinstance(report.get("variants"), dict) else {}
    entry = variants.get(variant) if isinstance(variants.get(variant), dict) else {}
    if not entry and variant == "int8_edgetpu":
        entry = variants.get("int8") if isinstance(variants.get("int8"), dict) else {}
    metrics = {}
    for key, value in entry.items():
        if key in _NOT_METRICS:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[key] = value
        elif isinstance(value, dict):
            metrics.update({f"{key}_{k}": v for k, v in value.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)})
    ref = variants.get("float32") if isinstance(variants.get("float32"), dict) else {}
    for src in (report.get("float_accuracy"), ref.get("accuracy")):
        if isinstance(src, int | float) and "float_accuracy" not in metrics:
            metrics["float_accuracy"] = src
    return metrics


def real_input(values, quant: dict | None) -> np.ndarray:
    """The self-test input as real numbers.

    The quantize step records the input in the model's own dtype (int8 values for an int8
    model); older or hand-written reports give real values. Integral values inside the dtype's
    range on an integer-input model are taken as quantized and dequantized here, so devices can
    re-quantize them with the model's own parameters and land on exactly the same integers."""
    x = np.asarray(values, dtype=np.float64)
    if quant and quant.get("scale") and np.dtype(quant.get("dtype", "float32")).kind in "iu":
        info = np.iinfo(np.dtype(quant["dtype"]))
        if np.all(x == np.round(x)) and x.min() >= info.min and x.max() <= info.max:
            x = (x - int(quant["zero_point"])) * float(quant["scale"])
    return x.astype(np.float32)


def report_self_test(report: dict, variant: str) -> dict | None:
    """Find {'input', 'expected_output'?} for ``variant`` in the report's accepted shapes:
    keyed by variant name, a single entry naming its variant, or a single bare entry."""
    st = report.get("self_test")
    if not isinstance(st, dict):
        return None
    for key in (variant, "int8" if variant == "int8_edgetpu" else None):
        if key and isinstance(st.get(key), dict) and "input" in st[key]:
            return st[key]
    if "input" in st and st.get("variant", variant) in (variant, "int8"):
        return st
    return None


def _default_input(model_path: str) -> np.ndarray:
    """A deterministic input covering the model's input range, when the report gives none."""
    it = selftest.load_interpreter(model_path)
    inp = it.get_input_details()[0]
    q = selftest.quantization_of(inp)
    lo, hi = (-1.0, 1.0)
    if q:
        info = np.iinfo(q["dtype"])
        lo, hi = sorted(((info.min - q["zero_point"]) * q["scale"],
                         (info.max - q["zero_point"]) * q["scale"]))
    rng = np.random.default_rng(0)
    return rng.uniform(lo, hi, size=[int(d) for d in inp["shape"]]).astype(np.float32)


def build_release_custom(model_path: str, hardware: str, report: dict, variant: str,
                         cpu_reference: str | None, pipeline_run: str) -> dict:
    """Custom metadata for one build: quantization, metrics, self-test, pipeline run."""
    st_src = report_self_test(report, variant) or {}
    runnable = cpu_reference or model_path  # an Edge TPU build cannot run on this CPU
    quant = selftest.io_quantization(runnable)
    x = st_src.get("input")
    x = real_input(x, quant["input_quantization"]) if x is not None else _default_input(runnable)
    if hardware == "cpu":
        # Expected output computed here with LiteRT on the exact bytes being shipped: the device
        # must reproduce what the pipeline computed, and a model that cannot run never ships.
        test = selftest.make_self_test(model_path, x)
    else:
        # The Edge TPU build is compiled from the int8 model: the device must match what the
        # int8 model computes on this input, give or take one more rounding step.
        test = selftest.make_self_test(runnable, x)
        test["atol"] = 2 * test["atol"]
    entry = (report.get("variants") or {}).get(variant) or {}
    for key in ("input_quantization", "output_quantization"):
        if quant.get(key) is None and isinstance(entry.get(key), dict):
            quant[key] = entry[key]
    return {"self_test": test, **quant, "metrics": headline_metrics(report, variant),
            "pipeline_run": pipeline_run or "", "variant": variant}


def push(quantized_dir: str, evaluate_blessing: str | None, quantize_blessing: str | None,
         bucket_url: str, keys_dir: str, name: str, version: int | None = None,
         channel: str = "stable", rollout: int = 100, pipeline_run: str = "",
         output_dir: str | None = None, repository: Repository | None = None) -> PushOutcome:
    """Publish the blessed variants; write the outcome into ``output_dir`` if given.

    ``version`` None (or 0) publishes the next version after the newest on (name, channel)."""
    outcome = _push(quantized_dir, evaluate_blessing, quantize_blessing, bucket_url, keys_dir,
                    name, version, channel, rollout, pipeline_run, repository)
    if output_dir:
        write_outcome(output_dir, outcome)
    log.info("%s", outcome.line())
    return outcome


def _push(quantized_dir, evaluate_blessing, quantize_blessing, bucket_url, keys_dir, name,
          version, channel, rollout, pipeline_run, repository) -> PushOutcome:
    for what, path in (("evaluate", evaluate_blessing), ("quantize", quantize_blessing)):
        blessed, reason = blessing_state(path, what)
        if not blessed:
            return PushOutcome(False, reason, bucket=bucket_url)
    if not os.path.isdir(quantized_dir):
        raise OtaError(f"quantized models directory {quantized_dir} does not exist")
    report = read_report(quantized_dir)
    cpu_model = os.path.join(quantized_dir, "model_int8.tflite")
    if not os.path.isfile(cpu_model):
        raise OtaError(f"{cpu_model} is missing: the int8 model is what devices run")
    repo = repository or Repository(open_bucket(bucket_url), keys_dir)
    releases = []
    for variant, hardware in VARIANT_HARDWARE.items():
        path = os.path.join(quantized_dir, f"model_{variant}.tflite")
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        try:
            custom = build_release_custom(path, hardware, report, variant,
                                          cpu_model if hardware != "cpu" else None, pipeline_run)
        except selftest.ModelLoadError as e:
            raise OtaError(f"{path}: {e}") from None
        releases.append(Release(data, name, version or 0, hardware, channel, rollout, custom))
    result = repo.publish(releases)
    return PushOutcome(True, "", result.paths, repo.bucket.url, releases[0].version or None,
                       result.timestamp_version)


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
