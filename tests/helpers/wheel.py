"""The wheel users install, built once per test session, and what it unpacks to.

Built with ``uv build`` from the repository's pyproject.toml, exactly as ``pip install .`` would.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from tests.helpers import REPO

UV = str(Path(sys.executable).parent / "uv")


def package_dirs() -> dict[str, Path]:
    """pyproject.toml's package-dir mapping: import name -> source folder."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {name: REPO / folder for name, folder in config["tool"]["setuptools"]["package-dir"]
            .items()}


def build_wheel(out: Path) -> Path:
    """Build the wheel into ``out``. setuptools stages files in the checkout's build/lib and never
    deletes from it, so that is cleared first (a removed module must not ship); a lock keeps
    test workers from building in the one checkout at the same time."""
    import fcntl
    import shutil

    (REPO / "build").mkdir(exist_ok=True)
    with open(REPO / "build" / ".wheel-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(REPO / "build" / "lib", ignore_errors=True)
        subprocess.run([UV, "build", "--quiet", "--wheel", "--out-dir", str(out), str(REPO)],
                       check=True, capture_output=True, timeout=600)
    (built,) = out.glob("edgeship-*.whl")
    return built


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def installed_tree(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked: the layout an install puts into site-packages."""
    tree = tmp_path_factory.mktemp("installed")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tree)
    return tree


def venv(path: Path, python: str) -> Path:
    """An empty virtual environment for ``python``; returns its interpreter."""
    subprocess.run([UV, "venv", "--quiet", "--python", python, str(path)], check=True,
                   capture_output=True, timeout=300)
    return path / "bin" / "python"


def uv_install(python: Path, *args: str) -> None:
    subprocess.run([UV, "pip", "install", "--quiet", "--python", str(python), *args],
                   check=True, capture_output=True, text=True, timeout=900)


#: Every Python the device side supports (pyproject's requires-python, DESIGN §1).
DEVICE_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
DEVICE_LOCK = REPO / "requirements-device.lock"


def find_python(version: str) -> str:
    """The interpreter for ``version`` (manifests/scripts/find-python.sh); skip when absent."""
    found = subprocess.run([str(REPO / "manifests" / "scripts" / "find-python.sh"), version],
                           capture_output=True, text=True)
    if found.returncode:
        pytest.skip(found.stderr.strip())
    return found.stdout.strip()


def clean_env() -> dict[str, str]:
    """The environment for a process of another venv: nothing points back at this checkout."""
    import os

    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
