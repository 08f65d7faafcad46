"""End to end: whole pipelines through ``edgeship run`` (kfp.local), then a device that polls the
bucket they published to. Slow (minutes): marked, and still run by ``make test`` in CI."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import REPO

STEPS = ["ingest", "validate", "train", "evaluate", "quantize", "push"]


def edgeship(*args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgeship", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def run_plant(data: Path, workdir: Path, *params: str) -> subprocess.CompletedProcess:
    """`edgeship run tabular` on a user CSV labelled by its `outcome` column."""
    flags = [arg for param in params for arg in ("--param", param)]
    return edgeship(
        "run",
        "tabular",
        "--data",
        str(data),
        "--label",
        "outcome",
        "--workdir",
        str(workdir),
        *flags,
    )


def step_lines(stdout: str) -> dict[str, str]:
    return {
        line.split()[0]: line
        for line in stdout.splitlines()
        if line.split()[:1] in [[s] for s in STEPS]
    }


@pytest.fixture(scope="module")
def sensor_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The one end-to-end run with kfp.local's own subprocess per step (every other run here
    and in the docs runs its steps in one process, the default)."""
    workdir = tmp_path_factory.mktemp("sensor")
    return workdir, edgeship("run", "sensor", "--runner", "kfp-local", "--workdir", str(workdir))


@pytest.fixture(scope="module")
def module_cache() -> str:
    """The step cache of fixtures wider than a test (``sensor_run`` stored its steps there)."""
    return os.environ["EDGESHIP_CACHE_DIR"]


def results(stdout: str) -> dict[str, list[str]]:
    """Each step's status and result, without its time (which differs from run to run)."""
    return {step: line.split()[1:2] + line.split()[3:] for step, line in step_lines(stdout).items()}


@pytest.mark.slow
def test_sensor_pipeline_runs_every_step_and_publishes(sensor_run) -> None:
    workdir, result = sensor_run
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    lines = step_lines(result.stdout)
    assert list(lines) == STEPS
    assert all(" SUCCESS " in line for line in lines.values())
    assert "BLESSED: accuracy " in lines["evaluate"] and "NOT BLESSED" not in lines["evaluate"]
    assert "eval examples beats the majority class" in lines["evaluate"]
    assert "int8" in result.stdout  # the variant table
    assert (workdir / "bucket" / "metadata" / "timestamp.json").is_file()
    assert (workdir / "run.log").is_file()
    assert not list((workdir / "bucket").rglob("*.key")), "no key material in the bucket"


@pytest.mark.slow
@pytest.mark.parametrize("doc", ["README.md", "docs/pipelines.md"])
def test_the_sample_run_in_the_docs_is_what_a_run_prints(sensor_run, doc: str) -> None:
    """The docs show `edgeship run sensor`'s table; its data-given parts must be the real ones
    (times, accuracies and epochs may differ from machine to machine)."""
    _, result = sensor_run
    real = step_lines(result.stdout)
    shown = step_lines((REPO / doc).read_text())
    assert list(shown) == STEPS
    for step in ("ingest", "validate"):
        assert shown[step].split()[3:] == real[step].split()[3:], (doc, step)
    parameters = re.search(r"\d+ parameters", real["train"])
    assert parameters and parameters.group(0) in shown["train"], (doc, real["train"])


@pytest.mark.slow
def test_a_failed_run_in_the_same_process_does_not_change_the_next_runs_results(
        sensor_run, tmp_path: Path) -> None:
    """In one process: a run that fails at its last step (push cannot find its keys) after
    training, evaluating and quantizing in-process, then a good run. The good run's results are
    the fresh subprocess run's (the ``sensor_run`` fixture, kfp-local)."""
    _, fresh = sensor_run
    assert fresh.returncode == 0, fresh.stderr
    script = (
        "import sys\n"
        "from edgeship.cli import main\n"
        f"failed = main(['run', 'sensor', '--no-cache', '--workdir', "
        f"{str(tmp_path / 'failed')!r}, '--param', 'keys_dir={tmp_path / 'no-keys'}'])\n"
        "print('=== second run')\n"
        f"good = main(['run', 'sensor', '--no-cache', '--workdir', {str(tmp_path / 'good')!r}])\n"
        "print('=== exit', failed, good)\n"
    )
    both = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, timeout=1200)
    failed_part, _, good_part = both.stdout.partition("=== second run")
    assert "=== exit 1 0" in good_part, both.stderr[-3000:] + both.stdout[-3000:]
    assert results(failed_part)["push"][0] == "FAILURE"
    assert results(failed_part)["quantize"][0] == "SUCCESS"  # it failed late, with TF in use
    good, fresh_results = results(good_part), results(fresh.stdout)
    assert good.pop("push")[-1] == fresh_results.pop("push")[-1]  # the same target (bucket apart)
    assert good == fresh_results


@pytest.mark.slow
def test_a_rerun_with_a_quantize_parameter_changed_runs_quantize_and_push_only(
        sensor_run, module_cache: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared run stored its steps in the step cache fixtures wider than a test use
    (tests/conftest.py); the rerun, in-process where that one ran each step in its own Python,
    reuses them."""
    _, first = sensor_run
    assert first.returncode == 0, first.stderr
    monkeypatch.setenv("EDGESHIP_CACHE_DIR", module_cache)
    rerun = edgeship("run", "sensor", "--workdir", str(tmp_path / "rerun"),
                     "--param", "max_accuracy_drop=2.5")
    assert rerun.returncode == 0, rerun.stderr + rerun.stdout[-3000:]
    statuses = {step: result[0] for step, result in results(rerun.stdout).items()}
    assert statuses == {"ingest": "CACHED", "validate": "CACHED", "train": "CACHED",
                        "evaluate": "CACHED", "quantize": "SUCCESS", "push": "SUCCESS"}
    assert "pp <= max 2.50 pp" in rerun.stdout  # quantize ran with the new budget
    no_cache = edgeship("run", "sensor", "--workdir", str(tmp_path / "again"), "--no-cache",
                        "--param", "max_accuracy_drop=2.5")
    assert {r[0] for r in results(no_cache.stdout).values()} == {"SUCCESS"}


@pytest.mark.slow
def test_a_device_activates_what_the_sensor_pipeline_published(sensor_run, tmp_path: Path) -> None:
    workdir, result = sensor_run
    assert result.returncode == 0, result.stderr
    state = tmp_path / "device"
    root = workdir / "keys" / "root.json"
    poll = edgeship(
        "device",
        "poll",
        "--repo",
        (workdir / "bucket").as_uri(),
        "--trusted-root",
        str(root),
        "--state-dir",
        str(state),
        "--device-id",
        "pump-7",
        "--hardware",
        "cpu",
        "--once",
    )
    assert poll.returncode == 0, poll.stderr + poll.stdout
    status = json.loads(edgeship("device", "status", "--state-dir", str(state)).stdout)
    assert status["active"]["name"] == "sensor-fault"
    assert status["active"]["hardware"] == "cpu"


def _user_csv(
    path: Path,
    rows: int = 360,
    bad_row: int | None = None,
    sites: tuple[str, ...] = ("north", "south", "east"),
) -> Path:
    """A CSV the project has never seen: numeric and string features, three string classes."""
    rng = np.random.default_rng(7)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["temperature", "pressure", "site", "outcome"])
        for i in range(rows):
            site = sites[i % len(sites)]
            temperature = rng.normal(20, 5)
            pressure = rng.normal(1, 0.2)
            score = (temperature - 20) / 5 + (1.5 if site == "north" else 0.0)
            outcome = "cold" if score < -0.5 else ("hot" if score > 0.8 else "mild")
            value = "n/a" if i == bad_row else f"{temperature:.3f}"
            writer.writerow([value, f"{pressure:.3f}", site, outcome])
    return path


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("tabular")
    data = _user_csv(tmp / "plant.csv")
    workdir = tmp / "run"
    return workdir, run_plant(data, workdir, "min_accuracy=0.5")


@pytest.mark.slow
def test_tabular_pipeline_on_a_users_csv(tabular_run) -> None:
    workdir, result = tabular_run
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    lines = step_lines(result.stdout)
    assert list(lines) == STEPS
    assert "3 classes" in lines["ingest"]


@pytest.mark.slow
def test_a_label_independent_of_the_features_is_not_blessed_and_not_pushed(tmp_path: Path) -> None:
    """76 % of the rows are 'on_time' whatever the features say: with the defaults (no
    min_accuracy) evaluate refuses the model for want of evidence, says why in its one row,
    and push publishes nothing."""
    rng = np.random.default_rng(11)
    data = tmp_path / "flights.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["distance", "hour", "carrier", "outcome"])
        for _ in range(900):
            writer.writerow([f"{rng.uniform(100, 3000):.1f}", f"{rng.integers(0, 24)}",
                             str(rng.choice(["aa", "bb", "cc"])),
                             "on_time" if rng.random() < 0.763 else "late"])
    workdir = tmp_path / "run"
    result = run_plant(data, workdir)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    lines = step_lines(result.stdout)
    assert list(lines) == STEPS
    evaluate = lines["evaluate"]
    assert re.search(r"NOT BLESSED: accuracy \d+\.\d% \[\d+\.\d%, \d+\.\d%\] on \d+ eval examples "
                     r"does not beat the majority class 'on_time' \(\d+\.\d%\)", evaluate), evaluate
    assert "not pushed: evaluate did not bless the model" in lines["push"]
    assert not list((workdir / "bucket").rglob("*.tflite")), "nothing reaches the bucket"
    (blessing,) = (workdir / "pipeline_root").rglob("evaluate/blessing/NOT_BLESSED")
    assert blessing.read_text().splitlines()[0] in evaluate


@pytest.mark.slow
def test_a_non_numeric_value_stops_the_run_with_its_row(tmp_path: Path) -> None:
    data = _user_csv(tmp_path / "plant.csv", bad_row=200)
    workdir = tmp_path / "run"
    result = run_plant(data, workdir)
    assert result.returncode == 1
    error = result.stderr.strip()
    assert error.count("\n") == 0, error
    # The header is line 1, so row 200 (counted from 0) is line 202; the value is named too.
    assert re.search(r"plant\.csv line 202\b.*'n/a'", error), error
    examples = list((workdir / "pipeline_root").rglob("examples_meta.json"))
    assert examples == [], "a failed ingest leaves no Examples behind"


@pytest.mark.slow
def test_new_data_that_violates_a_curated_schema_stops_the_run(tabular_run, tmp_path: Path) -> None:
    first_run, result = tabular_run
    assert result.returncode == 0, result.stderr
    (schema,) = (first_run / "pipeline_root").rglob("schema.pbtxt")
    data = _user_csv(tmp_path / "plant.csv", sites=("north", "south", "east", "west"))
    workdir = tmp_path / "run"
    result = run_plant(data, workdir, f"schema_path={schema}")
    assert result.returncode == 1
    error = result.stderr.strip()
    assert error.count("\n") == 0, error
    assert "'site'" in error and "anomal" in error
    assert not list((workdir / "pipeline_root").rglob("model_meta.json")), "nothing was trained"


@pytest.mark.slow
def test_a_photo_folder_with_the_defaults_reaches_the_blessing(tmp_path: Path) -> None:
    """180 small colour photos, no parameter given: size and colour come from the photos, the
    schedule gives the few examples enough steps, and the model is blessed and pushed."""
    from tests.helpers.builders import photo_folder

    photos = photo_folder(tmp_path / "photos")
    result = edgeship("run", "vision", "--data", str(photos), "--workdir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    lines = step_lines(result.stdout)
    assert "int8 BLESSED" in lines["quantize"] and "pushed v1" in lines["push"]
    (meta_path,) = (tmp_path / "run" / "pipeline_root").glob("*/ingest/examples/examples_meta.json")
    meta = json.loads(meta_path.read_text())
    assert (meta["image_size"], meta["channels"]) == (32, 3)  # from the photos
    assert "180 inspected images are 32 pixels" in meta["image_shape_from"]["image_size"]
    assert "warning from train" not in result.stdout
