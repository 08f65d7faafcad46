"""Bundled data: deterministic, shaped as documented; the step's modules stay light to import."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeship.components.artifacts import read_examples_meta
from edgeship.components.ingest import datasets
from edgeship.components.ingest.executor import run_ingest
from tests.helpers import REPO


def _digest(path: Path) -> str:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path.parent).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    "name", ["sensor", pytest.param("vision", marks=pytest.mark.slow), "tabular"]
)
def test_materialize_is_deterministic(name: str, tmp_path: Path) -> None:
    first = datasets.materialize(name, tmp_path / "a")
    second = datasets.materialize(name, tmp_path / "b")
    assert first.name == second.name and _digest(first) == _digest(second)


def test_sensor_data_shape_and_classes(tmp_path: Path) -> None:
    path = datasets.materialize("sensor", tmp_path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(datasets.SENSOR_COLUMNS)
    by_machine: dict[str, list[dict]] = {}
    for row in rows:
        by_machine.setdefault(row["machine_id"], []).append(row)
    assert len(by_machine) == 64
    labels = [{r["label"] for r in recording} for recording in by_machine.values()]
    assert all(len(s) == 1 for s in labels)  # one condition per recording
    counts = {c: sum(s == {c} for s in labels) for c in datasets.SENSOR_CLASSES}
    assert counts == dict.fromkeys(datasets.SENSOR_CLASSES, 16)
    times = [float(r["time"]) for r in next(iter(by_machine.values()))]
    assert times == sorted(times) and len(times) == 512
    z = np.array([float(r["az"]) for r in rows])
    assert abs(z.mean() - 1.0) < 0.1  # the vertical axis carries gravity


def test_fault_signatures_are_in_the_spectrum() -> None:
    """Imbalance raises radial 1x; misalignment axial orders; a bearing fault high frequencies."""
    rng = np.random.default_rng(1)

    def spectrum(condition: str) -> tuple[np.ndarray, np.ndarray]:
        data = datasets.sensor_recording(condition, rng, 4096)
        data = data - data.mean(axis=0)
        freqs = np.fft.rfftfreq(len(data), 1 / datasets.SAMPLE_RATE)
        return freqs, np.abs(np.fft.rfft(data, axis=0)) / len(data)

    freqs, normal = spectrum("normal")
    _, imbalance = spectrum("imbalance")
    _, misalignment = spectrum("misalignment")
    _, bearing = spectrum("bearing_fault")
    low, high = freqs < 50, freqs > 200  # shaft orders live below 50 Hz; resonance above 200
    assert imbalance[low, 0].max() > 4 * normal[low, 0].max()
    assert misalignment[low, 2].max() > 4 * normal[low, 2].max()
    assert bearing[high, 0].sum() > 2 * normal[high, 0].sum()


def test_wine_csv_has_a_label_column_and_safe_names(tmp_path: Path) -> None:
    path = datasets.materialize("tabular", tmp_path)
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header[-1] == "label" and len(rows) == 178
    assert {r[-1] for r in rows} == {"class_0", "class_1", "class_2"}
    assert all("/" not in name for name in header)




@pytest.mark.slow
def test_builtin_sensor_ingests_with_machines_kept_whole(tmp_path: Path) -> None:
    out = tmp_path / "examples"
    summary = run_ingest("sensor", "builtin:sensor", str(out))
    meta = read_examples_meta(out)
    assert meta["source"] == "builtin:sensor" and meta["passthrough"] == ["machine_id"]
    assert sum(summary["rows"].values()) == 64 * 7  # (512 - 128) / 64 + 1 windows each
    assert meta["classes"] == sorted(datasets.SENSOR_CLASSES)
    for split in ("train", "eval"):
        assert all(n > 0 for n in meta["class_counts"][split].values()), split


@pytest.mark.slow
def test_component_runs_under_kfp_local(tmp_path: Path) -> None:
    """The KFP component body itself, in a subprocess as the local runner executes it."""
    script = f"""
import json, sys
from kfp import local
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root={str(tmp_path)!r})
from edgeship.components.ingest.component import ingest
task = ingest(kind="tabular", data_path="builtin:tabular")
summary = json.loads(task.outputs["Output"])
print(json.dumps({{"summary": summary, "path": task.outputs["examples"].path}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["summary"]["classes"] == ["class_0", "class_1", "class_2"]
    meta = read_examples_meta(result["path"])
    assert meta["counts"] == result["summary"]["rows"]
    assert sum(meta["counts"].values()) == 178
