"""The wheel users install, built once per test session, and what it unpacks to.

Built with ``uv build`` from the repository's pyproject.toml, exactly as ``pip install .`` would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO
from tests.helpers.tools import missing

UV = str(Path(sys.executable).parent / "uv")


def package_dirs() -> dict[str, Path]:
    """pyproject.toml's package-dir mapping: import name -> source folder."""
    import tomllib

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
        # with this venv's setuptools, which requirements.lock pins (no unpinned build env)
        subprocess.run([UV, "build", "--quiet", "--wheel", "--no-build-isolation", "--python",
                        sys.executable, "--out-dir", str(out), str(REPO)],
                       check=True, capture_output=True, timeout=600)
    (built,) = out.glob("edgeship-*.whl")
    return built


def venv(path: Path, python: str) -> Path:
    """An empty virtual environment for ``python``; returns its interpreter."""
    subprocess.run([UV, "venv", "--quiet", "--python", python, str(path)], check=True,
                   capture_output=True, timeout=300)
    return path / "bin" / "python"


def uv_install(python: Path, *args: str) -> None:
    subprocess.run([UV, "pip", "install", "--quiet", "--python", str(python), *args],
                   check=True, capture_output=True, text=True, timeout=900)


def device_pythons() -> list[str]:
    """Every Python the base install supports: the minor versions pyproject's requires-python
    (">=3.10,<3.14") admits."""
    import tomllib

    spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low, high = (int(part.split(".")[1]) for part in spec.replace(">=", "").split(",<"))
    return [f"3.{minor}" for minor in range(low, high)]


DEVICE_PYTHONS = device_pythons()
DEVICE_LOCK = REPO / "requirements-device.lock"


def find_python(version: str) -> str:
    """The interpreter for ``version`` (manifests/scripts/find-python.sh); skip when absent."""
    found = subprocess.run([str(REPO / "manifests" / "scripts" / "find-python.sh"), version],
                           capture_output=True, text=True)
    if found.returncode:
        missing(found.stderr.strip())
    return found.stdout.strip()


def clean_env() -> dict[str, str]:
    """The environment for a process of another venv: nothing points back at this checkout."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
