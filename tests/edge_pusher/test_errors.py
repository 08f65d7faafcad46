"""push refuses bad input with one readable line and publishes nothing."""

from __future__ import annotations

import json

import pytest

from edgeship.edge_pusher import push
from edgeship.errors import InputError, OtaError
from edgeship.quantization_report import REPORT_JSON
from tests.helpers.checks import one_line_error
from tests.helpers.ota import blessing as _blessing
from tests.helpers.ota import push_to as _push


def test_bad_inputs_are_one_line_errors(tmp_path, bucket, keys_dir, quantized):
    eb, qb = _blessing(tmp_path / "eb", True), _blessing(tmp_path / "qb", True)
    report = quantized / REPORT_JSON
    good = report.read_text()
    report.write_text("{broken")
    with pytest.raises(InputError, match="quantization_report.json: not valid JSON"):
        _push(quantized, eb, qb, bucket, keys_dir)
    report.write_text(json.dumps(json.loads(good) | {"schema_version": None}))
    with pytest.raises(InputError, match="schema_version None, this edgeship reads 1"):
        _push(quantized, eb, qb, bucket, keys_dir)
    report.write_text(json.dumps(json.loads(good) | {"self_test": {"input": [[1.0]]}}))
    with pytest.raises(InputError, match="'self_test' must hold"):
        _push(quantized, eb, qb, bucket, keys_dir)
    report.write_text(good)
    (quantized / "model_int8.tflite").unlink()
    with pytest.raises(OtaError, match="model_int8.tflite is missing"):
        _push(quantized, eb, qb, bucket, keys_dir)
    assert bucket.list() == []


@pytest.mark.parametrize("bad,error,message", [
    ({"model_name": "../x"}, OtaError, "invalid model name"),
    ({"version": -1}, OtaError, "invalid version"),
    ({"version": 2**63}, OtaError, "invalid version"),
    ({"rollout_percent": 101}, OtaError, "invalid rollout"),
    ({"bucket_url": ""}, InputError, "bucket_url"),
    ({"colour": "red"}, InputError, "unknown parameter"),
])
def test_bad_parameters_are_refused_before_anything_is_read(tmp_path, bad, error, message):
    params = {"bucket_url": "file:///nowhere", "model_name": "sensor"} | bad
    one_line_error(lambda: push.push(str(tmp_path / "missing"), None, None, **params), message,
                   error)
