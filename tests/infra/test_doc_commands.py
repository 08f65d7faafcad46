"""The shell in the docs works as written.

Every command in README.md, docs/*.md and the step READMEs is in a marked block
(``tests/helpers/doc_blocks.py`` says how): the runnable ones run here, in the doc's order, in a
fresh scratch folder per doc with the venv's ``bin`` first on PATH (as ``. .venv/bin/activate``
puts it), and the output a doc shows must still appear; usage lines name only commands and
flags that exist; the rest say why they cannot run here. Placeholder inputs (``my.csv``,
``rec.csv``, ``photos/``, ``model_int8.tflite``) are small real files made by the fixture, and
``s3://ota/...`` is moto's S3 server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.doc_blocks import (
    Block,
    blocks,
    expected_lines_match,
    indented_commands,
    synopsis_flags,
)

DOCS = sorted([REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("components/*/README.md"),
               REPO / "edge_pusher" / "README.md"])
ALL_BLOCKS = [block for doc in DOCS for block in blocks(doc)]
RUNNABLE_DOCS = sorted({b.doc for b in ALL_BLOCKS if b.kind in ("run", "repo")})


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


# --------------------------------------------------------------------------- running them


def _sensor_csv(path: Path) -> None:
    """Recordings with the column names the docs use: session, t, the axes, state."""
    from edgeship.components.ingest.datasets import sensor_rows

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["session", "t", "ax", "ay", "az", "state"])
        for machine, time, ax, ay, az, label in sensor_rows(24, 512, 3):
            writer.writerow([f"s{machine}", f"{time:.4f}", f"{ax:.5f}", f"{ay:.5f}", f"{az:.5f}",
                             label])


def _tabular_csv(path: Path) -> None:
    """A table labelled by `outcome`, learnable from its features."""
    import numpy as np

    rng = np.random.default_rng(11)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["temperature", "pressure", "site", "outcome"])
        for i in range(360):
            site = ("north", "south", "east")[i % 3]
            temperature, pressure = rng.normal(20, 5), rng.normal(1, 0.2)
            score = (temperature - 20) / 5 + (1.5 if site == "north" else 0.0)
            outcome = "cold" if score < -0.5 else ("hot" if score > 0.8 else "mild")
            writer.writerow([f"{temperature:.3f}", f"{pressure:.3f}", site, outcome])


@pytest.fixture
def scratch(tmp_path: Path, tiny_models: Path, moto_endpoint: str, monkeypatch) -> Path:
    """A user's empty folder, plus the files the docs name as placeholders."""
    import logging

    import boto3

    from tests.helpers.builders import photo_folder

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log

    _tabular_csv(tmp_path / "my.csv")
    shutil.copy(tmp_path / "my.csv", tmp_path / "plant.csv")
    _sensor_csv(tmp_path / "rec.csv")
    shutil.copy(tmp_path / "rec.csv", tmp_path / "recordings.csv")
    photo_folder(tmp_path / "photos", per_class=30, size=32)
    shutil.copy(tiny_models / "model_int8.tflite", tmp_path / "model_int8.tflite")
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", moto_endpoint)):
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    if "ota" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="ota")
    return tmp_path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env.pop("PYTHONPATH", None)  # as a user has it: the installed edgeship, not the test tree
    return env


def _run_block(block: Block, cwd: Path) -> str:
    script = "set -euo pipefail\n" + block.body
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, (f"{block.where}: exit {proc.returncode}\n{block.body}\n"
                                  f"{out[-3000:]}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE_DOCS, ids=_name)
def test_the_docs_commands_run_as_written(doc: Path, scratch: Path) -> None:
    previous = ""
    ran = 0
    for block in blocks(doc):
        if block.kind in ("run", "repo"):
            previous = _run_block(block, REPO if block.kind == "repo" else scratch)
            ran += 1
        elif block.kind == "output" and previous:
            missing = expected_lines_match(block.body, previous)
            assert missing is None, (f"{block.where}: the doc shows {missing!r}, the command "
                                     f"printed:\n{previous[-3000:]}")
        elif block.kind == "skip":
            previous = ""
    assert ran
