"""``edgeship run``'s choices that end before any step runs (the main environment: no TFX)."""

from __future__ import annotations

import pytest

from edgeship.cli import main


@pytest.mark.parametrize("pipeline, message", [
    ("sensor", "edgeship: error: --orchestrator tfx needs TFX (tfx is missing): "
               "pip install 'edgeship[tfx]' on Python 3.10, or make tfx"),
    ("tabular", "edgeship: error: --orchestrator tfx needs TFX (tfx is missing): "
                "pip install 'edgeship[tfx]' on Python 3.10, or make tfx"),
])
def test_the_tfx_orchestrator_says_what_it_needs(tmp_path, capsys, pipeline, message) -> None:
    assert main(["run", pipeline, "--orchestrator", "tfx", "--workdir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == message
    assert not any(tmp_path.iterdir())  # nothing written
