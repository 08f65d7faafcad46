"""The push executor (no kfp) and its KFP component."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeship.contract import decode_array
from edgeship.errors import OtaError
from edgeship.quantization_report import REPORT_JSON
from tests.helpers.ota import blessing as _blessing
from tests.helpers.ota import push_to as _push


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
    signed under it, nor an Edge TPU build quantize did not compile."""
    eb, qb = _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True)
    shutil.copyfile(tiny_models / "model_int8.tflite", quantized / "model_int8_edgetpu.tflite")
    with pytest.raises(OtaError, match="edgetpu.tflite: not the model quantize measured "
                                       r"\(its report has no sha256 for it\)"):
        _push(quantized, eb, qb, bucket, keys_dir)
    (quantized / "model_int8_edgetpu.tflite").unlink()
    shutil.copyfile(tiny_models / "model_int8_b.tflite", quantized / "model_int8.tflite")
    with pytest.raises(OtaError, match="int8.tflite: not the model quantize measured "
                                       r"\(its report recorded another sha256\)"):
        _push(quantized, eb, qb, bucket, keys_dir)
    assert not bucket.exists("metadata/timestamp.json")


def test_a_runtime_that_computes_otherwise_than_quantize_is_refused(quantized, tmp_path, bucket,
                                                                    keys_dir):
    """Push signs what its LiteRT computes; if that differs from what quantize's computed for
    the same file and input, devices would disagree too."""
    report = json.loads((quantized / REPORT_JSON).read_text())
    report["self_test"]["expected_output"] = [[1.0, 0.0, 0.0]]
    (quantized / REPORT_JSON).write_text(json.dumps(report))
    with pytest.raises(OtaError, match="LiteRT here computes other outputs than quantize"):
        _push(quantized, _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True),
              bucket, keys_dir)


@pytest.mark.parametrize(("field", "value", "said"), [
    ("atol", "abc", "self-test atol 'abc' is not a number"),
    ("rtol", None, "self-test rtol None is not a number"),
    ("input", [[1.0, "x"]], "self-test input is not an array of numbers")])
def test_a_malformed_self_test_in_the_report_is_named(quantized, tmp_path, bucket, keys_dir,
                                                      field, value, said):
    """Found while typing push: a self-test tolerance or input that is not a number (a
    hand-edited report) stopped push with a bare ValueError or TypeError; now it is one line
    saying which field, and nothing is published."""
    report = json.loads((quantized / REPORT_JSON).read_text())
    report["self_test"][field] = value
    (quantized / REPORT_JSON).write_text(json.dumps(report))
    with pytest.raises(OtaError, match=f"the quantization report's {said}"):
        _push(quantized, _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True),
              bucket, keys_dir)
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
    report = json.loads((quantized / REPORT_JSON).read_text())
    report["edgetpu"] = {"compiled": True, "file": "model_int8_edgetpu.tflite",
                         "sha256": report["variants"]["int8"]["sha256"]}
    (quantized / REPORT_JSON).write_text(json.dumps(report))
    outcome = _push(quantized, _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True),
                    bucket, keys_dir, version=3)
    assert sorted(outcome.targets) == ["models/sensor/stable/3/cpu/model.tflite",
                                       "models/sensor/stable/3/edgetpu/model.tflite"]
    tpu = repo.target("models/sensor/stable/3/edgetpu/model.tflite").custom
    cpu = repo.target("models/sensor/stable/3/cpu/model.tflite").custom
    assert tpu["hardware"] == "edgetpu" and tpu["variant"] == "int8_edgetpu"
    assert float(tpu["self_test"]["atol"]) == 2 * float(cpu["self_test"]["atol"])


def test_push_starts_a_staged_rollout_that_rollout_set_widens(quantized, tmp_path, bucket,
                                                              keys_dir, repo):
    """The push step's rollout_percent (`edgeship run ... --param rollout_percent=5`) is the
    first stage; the signed index carries it, for `rollout set` and `rollout watch` to widen."""
    outcome = _push(quantized, _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True),
                    bucket, keys_dir, rollout_percent=5)
    (entry,) = repo.read_index("stable")["models"]["sensor"]
    assert (entry["version"], entry["rollout"], entry["state"]) == (outcome.version, 5, "active")
    assert outcome.line().startswith(f"pushed v{outcome.version} at 5% rollout to ")
    repo.change_rollout("sensor", outcome.version, percent=25)
    assert repo.read_index("stable")["models"]["sensor"][0]["rollout"] == 25
