"""The base install (``pip install edgeship``: the device side) on every Python it supports:
a fresh venv per version with just the wheel and the device lock, polling a published
repository and activating a model, with none of the ML stack present."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import ML_STACK
from tests.helpers.ota import release
from tests.helpers.wheel import (
    DEVICE_LOCK,
    DEVICE_PYTHONS,
    clean_env,
    find_python,
    uv_install,
    venv,
)


@pytest.mark.slow
@pytest.mark.parametrize("version", DEVICE_PYTHONS)
def test_the_base_install_polls_and_activates(version, wheel, tmp_path, repo, bucket, keys_dir,
                                              tiny_models) -> None:
    python = venv(tmp_path / "venv", find_python(version))
    uv_install(python, "-c", str(DEVICE_LOCK), str(wheel))
    repo.publish([release(tiny_models, 1)])

    def edgeship(*args: str) -> subprocess.CompletedProcess:
        # in tmp_path, away from the checkout: the venv's own edgeship must be the one used
        return subprocess.run([python, "-m", "edgeship", *args], capture_output=True,
                              text=True, cwd=tmp_path, env=clean_env(), timeout=300)

    state = tmp_path / "state"
    poll = edgeship("device", "poll", "--once", "--repo", bucket.url, "--trusted-root",
                    str(keys_dir / "root.json"), "--state-dir", str(state),
                    "--device-id", f"py{version}")
    assert poll.returncode == 0, poll.stderr[-2000:]
    assert json.loads(poll.stdout) | {"message": ""} == {
        "ok": True, "action": "updated", "reason": None, "message": "", "version": 1}
    # the `edgeship` script of the base install is the same command line
    status = json.loads(subprocess.run(
        [python.parent / "edgeship", "device", "status", "--state-dir", str(state)],
        capture_output=True, text=True, cwd=tmp_path, env=clean_env(), check=True).stdout)
    assert status["active"]["version"] == 1 and status["active"]["verified"] is True
    probe = subprocess.run(
        [python, "-c", "import importlib.util, sys; "
         f"print([m for m in {ML_STACK!r} if importlib.util.find_spec(m)]); "
         "print(sys.version_info[:2])"],
        capture_output=True, text=True, cwd=tmp_path, env=clean_env(), check=True)
    present, running = probe.stdout.splitlines()
    assert present == "[]" and running == str(tuple(map(int, version.split("."))))
