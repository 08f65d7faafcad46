"""The offline checkers (hadolint, shellcheck, kubernetes-validate, checkov) the infra tests run."""

import shutil

import pytest

from tests.helpers import REPO


def tool(name: str) -> str:
    """Path of a checker from .venv-tools/ or PATH; skip the test when it is missing."""
    local = REPO / ".venv-tools" / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed: run manifests/scripts/tools-venv.sh")
    return found
