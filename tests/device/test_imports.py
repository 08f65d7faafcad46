"""The device agent runs with the ML stack (and boto3) unimportable, as on a base install."""

from __future__ import annotations

import subprocess

from tests.helpers.ota import PY, release, subprocess_env

_BLOCKED = """
import sys
BLOCKED = {"tensorflow", "kfp", "apache_beam", "tensorflow_data_validation",
           "tensorflow_model_analysis", "tfx_bsl", "tfx", "boto3", "botocore", "keras"}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"device code must not import {name}")
        return None

sys.meta_path.insert(0, Blocker())
from edgeship import cli, contract, litert  # noqa
from edgeship.device import Agent, agent, fetcher, selftest, slots, state  # noqa
result = Agent(sys.argv[1], sys.argv[2], trusted_root=sys.argv[3], device_id="d").poll_once()
assert result.ok and result.version == 1, result
sys.exit(cli.main(["device", "status", "--state-dir", sys.argv[1]]))
"""


def test_device_poll_with_ml_stack_blocked(tmp_path, repo, bucket, keys_dir, tiny_models):
    repo.publish([release(tiny_models, 1)])
    proc = subprocess.run(
        [PY, "-c", _BLOCKED, str(tmp_path / "state"), bucket.url,
         str(keys_dir / "root_history" / "1.root.json")],
        env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"version": 1' in proc.stdout
