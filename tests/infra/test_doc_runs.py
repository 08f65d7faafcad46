"""The commands of docs/*.md and the step READMEs run as written (README.md:
``test_doc_runs_readme.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.doc_blocks import blocks
from tests.helpers.doc_runs import make_scratch, run_doc

DOCS = sorted([*REPO.glob("docs/*.md"), *REPO.glob("components/*/README.md"),
               REPO / "edge_pusher" / "README.md"])
RUNNABLE_DOCS = [doc for doc in DOCS if any(b.kind in ("run", "repo") for b in blocks(doc))]


@pytest.fixture
def scratch(tmp_path: Path, tiny_models: Path, moto_endpoint: str,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_scratch(tmp_path, tiny_models, moto_endpoint, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE_DOCS, ids=lambda doc: str(doc.relative_to(REPO)))
def test_the_docs_commands_run_as_written(doc: Path, scratch: Path) -> None:
    run_doc(doc, scratch)
