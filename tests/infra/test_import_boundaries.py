"""Package boundaries hold by structure: import-linter passes on the installed layout, and a
forbidden import planted into any guarded package makes it fail, naming the broken contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess:
    # run inside the tree: import-linter puts the working directory first on sys.path
    return subprocess.run([LINT_IMPORTS, "--no-cache", str(REPO / "pyproject.toml")], cwd=tree,
                          capture_output=True, text=True, timeout=300)


def test_the_installed_layout_keeps_every_contract(installed_tree) -> None:
    result = lint(installed_tree)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module,planted,contract", [
    ("edgeship/device/slots.py", "import tensorflow", "device: no pipeline"),
    ("edgeship/device/agent.py", "import boto3", "device: no pipeline"),
    ("edgeship/device/state.py", "from edgeship.edge_pusher import keys",
     "device: no pipeline"),
    ("edgeship/contract.py", "import kfp", "contract, litert, mqtt, errors"),
    ("edgeship/litert.py", "from edgeship.device import slots", "contract, litert, mqtt, errors"),
    ("edgeship/mqtt.py", "import tensorflow", "contract, litert, mqtt, errors"),
    ("edgeship/components/quantize/report.py", "from edgeship.pipelines import local",
     "components: no"),
    ("edgeship/components/train/executor.py", "from kfp import dsl", "executors: no kfp"),
    ("edgeship/edge_pusher/repository.py", "from edgeship.device import agent",
     "publisher: no"),
    ("edgeship/quantization_report.py", "import tensorflow", "contract, litert, mqtt, errors"),
    ("edgeship/edge_pusher/cli.py", "from edgeship.components.quantize import report",
     "the publisher imports no components"),
    ("edgeship/edge_pusher/component.py", "from edgeship.components import artifacts",
     "the publisher imports no components"),
    ("edgeship/pipelines/local.py", "from edgeship.components import _beam",
     "no package imports another's private module"),
    ("edgeship/components/train/executor.py", "from edgeship.components.ingest import _csv",
     "no package imports another's private module"),
])
def test_a_planted_forbidden_import_breaks_its_contract(installed_tree, tmp_path, module,
                                                        planted, contract) -> None:
    tree = shutil.copytree(installed_tree, tmp_path / "tree")
    with open(tree / module, "a") as f:
        f.write(f"\n{planted}  # planted by the test\n")
    result = lint(tree)
    assert result.returncode == 1, result.stdout[-3000:]
    broken = result.stdout.split("Broken contracts")[1]
    assert contract in broken and planted.split()[1] in broken  # names what was imported
