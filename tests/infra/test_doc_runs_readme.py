"""README.md's commands run as written (every pipeline among them: a file of its own, so that
the other test worker runs the rest of the docs beside it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.doc_runs import make_scratch, run_doc


@pytest.fixture
def scratch(tmp_path: Path, tiny_models: Path, moto_endpoint: str,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_scratch(tmp_path, tiny_models, moto_endpoint, monkeypatch)


@pytest.mark.slow
def test_the_readmes_commands_run_as_written(scratch: Path) -> None:
    run_doc(REPO / "README.md", scratch)
