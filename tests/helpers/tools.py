"""The tools tests need beyond the venv: the offline checkers (hadolint, shellcheck,
kubernetes-validate, checkov) the infra tests run, and what CI promises (`make system`'s Debian
packages, every Python version)."""

import os
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


def missing(message: str):
    """A tool the machine lacks: the test skips and says so, except on CI, which promises
    every such tool (`.ci/run` sets CI), where it fails."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def debian_program(name: str) -> str:
    """Path of a program `make system` installs from Debian (mosquitto, chromium)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        missing(f"{name} is not installed (make system installs Debian's package)")
    return found
