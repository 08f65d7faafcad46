"""The distribution: one import root, every source folder inside it, installable alone."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.helpers.wheel import package_dirs, uv_install, venv


def test_the_wheels_only_top_level_names_are_edgeship_and_its_metadata(wheel) -> None:
    with zipfile.ZipFile(wheel) as zf:
        top = {name.split("/")[0] for name in zf.namelist()}
    version = wheel.name.split("-")[1]
    assert top == {"edgeship", f"edgeship-{version}.dist-info"}


def test_every_source_file_of_every_package_folder_is_in_the_wheel(wheel) -> None:
    """A package folder missing from pyproject's list would silently not install."""
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    expected = {
        f"{name.replace('.', '/')}/{path.relative_to(folder).as_posix()}"
        for name, folder in package_dirs().items()
        for path in folder.rglob("*")
        if path.suffix in (".py", ".yaml", ".md") and "__pycache__" not in path.parts
    }
    assert len(expected) > 60
    assert expected - shipped == set(), "add the missing packages to pyproject.toml"


def test_installed_alone_into_an_empty_venv_it_adds_only_edgeship(wheel, tmp_path) -> None:
    python = venv(tmp_path / "venv", "python3.11")
    site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
    before = set(p.name for p in site.iterdir())
    uv_install(python, "--no-deps", str(wheel))
    added = set(p.name for p in site.iterdir()) - before
    version = wheel.name.split("-")[1]
    assert added == {"edgeship", f"edgeship-{version}.dist-info"}
    # importing the root imports none of the packages (nor any dependency)
    out = subprocess.run([python, "-c", "import edgeship; print(edgeship.__version__)"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.stdout.strip() == version, out.stderr


@pytest.mark.parametrize(
    "package",
    ["tensorflow", "tensorflow_data_validation", "tensorflow_model_analysis", "apache_beam"],
)
def test_the_installed_stack_carries_its_bytecode(package: str) -> None:
    """`make install` compiles, as pip does: each pipeline step is a new process, and with no
    .pyc files (where PYTHONDONTWRITEBYTECODE is set, none is ever written) each one compiled
    the stack's source again: about 10 s of TensorFlow's and TFMA's imports, every step."""
    import importlib.util

    origin = importlib.util.find_spec(package).origin
    assert Path(importlib.util.cache_from_source(origin)).is_file(), f"{package} is not compiled"
