"""The shell in the docs works as written.

Every command in README.md, docs/*.md and the step READMEs is in a marked block
(``tests/helpers/doc_blocks.py`` says how); usage lines name only commands and flags that exist;
the rest say why they cannot run here. The runnable ones run in ``test_doc_runs.py`` and
``test_doc_runs_readme.py`` (``tests/helpers/doc_runs.py``).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.doc_blocks import (
    Block,
    blocks,
    indented_commands,
    synopsis_flags,
)

DOCS = sorted([REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("components/*/README.md"),
               REPO / "edge_pusher" / "README.md"])
ALL_BLOCKS = [block for doc in DOCS for block in blocks(doc)]


def _name(doc: Path) -> str:
    return str(doc.relative_to(REPO))


def test_every_command_is_in_a_marked_block() -> None:
    from tests.helpers.doc_blocks import COMMAND

    unmarked = [f"{_name(doc)}:{line}: {text}" for doc in DOCS
                for line, text in indented_commands(doc)]
    unmarked += [f"{_name(b.doc)}:{b.line}: {b.commands()[0]}" for b in ALL_BLOCKS
                 if b.lang in ("", "text", "console", "bash", "shell") and b.kind != "output"
                 and b.commands() and COMMAND.match(b.commands()[0])]
    assert not unmarked, "commands outside a ```sh block:\n" + "\n".join(unmarked)


def test_every_sh_block_says_what_it_is() -> None:
    bad = [f"{_name(b.doc)}:{b.line}: ```sh {b.kind}" for b in ALL_BLOCKS
           if b.lang == "sh" and (b.kind not in ("run", "repo", "skip", "synopsis")
                                  or (b.kind == "skip" and len(b.reason) < 8))]
    assert not bad, "sh blocks need run, repo, synopsis or 'skip: <reason>':\n" + "\n".join(bad)
    orphans = [f"{_name(b.doc)}:{b.line}" for i, b in enumerate(ALL_BLOCKS)
               if b.kind == "output" and (i == 0 or ALL_BLOCKS[i - 1].doc != b.doc
                                          or ALL_BLOCKS[i - 1].kind not in ("run", "repo",
                                                                            "skip"))]
    assert not orphans, "```text output blocks must follow a command block: " + str(orphans)


def _subparser(parser: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and word in action.choices:
            return action.choices[word]
    return None


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.kind in ("synopsis", "run",
                                                                          "repo", "skip")],
                         ids=lambda b: f"{_name(b.doc)}:{b.line}")
def test_every_edgeship_command_and_flag_in_the_docs_exists(block: Block) -> None:
    from edgeship.cli import build_parser

    commands = [part.strip() for command in block.commands()
                for part in re.split(r"&&|;", command)]
    for command in commands:
        words = command.split()
        if not words or os.path.basename(words[0]) != "edgeship":
            continue
        parser = build_parser()
        path, flags = synopsis_flags(command)
        for word in path:
            parser = _subparser(parser, word) or parser
        known = {s for action in parser._actions for s in action.option_strings}
        missing = [flag for flag in flags if flag not in known]
        assert not missing, f"{block.where}: {parser.prog} has no {', '.join(missing)}"
