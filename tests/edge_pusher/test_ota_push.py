"""The push executor (no kfp) and its KFP component."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_pusher import push, selftest
from edge_pusher.errors import OtaError

ROOT = Path(__file__).resolve().parents[2]


def _blessing(path: Path, blessed: bool) -> str:
    path.mkdir(parents=True)
    (path / ("BLESSED" if blessed else "NOT_BLESSED")).write_text("")
    return str(path)


@pytest.fixture
def quantized(tmp_path, tiny_models) -> Path:
    """The quantize step's layout, with a report in its exact shape (raw int8 self-test)."""
    out = tmp_path / "quantized"
    out.mkdir()
    for name in ("model_int8.tflite", "model_float32.tflite"):
        shutil.copyfile(tiny_models / name, out / name)
    it = selftest.load_interpreter(str(out / "model_int8.tflite"))
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    scale, zp = inp["quantization"]
    q = np.clip(np.round(x / scale + zp), -128, 127).astype(np.int8)
    it.set_tensor(inp["index"], q)
    it.invoke()
    raw = it.get_tensor(outp["index"])
    report = {
        "float_accuracy": 0.93,
        "variants": {
            "int8": {"accuracy": 0.92, "size_bytes": 1608, "agreement": 0.99,
                     "latency_ms": {"median": 0.01, "p90": 0.02},
                     "input_quantization": {"dtype": "int8", "scale": float(scale),
                                            "zero_point": int(zp)},
                     "output_quantization": {"dtype": "int8", "scale": 0.00390625,
                                             "zero_point": -128}},
            "float32": {"accuracy": 0.93, "size_bytes": 1824},
        },
        "self_test": {"int8": {"input": q.tolist(), "expected_output": raw.tolist(), "atol": 1}},
    }
    (out / "quantization_report.json").write_text(json.dumps(report))
    return out


def test_blessed_model_is_published_with_report_metadata(quantized, tmp_path, bucket,
                                                         keys_dir, repo, make_agent):
    outcome = push.push(str(quantized), _blessing(tmp_path / "eb", True),
                        _blessing(tmp_path / "qb", True), bucket.url, str(keys_dir),
                        name="sensor", pipeline_run="run-42", output_dir=str(tmp_path / "out"))
    assert outcome.pushed and outcome.version == 1
    assert outcome.targets == ["models/sensor/stable/1/cpu/model.tflite"]
    assert (tmp_path / "out" / "PUSHED").read_text().startswith("pushed v1")
    custom = repo.target(outcome.targets[0]).custom
    assert custom["pipeline_run"] == "run-42" and custom["variant"] == "int8"
    assert custom["metrics"]["accuracy"] == "0.92"  # canonical JSON: floats as strings
    assert custom["metrics"]["latency_ms_median"] == "0.01"
    assert custom["metrics"]["float_accuracy"] == "0.93"
    # the raw int8 self-test input was understood: it re-quantizes to the same integers
    x = selftest.decode_array(custom["self_test"]["input"])
    scale = float(custom["input_quantization"]["scale"])
    assert np.array_equal(np.round(x / scale).ravel(),
                          np.clip(np.round(np.linspace(-1, 1, 8) / scale), -128, 127))
    agent = make_agent()
    assert agent.poll_once().version == 1  # and a device passes it
    again = push.push(str(quantized), str(tmp_path / "eb"), str(tmp_path / "qb"), bucket.url,
                      str(keys_dir), name="sensor")
    assert again.version == 2  # version 0/None = next


@pytest.mark.parametrize("which", ["evaluate", "quantize"])
def test_not_blessed_is_not_pushed_and_exits_cleanly(quantized, tmp_path, bucket, keys_dir,
                                                     which):
    eb = _blessing(tmp_path / "eb", which != "evaluate")
    qb = _blessing(tmp_path / "qb", which != "quantize")
    outcome = push.push(str(quantized), eb, qb, bucket.url, str(keys_dir), name="sensor",
                        output_dir=str(tmp_path / "out"))
    assert not outcome.pushed
    text = (tmp_path / "out" / "NOT_PUSHED").read_text()
    assert text.startswith(f"not pushed: {which} did not bless")
    assert json.loads((tmp_path / "out" / "push_result.json").read_text())["pushed"] is False
    assert bucket.list() == []


def test_missing_blessing_is_not_blessed(quantized, tmp_path, bucket, keys_dir):
    outcome = push.push(str(quantized), str(tmp_path / "nope"), _blessing(tmp_path / "qb", True),
                        bucket.url, str(keys_dir), name="sensor")
    assert not outcome.pushed and "does not exist" in outcome.reason


def test_edgetpu_variant_is_published_as_edgetpu(quantized, tmp_path, bucket, keys_dir, repo):
    # stand-in bytes: this machine has no Edge TPU compiler; publishing must not need to run it
    shutil.copyfile(quantized / "model_int8.tflite", quantized / "model_int8_edgetpu.tflite")
    outcome = push.push(str(quantized), _blessing(tmp_path / "eb", True),
                        _blessing(tmp_path / "qb", True), bucket.url, str(keys_dir),
                        name="sensor", version=3)
    assert sorted(outcome.targets) == ["models/sensor/stable/3/cpu/model.tflite",
                                       "models/sensor/stable/3/edgetpu/model.tflite"]
    tpu = repo.target("models/sensor/stable/3/edgetpu/model.tflite").custom
    cpu = repo.target("models/sensor/stable/3/cpu/model.tflite").custom
    assert tpu["hardware"] == "edgetpu" and tpu["variant"] == "int8_edgetpu"
    assert float(tpu["self_test"]["atol"]) == 2 * float(cpu["self_test"]["atol"])


def test_bad_inputs_are_one_line_errors(tmp_path, bucket, keys_dir, quantized):
    eb, qb = _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True)
    (quantized / "quantization_report.json").write_text("{broken")
    with pytest.raises(OtaError, match="quantization_report.json is not valid JSON"):
        push.push(str(quantized), eb, qb, bucket.url, str(keys_dir), name="sensor")
    (quantized / "quantization_report.json").unlink()
    (quantized / "model_int8.tflite").unlink()
    with pytest.raises(OtaError, match="model_int8.tflite is missing"):
        push.push(str(quantized), eb, qb, bucket.url, str(keys_dir), name="sensor")


def test_report_self_test_shapes_are_read_defensively():
    entry = {"input": [[1.0]], "expected_output": [[2.0]]}
    assert push.report_self_test({"self_test": {"int8": entry}}, "int8") == entry
    assert push.report_self_test({"self_test": entry}, "int8") == entry
    assert push.report_self_test({"self_test": {"int8": entry}}, "int8_edgetpu") == entry
    assert push.report_self_test({"self_test": "junk"}, "int8") is None
    assert push.report_self_test({}, "int8") is None


@pytest.mark.slow
def test_component_yaml_is_current(tmp_path):
    """Slow only because importing kfp is (about 10 s on a busy 2-core box)."""
    from kfp import compiler

    from edge_pusher.component import push as component

    fresh = tmp_path / "component.yaml"
    compiler.Compiler().compile(component, str(fresh))
    assert fresh.read_text() == (ROOT / "edge_pusher" / "component.yaml").read_text(), (
        "edge_pusher/component.yaml is stale: run python -m components._compile")
