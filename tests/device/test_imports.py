"""The device agent runs with the ML stack (and boto3) unimportable, as on a base install."""

from __future__ import annotations

import subprocess

from tests.helpers import ML_STACK
from tests.helpers.ota import PY, release, subprocess_env

_BLOCKED = """
import sys
BLOCKED = set(sys.argv[4].split(","))

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
         str(keys_dir / "root_history" / "1.root.json"), ",".join(ML_STACK)],
        env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"version": 1' in proc.stdout


def test_the_device_contract_forbids_the_whole_ml_stack() -> None:
    """import-linter's device contract and the tests' list of what a device lacks agree."""
    import tomllib

    from tests.helpers import REPO

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    device = next(c for c in config["contracts"] if c["source_modules"] == ["edgeship.device"])
    assert set(ML_STACK) <= set(device["forbidden_modules"])
