"""``edgeship run PIPELINE --orchestrator tfx``: TFX's LocalDagRunner from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeship.errors import UsageError
from edgeship.tfx.run import parse_params
from tests.helpers.ota import subprocess_env


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeship", "run", "sensor", "--orchestrator",
                           "tfx", "--workdir", str(workdir), *args], capture_output=True,
                          text=True, env=subprocess_env(), timeout=1200)


def _rows(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines()
            if line.split()[:1] and line.split()[0] in
            ("Ingest", "Validate", "Train", "Evaluate", "Quantize", "EdgePusher")}


def _states(stdout: str) -> dict[str, str]:
    return {step: line.split()[1] for step, line in _rows(stdout).items()}


@pytest.mark.slow
def test_a_run_publishes_and_a_second_one_comes_from_the_cache(tmp_path: Path) -> None:
    from edgeship.device import Agent

    first = _run(tmp_path, "--param", "epochs=3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert set(_states(first.stdout).values()) == {"COMPLETE"}, first.stdout
    # issue 25: the table says what each step did, as the KFP route's does, and TensorFlow's
    # and Google's clients' ~120 lines of noise go to run.log, not the terminal
    rows = _rows(first.stdout)
    assert rows["Evaluate"].count("BLESSED: accuracy") == 1 and "eval examples" in \
        rows["Evaluate"]
    assert "min_steps=500 asks for more steps than 3 passes" in rows["Train"]
    assert "pushed v1 to " in rows["EdgePusher"] and "quantized variants:" in first.stdout
    assert len(first.stderr.splitlines()) <= 2, first.stderr[-3000:]
    assert "tensorflow" in (tmp_path / "run.log").read_text().lower()
    second = _run(tmp_path, "--param", "epochs=3")
    assert second.returncode == 0, second.stderr[-3000:]
    assert set(_states(second.stdout).values()) == {"CACHED"}, second.stdout
    assert _rows(second.stdout)["Evaluate"].split()[3:] == rows["Evaluate"].split()[3:]
    agent = Agent(str(tmp_path / "device"), str(tmp_path / "bucket"), device_id="d-1",
                  trusted_root=str(tmp_path / "keys" / "root_history" / "1.root.json"))
    assert agent.poll_once().action == "updated"
    assert agent.status()["active"]["version"] == 1


@pytest.mark.parametrize("pair, message", [
    ("train__epochz=3", "train has no parameter 'epochz'"),
    ("epochz=3", "epochz: not a parameter of any step"),
    ("epochs", "expected KEY=VALUE"),
    ("train__epochs=many", "train__epochs=many: expected an integer"),
    ("quantize__variants=int8", "expected a JSON list"),
    ("fail_on_anomalies=maybe", "expected a boolean"),
    ("eval_examples=100", "evaluate and quantize each have a parameter 'eval_examples', with "
                          "different meanings: give evaluate__eval_examples or "
                          "quantize__eval_examples"),
    ("epochs=3&train__epochs=4", "given more than once"),
])
def test_a_bad_param_is_one_usage_error(pair: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_params(pair.split("&"))


def test_params_take_their_steps_types() -> None:
    assert parse_params(["train__epochs=3", "quantize__variants=[\"int8\"]",
                         "validate__fail_on_anomalies=false", "evaluate__min_accuracy=0.5"]) == {
        "train__epochs": 3, "quantize__variants": ["int8"],
        "validate__fail_on_anomalies": False, "evaluate__min_accuracy": 0.5}


def test_a_pipeline_parameter_needs_no_step_name() -> None:
    """The KFP route's names (``--param epochs=3``) reach the step that declares them; a name
    several steps declare alike (Beam's arguments) reaches each."""
    assert parse_params(["epochs=3", "fail_on_anomalies=no", "min_accuracy=0.5",
                         "channel=beta", "beam_pipeline_args=[\"--direct_num_workers=2\"]"]) == {
        "train__epochs": 3, "validate__fail_on_anomalies": False,
        "evaluate__min_accuracy": 0.5, "push__channel": "beta",
        "ingest__beam_pipeline_args": ["--direct_num_workers=2"],
        "validate__beam_pipeline_args": ["--direct_num_workers=2"],
        "evaluate__beam_pipeline_args": ["--direct_num_workers=2"]}
    assert parse_params(["evaluate__eval_examples=100"]) == {"evaluate__eval_examples": 100}


def test_a_bad_param_exits_2_and_leaves_nothing(tmp_path: Path) -> None:
    result = _run(tmp_path / "run", "--param", "epochs=many")
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "edgeship: error: --param epochs=many: expected an integer"]
    assert not (tmp_path / "run").exists()


def test_channel_wins_over_a_param_as_on_the_kfp_route(tmp_path: Path, monkeypatch) -> None:
    """``--channel`` and ``--param channel=...`` together: the flag wins (it once was appended
    as a second ``push__channel``, which the one grammar refuses as given twice)."""
    from edgeship import cli
    from edgeship.tfx import run

    seen: dict[str, object] = {}

    def fake_run_pipeline(kind, workdir, data, label, bucket, keys, params) -> str:
        seen.update(params)
        return "table"

    monkeypatch.setattr(run, "run_pipeline", fake_run_pipeline)
    assert cli.main(["run", "sensor", "--orchestrator", "tfx", "--workdir", str(tmp_path),
                     "--channel", "beta", "--param", "channel=alpha", "--param",
                     "epochs=2"]) == 0
    assert seen == {"push__channel": "beta", "train__epochs": 2}


def test_a_users_recordings_slice_by_their_own_group_column(tmp_path: Path) -> None:
    """The docs' `--param group_column=session` once failed at evaluate: "slice_feature
    'machine_id' is not a feature"."""
    from edgeship.tfx.pipeline import sensor_pipeline

    pipeline = sensor_pipeline(str(tmp_path / "root"), str(tmp_path / "m.sqlite"), "file:///b",
                               "keys", ingest__group_column="session")
    evaluate = next(c for c in pipeline.components if c.id == "Evaluate")
    assert evaluate.exec_properties["slice_feature"] == "session"


def test_a_users_data_publishes_under_its_own_name(tmp_path: Path, monkeypatch) -> None:
    from edgeship import cli
    from edgeship.tfx import run

    seen: dict[str, object] = {}

    def fake_run_pipeline(kind, workdir, data, label, bucket, keys, params) -> str:
        seen.update(params)
        return "table"

    monkeypatch.setattr(run, "run_pipeline", fake_run_pipeline)
    (tmp_path / "Line 4.csv").write_text("t,x,state\n")
    assert cli.main(["run", "sensor", "--orchestrator", "tfx", "--workdir", str(tmp_path / "w"),
                     "--data", str(tmp_path / "Line 4.csv")]) == 0
    assert seen == {"push__model_name": "line-4"}


def _planned(monkeypatch, *argv: str) -> dict[str, dict]:
    """``edgeship run ARGV`` up to the pipeline TFX would run: each step's parameters."""
    from edgeship import cli
    from edgeship.tfx import pipeline, run

    planned: dict[str, dict] = {}

    def fake_run_local(made) -> None:
        planned["name"] = {"pipeline": made.pipeline_info.pipeline_name}
        planned.update({c.id: dict(c.exec_properties) for c in made.components})

    monkeypatch.setattr(pipeline, "run_local", fake_run_local)
    monkeypatch.setattr(run, "summary", lambda metadata_path, seconds: "table")
    assert cli.main(["run", *argv, "--orchestrator", "tfx"]) == 0
    return planned


def test_a_users_table_runs_the_tabular_pipeline(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "Penguins.csv").write_text("bill,island,species\n1,a,x\n")
    planned = _planned(monkeypatch, "tabular", "--workdir", str(tmp_path / "w"), "--data",
                       str(tmp_path / "Penguins.csv"), "--label", "species", "--param",
                       "slice_feature=island", "--param", "epochs=2")
    assert planned["name"] == {"pipeline": "edgeship-tabular"}
    assert planned["Ingest"]["kind"] == "tabular"
    assert planned["Ingest"]["data_path"] == str(tmp_path / "Penguins.csv")
    assert planned["Ingest"]["label"] == "species"
    assert planned["Train"]["epochs"] == 2
    assert planned["Evaluate"]["slice_feature"] == "island"
    assert planned["EdgePusher"]["model_name"] == "penguins"
    assert planned["EdgePusher"]["bucket_url"] == (tmp_path / "w" / "bucket").as_uri()
    assert planned["EdgePusher"]["keys_dir"] == str(tmp_path / "w" / "keys")


def test_an_image_folder_runs_the_vision_pipeline(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    planned = _planned(monkeypatch, "vision", "--workdir", str(tmp_path / "w"), "--data",
                       str(tmp_path / "photos"), "--param", "image_size=32")
    assert planned["name"] == {"pipeline": "edgeship-vision"}
    assert planned["Ingest"]["kind"] == "image"
    assert planned["Ingest"]["image_size"] == 32
    assert planned["Train"]["epochs"] == 20
    assert planned["EdgePusher"]["model_name"] == "photos"


def test_the_flags_win_over_a_param_as_on_the_kfp_route(tmp_path: Path, monkeypatch) -> None:
    """--bucket and --label once lost to ``--param bucket_url=``/``label=`` (TFX took the
    param last); a --param keys_dir is used as it is, and no demo keys are made."""
    from edgeship.edge_pusher import keys

    keys.init_keys(tmp_path / "mine")
    planned = _planned(monkeypatch, "tabular", "--workdir", str(tmp_path / "w"), "--bucket",
                       "file:///flag", "--param", "bucket_url=file:///param", "--label", "y",
                       "--param", "label=z", "--param", f"keys_dir={tmp_path / 'mine'}")
    assert planned["EdgePusher"]["bucket_url"] == "file:///flag"
    assert planned["Ingest"]["label"] == "y"
    assert planned["EdgePusher"]["keys_dir"] == str(tmp_path / "mine")
    assert not (tmp_path / "w" / "keys").exists()
    param_bucket = _planned(monkeypatch, "sensor", "--workdir", str(tmp_path / "w2"),
                            "--param", "bucket_url=file:///param")
    assert param_bucket["EdgePusher"]["bucket_url"] == "file:///param"


@pytest.mark.parametrize("argv, message", [
    (["vision", "--label", "kind"], "edgeship: error: --label: the vision pipeline takes "
                                    "labels from folders"),
    (["tabular", "--data", "nowhere.csv"], "edgeship: error: nowhere.csv: no such file or "
                                           "folder"),
])
def test_a_wrong_flag_is_one_line_and_leaves_nothing(tmp_path: Path, argv, message) -> None:
    result = subprocess.run([sys.executable, "-m", "edgeship", "run", *argv, "--orchestrator",
                             "tfx", "--workdir", str(tmp_path / "run")], capture_output=True,
                            text=True, env=subprocess_env(), timeout=600, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "run").exists()


def _table(path: Path, rows: int = 600) -> None:
    """A small table whose label follows its features (a number and a string) with a margin,
    so that int8's rounding flips no eval example (one of ~130 is 0.75 points of the 1-point
    budget)."""
    import random

    rng = random.Random(5)
    lines = ["temperature,site,outcome"]
    for i in range(rows):
        site = ("north", "south", "east")[i % 3]
        score = rng.choice((-1, 1)) * rng.uniform(3, 12)
        temperature = 21 + score - (4 if site == "north" else 0)
        lines.append(f"{temperature:.2f},{site},{'hot' if score > 0 else 'cold'}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_a_users_table_runs_end_to_end_under_tfx(tmp_path: Path) -> None:
    """``edgeship run tabular --orchestrator tfx`` on a user's CSV: every step runs, the model
    publishes under the file's name and a device activates it; TensorFlow's and absl's lines
    stay in run.log, the terminal shows the table only."""
    from edgeship.device import Agent

    _table(tmp_path / "plant.csv")
    result = subprocess.run(
        [sys.executable, "-m", "edgeship", "run", "tabular", "--orchestrator", "tfx",
         "--workdir", str(tmp_path / "w"), "--data", str(tmp_path / "plant.csv"), "--label",
         "outcome", "--param", "epochs=2"],
        capture_output=True, text=True, env=subprocess_env(), timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(_states(result.stdout).values()) == {"COMPLETE"}, result.stdout
    rows = _rows(result.stdout)
    assert "BLESSED: accuracy" in rows["Evaluate"]
    assert "pushed v1 to " in rows["EdgePusher"] and "models/plant/stable/1" in \
        rows["EdgePusher"]
    assert result.stderr == ""
    log = (tmp_path / "w" / "run.log").read_text()
    for noise in ("absl", "tensorflow"):
        assert noise in log.lower() and noise not in result.stdout.lower(), noise
    agent = Agent(str(tmp_path / "device"), str(tmp_path / "w" / "bucket"), device_id="d-1",
                  trusted_root=str(tmp_path / "w" / "keys" / "root_history" / "1.root.json"))
    assert agent.poll_once().action == "updated"
    assert agent.status()["active"]["name"] == "plant"
