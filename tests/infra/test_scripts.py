"""The kind scripts (make kind-up/kind-down/kind-load/kind-e2e) cannot run here (no Docker engine,
no cluster), so they are checked statically: bash parses them and shellcheck finds nothing.
"""

import subprocess

import pytest

from tests.helpers import REPO
from tests.helpers.tools import tool

SCRIPTS = sorted((REPO / "manifests" / "scripts").glob("*.sh"))


def test_every_make_target_has_its_script():
    names = {p.name for p in SCRIPTS}
    assert {"kind-up.sh", "kind-down.sh", "kind-load.sh", "kind-e2e.sh", "ota-secrets.sh",
            "tools-venv.sh", "lib.sh"} <= names
    for script in SCRIPTS:
        if script.name != "lib.sh":
            assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
            assert script.read_text().startswith("#!/usr/bin/env bash\n")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_parses(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_shellcheck_is_clean():
    shellcheck = tool("shellcheck")
    proc = subprocess.run(
        [shellcheck, "--external-sources", "--source-path=SCRIPTDIR", *map(str, SCRIPTS)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
