"""The publisher's and device's subcommands through the edgeship command line's parser."""

from __future__ import annotations

import json
import subprocess

import pytest

from edgeship import cli
from edgeship.errors import EdgeshipError, OtaError
from tests.helpers import REPO
from tests.helpers.ota import PY, subprocess_env


def run(argv: list[str]) -> int:
    """The command's handler, called as ``edgeship.cli.main`` calls it, errors propagating."""
    args = cli.build_parser().parse_args(argv)
    return args.func(args)


def test_keys_publish_poll_status_end_to_end(tmp_path, tiny_models, capsys, model_bytes):
    kd, bucket, state = tmp_path / "keys", tmp_path / "bucket", tmp_path / "state"
    assert run(["keys", "init", str(kd)]) == 0
    assert "ship" in capsys.readouterr().out
    model = str(tiny_models / "model_int8.tflite")
    assert run(["publish", model, "--bucket", f"file://{bucket}", "--keys", str(kd),
                "--name", "sensor", "--version", "1", "--hardware", "cpu", "--channel",
                "stable", "--rollout", "100", "--pipeline-run", "r1", "--create"]) == 0
    assert "models/sensor/stable/1/cpu/model.tflite" in capsys.readouterr().out
    poll = ["device", "poll", "--repo", f"file://{bucket}", "--trusted-root",
            str(kd / "root.json"), "--state-dir", str(state), "--device-id", "d1",
            "--hardware", "cpu", "--channel", "stable", "--once"]
    assert run(poll) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "updated"
    assert run(["device", "status", "--state-dir", str(state)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["active"]["name"] == "sensor" and status["active"]["version"] == 1
    assert status["active"]["hardware"] == "cpu" and status["active"]["slot"] == "a"
    assert len(status["active"]["sha256"]) == 64
    assert status["last_successful_check"] and status["last_error"] is None
    assert run(["repo", "refresh", "--bucket", f"file://{bucket}", "--keys", str(kd),
                "--timestamp-expiry", "6"]) == 0
    assert run(["keys", "rotate", "timestamp", "--keys", str(kd), "--bucket",
                f"file://{bucket}"]) == 0
    assert "root is now v2" in capsys.readouterr().out
    assert run(poll) == 0


def test_user_errors_are_one_line(tmp_path, tiny_models):
    kd = tmp_path / "keys"
    run(["keys", "init", str(kd)])
    with pytest.raises(OtaError) as e:
        run(["publish", str(tmp_path / "missing.tflite"), "--bucket", f"file://{tmp_path}/b",
             "--keys", str(kd), "--name", "m", "--version", "1"])
    assert "\n" not in str(e.value) and "missing.tflite" in str(e.value)
    with pytest.raises(OtaError, match="keys init"):
        run(["publish", str(tiny_models / "model_int8.tflite"), "--bucket",
             f"file://{tmp_path}/b", "--keys", str(tmp_path / "nokeys"), "--name", "m",
             "--version", "1"])
    with pytest.raises(OtaError, match="read-only"):
        run(["repo", "refresh", "--bucket", "http://127.0.0.1:9/b", "--keys", str(kd)])
    with pytest.raises(SystemExit):
        run(["publish", "f", "--bucket", "b", "--keys", "k", "--name", "m", "--version", "x"])


@pytest.mark.parametrize("flag, value", [("--name", "my model"), ("--hardware", "../cpu"),
                                         ("--channel", "")])
def test_publish_checks_every_name_before_it_reads_the_model(tmp_path, monkeypatch, flag, value):
    """A typo is one line, and LiteRT (with its console line) is never loaded for it."""
    from edgeship import litert

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(litert, "load", never)
    args = {"--name": "m", "--hardware": "cpu", "--channel": "stable", "--rollout": "100",
            flag: value}
    with pytest.raises(OtaError) as e:
        run(["publish", str(tmp_path / "not-read.tflite"), "--bucket", f"file://{tmp_path}/b",
             "--keys", str(tmp_path / "k"), "--version", "1",
             *[x for pair in args.items() for x in pair]])
    assert "not-read.tflite" not in str(e.value)


def test_publish_to_a_bucket_without_a_repository_needs_create(tmp_path, tiny_models, keys_dir,
                                                               capsys):
    """A mistyped bucket URL must not become a new repository that no device polls."""
    model, typo = str(tiny_models / "model_int8.tflite"), tmp_path / "bukcet"
    publish = ["publish", model, "--bucket", f"file://{typo}", "--keys", str(keys_dir),
               "--name", "sensor", "--version", "1"]
    with pytest.raises(OtaError, match="holds no repository .*repo create.*--create"):
        run(publish)
    assert not typo.exists() or not (typo / "metadata" / "timestamp.json").exists()
    assert run([*publish, "--create"]) == 0
    assert "models/sensor/stable/1/cpu/model.tflite" in capsys.readouterr().out
    assert run([*publish[:-1], "2"]) == 0  # from then on, no --create needed


@pytest.mark.parametrize("flag, value", [
    ("--rollout", "150"), ("--rollout", "5.5"), ("--lock-wait", "nan"), ("--lock-wait", "-1")])
def test_publish_numbers_out_of_range_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(["publish", "m", "--bucket", "b", "--keys", "k", "--name",
                                       "m", "--version", "1", flag, value])
    assert e.value.code == 2 and flag in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [
    ("--interval", "-1"), ("--interval", "0"), ("--interval", "nan"), ("--poll-timeout", "inf"),
    ("--file-timeout", "0"), ("--min-rate", "-5"), ("--rate-grace", "nan"), ("--interval", "1e10")])
def test_device_poll_numbers_out_of_range_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(["device", "poll", "--repo", "file:///r", "--trusted-root",
                                       "r", "--state-dir", "s", "--device-id", "d", flag, value])
    assert e.value.code == 2 and flag in capsys.readouterr().err


@pytest.mark.parametrize("name", ["sensor\n", "sensor\r", "a/b"])
def test_publish_refuses_a_name_with_a_trailing_newline(tmp_path, tiny_models, keys_dir, name):
    with pytest.raises(OtaError, match="invalid model name"):
        run(["publish", str(tiny_models / "model_int8.tflite"), "--bucket",
             f"file://{tmp_path}/b", "--keys", str(keys_dir), "--name", name, "--version", "1",
             "--create"])
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_standalone_main_prints_error_and_exits_1(tmp_path):
    proc = subprocess.run([PY, "-m", "edgeship", "device", "status", "--state-dir",
                           str(tmp_path / "nope")], capture_output=True, text=True,
                          env=subprocess_env(), cwd=REPO, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr


def test_publish_with_report_records_metrics(tmp_path, tiny_models, keys_dir, repo, bucket):
    assert run(["publish", str(tiny_models / "model_int8.tflite"), "--bucket", bucket.url,
                "--keys", str(keys_dir), "--name", "sensor", "--version", "auto",
                "--report", str(tiny_models / "quantization_report.json"), "--create"]) == 0
    custom = repo.target("models/sensor/stable/1/cpu/model.tflite").custom
    assert custom["metrics"]["accuracy"] == "0.9"
    assert custom["metrics"]["float_accuracy"] == "0.91"
    with pytest.raises(EdgeshipError, match="nope.json: cannot read the quantization report"):
        run(["publish", str(tiny_models / "model_int8.tflite"), "--bucket", bucket.url,
             "--keys", str(keys_dir), "--name", "sensor", "--version", "2",
             "--report", str(tmp_path / "nope.json")])


def test_main_refuses_a_non_http_device_repo_in_one_line(tmp_path, capsys):
    code = cli.main(["device", "poll", "--repo", "s3://x/y", "--trusted-root",
                     str(tmp_path / "root.json"), "--state-dir", str(tmp_path / "state"),
                     "--device-id", "d1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("edgeship: error: ") and "s3://x/y" in err


@pytest.mark.parametrize("value", ["inf", "1e300", "nan", "-1"])
def test_main_refuses_an_impossible_expiry_as_a_usage_error(tmp_path, capsys, value):
    """argparse's own error (exit 2, usage plus one error line), not a traceback."""
    with pytest.raises(SystemExit) as e:
        cli.main(["repo", "refresh", "--bucket", f"file://{tmp_path}/b", "--keys",
                  str(tmp_path / "keys"), "--timestamp-expiry", value])
    assert e.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert errors[0].startswith("edgeship repo refresh: error: argument --timestamp-expiry: ")


@pytest.mark.parametrize("version", ["99999999999999999999999999", str(2**63), "0", "1.5"])
def test_publish_refuses_a_version_outside_1_to_2_63_minus_1(tmp_path, capsys, version):
    with pytest.raises(SystemExit) as e:
        cli.main(["publish", str(tmp_path / "m.tflite"), "--bucket", f"file://{tmp_path}/b",
                  "--keys", str(tmp_path / "k"), "--name", "m", "--version", version])
    assert e.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [f"edgeship publish: error: argument --version: invalid version "
                      f"'{version}': must be an integer from 1 to {2**63 - 1}"]
    assert not (tmp_path / "b").exists()


def test_refresh_refuses_a_bucket_without_a_repository_and_create_makes_one(tmp_path, capsys):
    """A mistyped URL used to become a whole new repository, recorded as applied."""
    kd = tmp_path / "keys"
    run(["keys", "init", str(kd)])
    typo = tmp_path / "bukcet"
    with pytest.raises(OtaError, match="holds no repository .* check the URL"):
        run(["repo", "refresh", "--bucket", f"file://{typo}", "--keys", str(kd)])
    assert not (typo / "metadata").exists() or not any((typo / "metadata").iterdir())
    assert run(["repo", "create", "--bucket", f"file://{typo}", "--keys", str(kd)]) == 0
    assert run(["repo", "refresh", "--bucket", f"file://{typo}", "--keys", str(kd)]) == 0
    with pytest.raises(OtaError, match="already holds a repository"):
        run(["repo", "create", "--bucket", f"file://{typo}", "--keys", str(kd)])


def test_keys_of_another_repository_are_named_as_such(tmp_path, tiny_models):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    run(["keys", "init", str(mine)])
    run(["keys", "init", str(theirs)])
    bucket = f"file://{tmp_path / 'bucket'}"
    assert run(["repo", "create", "--bucket", bucket, "--keys", str(mine)]) == 0
    with pytest.raises(OtaError, match="belongs to another repository"):
        run(["repo", "refresh", "--bucket", bucket, "--keys", str(theirs)])


@pytest.mark.parametrize("device_id", ["d1\n", "a/b", "+", "#", ""])
def test_device_poll_refuses_a_device_id_that_is_not_one_name(tmp_path, device_id):
    with pytest.raises(OtaError, match="invalid device id"):
        run(["device", "poll", "--repo", f"file://{tmp_path}/b", "--trusted-root",
             str(tmp_path / "root.json"), "--state-dir", str(tmp_path / "s"), "--device-id",
             device_id, "--once"])
