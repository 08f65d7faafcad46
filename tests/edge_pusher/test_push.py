"""The push executor (no kfp) and its KFP component."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeship import litert
from edgeship.components.quantize.report import REPORT_JSON, REPORT_SCHEMA_VERSION
from edgeship.contract import decode_array, self_test_tolerance
from edgeship.edge_pusher import push
from edgeship.errors import EdgeshipError, OtaError


def _blessing(path: Path, blessed: bool) -> str:
    path.mkdir(parents=True)
    (path / ("BLESSED" if blessed else "NOT_BLESSED")).write_text("")
    return str(path)


@pytest.fixture
def quantized(tmp_path, tiny_models) -> Path:
    """The quantize step's layout, with a report in its exact shape (a real-valued self-test
    input and the output LiteRT gave for it)."""
    out = tmp_path / "quantized"
    out.mkdir()
    for name in ("model_int8.tflite", "model_float32.tflite"):
        shutil.copyfile(tiny_models / name, out / name)
    interpreter = litert.load(str(out / "model_int8.tflite"))
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    expected = litert.run(interpreter, x)
    atol, rtol = self_test_tolerance(litert.output_quantization(interpreter).step)
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "float_accuracy": 0.93,
        "variants": {
            "int8": {"accuracy": 0.92, "size_bytes": 1608, "agreement": 0.99,
                     "latency_ms": {"median": 0.01, "p90": 0.02},
                     "input_quantization":
                         litert.input_quantization(interpreter).as_dict(),
                     "output_quantization":
                         litert.output_quantization(interpreter).as_dict()},
            "float32": {"accuracy": 0.93, "size_bytes": 1824},
        },
        "self_test": {"variant": "int8", "input": x.tolist(), "expected_output":
                      expected.tolist(), "atol": atol, "rtol": rtol},
    }
    (out / REPORT_JSON).write_text(json.dumps(report))
    return out


def _push(quantized: Path, eb: str, qb: str, bucket, keys_dir, **kw):
    return push.push(str(quantized), eb, qb, bucket_url=bucket.url, keys_dir=str(keys_dir),
                     model_name="sensor", **kw)


def test_blessed_model_is_published_with_report_metadata(quantized, tmp_path, bucket,
                                                         keys_dir, repo, make_agent):
    outcome = _push(quantized, _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True),
                    bucket, keys_dir, pipeline_run="run-42", output_dir=str(tmp_path / "out"))
    assert outcome.pushed and outcome.version == 1
    assert outcome.targets == ["models/sensor/stable/1/cpu/model.tflite"]
    assert (tmp_path / "out" / "PUSHED").read_text().startswith("pushed v1")
    custom = repo.target(outcome.targets[0]).custom
    assert custom["pipeline_run"] == "run-42" and custom["variant"] == "int8"
    assert custom["schema_version"] == 1
    assert custom["metrics"]["accuracy"] == "0.92"  # canonical JSON: floats as strings
    assert custom["metrics"]["latency_ms_median"] == "0.01"
    assert custom["metrics"]["float_accuracy"] == "0.93"
    # the self-test signs quantize's real-valued input as it is
    x = decode_array(custom["self_test"]["input"])
    assert np.array_equal(x, np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8))
    agent = make_agent()
    assert agent.poll_once().version == 1  # and a device passes it
    again = _push(quantized, str(tmp_path / "eb"), str(tmp_path / "qb"), bucket, keys_dir)
    assert again.version == 2  # version 0 = next


def test_a_model_other_than_the_one_quantize_measured_is_refused(quantized, tmp_path, bucket,
                                                                 keys_dir, tiny_models):
    """The blessing is about the file quantize measured: a file swapped in later must not be
    signed under it."""
    shutil.copyfile(tiny_models / "model_int8_b.tflite", quantized / "model_int8.tflite")
    eb, qb = _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True)
    with pytest.raises(OtaError, match="not the model quantize measured"):
        _push(quantized, eb, qb, bucket, keys_dir)
    assert not bucket.exists("metadata/timestamp.json")


@pytest.mark.parametrize("which", ["evaluate", "quantize"])
def test_not_blessed_is_not_pushed_and_exits_cleanly(quantized, tmp_path, bucket, keys_dir,
                                                     which):
    eb = _blessing(tmp_path / "eb", which != "evaluate")
    qb = _blessing(tmp_path / "qb", which != "quantize")
    outcome = _push(quantized, eb, qb, bucket, keys_dir, output_dir=str(tmp_path / "out"))
    assert not outcome.pushed
    text = (tmp_path / "out" / "NOT_PUSHED").read_text()
    assert text.startswith(f"not pushed: {which} did not bless")
    assert json.loads((tmp_path / "out" / "push_result.json").read_text())["pushed"] is False
    assert bucket.list() == []


def test_missing_blessing_is_not_blessed(quantized, tmp_path, bucket, keys_dir):
    outcome = _push(quantized, str(tmp_path / "nope"), _blessing(tmp_path / "qb", True),
                    bucket, keys_dir)
    assert not outcome.pushed and "does not exist" in outcome.reason


def test_edgetpu_variant_is_published_as_edgetpu(quantized, tmp_path, bucket, keys_dir, repo):
    # stand-in bytes: this machine has no Edge TPU compiler; publishing must not need to run it
    shutil.copyfile(quantized / "model_int8.tflite", quantized / "model_int8_edgetpu.tflite")
    outcome = _push(quantized, _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True),
                    bucket, keys_dir, version=3)
    assert sorted(outcome.targets) == ["models/sensor/stable/3/cpu/model.tflite",
                                       "models/sensor/stable/3/edgetpu/model.tflite"]
    tpu = repo.target("models/sensor/stable/3/edgetpu/model.tflite").custom
    cpu = repo.target("models/sensor/stable/3/cpu/model.tflite").custom
    assert tpu["hardware"] == "edgetpu" and tpu["variant"] == "int8_edgetpu"
    assert float(tpu["self_test"]["atol"]) == 2 * float(cpu["self_test"]["atol"])


def test_bad_inputs_are_one_line_errors(tmp_path, bucket, keys_dir, quantized):
    eb, qb = _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True)
    report = quantized / REPORT_JSON
    good = report.read_text()
    report.write_text("{broken")
    with pytest.raises(EdgeshipError, match="quantization_report.json: not valid JSON"):
        _push(quantized, eb, qb, bucket, keys_dir)
    report.write_text(json.dumps(json.loads(good) | {"schema_version": None}))
    with pytest.raises(EdgeshipError, match="schema_version None, this edgeship reads 1"):
        _push(quantized, eb, qb, bucket, keys_dir)
    report.write_text(json.dumps(json.loads(good) | {"self_test": {"input": [[1.0]]}}))
    with pytest.raises(EdgeshipError, match="'self_test' must hold"):
        _push(quantized, eb, qb, bucket, keys_dir)
    report.write_text(good)
    (quantized / "model_int8.tflite").unlink()
    with pytest.raises(OtaError, match="model_int8.tflite is missing"):
        _push(quantized, eb, qb, bucket, keys_dir)
    assert bucket.list() == []


@pytest.mark.parametrize("bad,message", [
    ({"model_name": "../x"}, "invalid model name"),
    ({"version": -1}, "invalid version"),
    ({"version": 2**63}, "invalid version"),
    ({"rollout_percent": 101}, "invalid rollout"),
    ({"bucket_url": ""}, "bucket_url"),
    ({"colour": "red"}, "unknown parameter"),
])
def test_bad_parameters_are_refused_before_anything_is_read(tmp_path, bad, message):
    params = {"bucket_url": "file:///nowhere", "model_name": "sensor"} | bad
    with pytest.raises(EdgeshipError, match=message):
        push.push(str(tmp_path / "missing"), None, None, **params)
