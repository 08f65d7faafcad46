"""The development install (`make install`) lets a type checker, and so an editor, resolve every
``edgeship.*`` import. The repository's folders become ``edgeship.*`` only through pyproject.toml's
package-dir mapping; setuptools' default editable mode does that with an import hook that Pyright
and mypy cannot follow, so the Makefile installs in strict editable mode (real files, linked
under build/__editable__.*, on a path entry). These tests run basedpyright, the checker `make
typecheck` runs, against this venv from outside the checkout, as an editor of a project that
uses edgeship would."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

BASEDPYRIGHT = str(Path(sys.executable).parent / "basedpyright")

# One module of each package, the kind of import an editor must follow into its source.
MODULES = [
    "edgeship.cli",
    "edgeship.contract",
    "edgeship.components.quantize.executor",
    "edgeship.params",
    "edgeship.edge_pusher.repository",
    "edgeship.edge_pusher.fleet.status",
    "edgeship.device.agent",
    "edgeship.pipelines.sensor",
    "edgeship.pipelines.local",
]


def check(folder: Path, source: str) -> list[dict]:
    """basedpyright's diagnostics for ``source``, checked in ``folder`` with this venv's Python."""
    (folder / "probe.py").write_text(source)
    # its own config: the checkout's pyproject.toml must not be what makes the imports resolve
    (folder / "pyrightconfig.json").write_text(json.dumps({"typeCheckingMode": "basic"}))
    result = subprocess.run([BASEDPYRIGHT, "--outputjson", "--pythonpath", sys.executable,
                             "probe.py"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.stdout, result.stderr[-2000:]
    return json.loads(result.stdout)["generalDiagnostics"]


def test_the_checker_resolves_every_package_from_the_dev_install(tmp_path: Path) -> None:
    lines = [f"import {name}" for name in MODULES]
    lines += [f"reveal_type({name})" for name in MODULES]
    found = check(tmp_path, "\n".join(lines) + "\n")
    errors = [d["message"] for d in found if d["severity"] == "error"]
    assert errors == []
    revealed = [d["message"] for d in found if d["message"].startswith("Type of")]
    # a module the checker could not read reveals as Unknown
    assert revealed == [f'Type of "{name}" is "Module("{name}")"' for name in MODULES]


def test_an_unresolved_import_is_reported(tmp_path: Path) -> None:
    """The control: the same check fails for a module that does not exist."""
    found = check(tmp_path, "import edgeship.components.no_such_step\n")
    assert [(d["severity"], d.get("rule")) for d in found] == [("error", "reportMissingImports")]


@pytest.mark.parametrize("name", ["edgeship.components.quantize.executor",
                                  "edgeship.device.agent", "edgeship.pipelines.local"])
def test_python_imports_the_files_the_checker_reads(name: str) -> None:
    """Python runs what the checker reads: the linked file on a path entry, which is the
    checkout's own file (an edit shows at once), not a copy."""
    module = importlib.import_module(name)
    linked = Path(module.__file__ or "")
    assert "__editable__" in linked.parts[-len(name.split(".")) - 1]
    assert linked.resolve().is_relative_to(REPO)
    assert linked.resolve() != linked
