"""Running the docs' commands as written (``tests/infra/test_doc_runs*.py``).

Every runnable block of a doc runs in the doc's order in a fresh scratch folder with the venv's
``bin`` first on PATH (as ``. .venv/bin/activate`` puts it), and the output a doc shows must
still appear. Placeholder inputs (``my.csv``, ``rec.csv``, ``photos/``, ``model_int8.tflite``)
are small real files made here, and ``s3://ota/...`` is moto's S3 server on 127.0.0.1. The
README, which runs every pipeline, has a test file of its own, so that the two test workers can
run it beside the other docs.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.doc_blocks import Block, blocks, expected_lines_match


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


def make_scratch(tmp_path: Path, tiny_models: Path, moto_endpoint: str,
                 monkeypatch: pytest.MonkeyPatch) -> Path:
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


def run_doc(doc: Path, scratch: Path) -> None:
    """Run ``doc``'s blocks in order; each output block must match what the block before
    printed."""
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
    assert ran, f"{doc}: no block ran"
