"""The edgeship command line: argument handling, compile without TensorFlow, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from edgeship.errors import InputError
from edgeship.pipelines.submit import parse_params
from tests.helpers import REPO

# Run a snippet in a fresh interpreter where importing any of these modules fails loudly.
BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ModuleNotFoundError('blocked import: ' + name, name=name)
sys.meta_path.insert(0, Block())
"""


def run_blocked(code: str, blocked: set[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=blocked) + code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def edgeship(*args: str) -> subprocess.CompletedProcess:
    """The command line in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "edgeship", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_params_are_typed_by_the_declared_parameter_types() -> None:
    declared = {
        "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 30},
        "eval_ratio": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.2},
        "label": {"parameterType": "STRING", "defaultValue": "label"},
        "flag": {"parameterType": "BOOLEAN", "defaultValue": True},
    }
    params = parse_params(["epochs=5", "eval_ratio=0.5", "label=y", "flag=false"], declared)
    assert params == {"epochs": 5, "eval_ratio": 0.5, "label": "y", "flag": False}


@pytest.mark.parametrize(
    "pair,message",
    [
        ("epochs", "expected KEY=VALUE"),
        ("nope=1", "not a parameter"),
        ("epochs=x", "expected an integer"),
    ],
)
def test_bad_params_name_the_parameter(pair: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_params([pair], {"epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 30}})


@pytest.mark.parametrize("pipeline", ["sensor", "vision", "tabular"])
def test_compile_writes_ir_without_importing_tensorflow(pipeline: str, tmp_path: Path) -> None:
    out = tmp_path / f"{pipeline}.yaml"
    argv = ["compile", pipeline, "-o", str(out)]
    code = f"from edgeship.cli import main; raise SystemExit(main({argv!r}))"
    result = run_blocked(code, {"tensorflow", "keras", "apache_beam", "tensorflow_data_validation"})
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for step in ("ingest", "validate", "train", "evaluate", "quantize", "push"):
        assert f"comp-{step}" in text


def test_device_commands_work_without_the_ml_stack(tmp_path: Path) -> None:
    code = (
        "from edgeship.cli import main; "
        f"raise SystemExit(main(['device', 'status', '--state-dir', '{tmp_path}']))"
    )
    blocked = {"tensorflow", "keras", "apache_beam", "tensorflow_data_validation", "kfp", "boto3"}
    result = run_blocked(code, blocked)
    assert "blocked import" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["active"] is None  # a device that never installed a model


def test_pipeline_commands_on_a_device_install_say_what_is_missing(tmp_path: Path) -> None:
    code = (
        "from edgeship.cli import main; "
        f"raise SystemExit(main(['run', 'tabular', '--workdir', '{tmp_path / 'run'}']))"
    )
    result = run_blocked(code, {"tensorflow", "keras", "apache_beam", "kfp", "google"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "edgeship: error: `edgeship run` needs the pipelines extra (no module named "
        "'google.protobuf'): pip install 'edgeship[pipelines]'"
    ]
    assert not (tmp_path / "run").exists()


@pytest.fixture
def run_arguments(monkeypatch) -> dict:
    """What `edgeship run` hands the local runner (which does not run)."""
    from edgeship.pipelines import local, report

    seen: dict = {}

    def fake_run_local(name, arguments, workdir, progress, runner, cache):
        seen.update(arguments)
        return types.SimpleNamespace(ok=True)

    monkeypatch.setattr(local, "run_local", fake_run_local)
    monkeypatch.setattr(report, "format_run", lambda result: "")
    return seen


def test_bucket_and_keys_given_as_params_are_used(tmp_path: Path, run_arguments: dict) -> None:
    """--param bucket_url/keys_dir reach the run; no demo keys are made beside them."""
    from edgeship import cli

    seen = run_arguments
    workdir = tmp_path / "run"
    argv = ["run", "tabular", "--workdir", str(workdir), "--param", "bucket_url=s3://fleet/ota"]
    assert cli.main([*argv, "--param", f"keys_dir={tmp_path / 'keys'}"]) == 0
    assert seen["bucket_url"] == "s3://fleet/ota"
    assert seen["keys_dir"] == str(tmp_path / "keys")
    assert not (workdir / "keys").exists()


@pytest.mark.parametrize(("data", "given", "published"), [
    ("Plant Sensors 2026.csv", [], "plant-sensors-2026"),
    ("photos", [], "photos"),
    ("__.csv", [], None),  # nothing usable: the pipeline's own default
    ("plant.csv", ["--param", "model_name=motor"], "motor"),  # the user's word wins
])
def test_a_users_data_publishes_under_its_own_name(tmp_path: Path, run_arguments: dict,
                                                   data: str, given: list[str],
                                                   published: str | None) -> None:
    from edgeship import cli
    from edgeship.contract import check_name

    seen = run_arguments
    path = tmp_path / data
    if data.endswith(".csv"):
        path.write_text("x,label\n1,a\n")
    else:
        path.mkdir()
    argv = ["run", "tabular", "--data", str(path), "--workdir", str(tmp_path / "run"), *given]
    assert cli.main([*argv, "--param", f"keys_dir={tmp_path / 'keys'}"]) == 0
    assert seen.get("model_name") == published
    if published:
        assert check_name("model", published) == published


def test_pipeline_names_of_the_cli_are_the_registered_pipelines() -> None:
    from edgeship.pipelines.commands import PIPELINE_NAMES
    from edgeship.pipelines.registry import PIPELINES

    assert list(PIPELINE_NAMES) == list(PIPELINES)


def test_missing_data_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = edgeship("run", "tabular", "--data", str(tmp_path / "x.csv"), "--workdir",
                      str(tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "x.csv: no such file or folder" in result.stderr


def test_compile_to_a_non_yaml_name_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "sub" / "sensor.txt"
    result = edgeship("compile", "sensor", "-o", str(out))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"edgeship: error: {out}: the IR file name must end in .yaml (KFP's package format)"
    ]
    assert not (tmp_path / "new").exists()


def test_keys_that_cannot_sign_stop_the_run_before_any_step(tmp_path: Path) -> None:
    keys = str(tmp_path / "none")
    result = edgeship("run", "tabular", "--keys", keys, "--workdir", str(tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"edgeship: error: no root.json in {tmp_path / 'none'}: "
        f"run 'edgeship keys init {tmp_path / 'none'}'"
    ]
    assert not (tmp_path / "run").exists()


def test_keys_from_keys_init_pass_the_early_check(tmp_path: Path) -> None:
    from edgeship.edge_pusher.keys import init_keys
    from edgeship.pipelines.commands import _checked_keys

    init_keys(tmp_path / "keys")
    assert _checked_keys(tmp_path / "keys") == str(tmp_path / "keys")
