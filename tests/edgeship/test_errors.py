"""The one error model: a user error is one line and exit 1; a bug says so and how to see it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeship import cli, errors


def test_every_user_facing_error_derives_from_one_root() -> None:
    from edgeship.device.agent import Refusal

    for kind in (errors.InputError, errors.OtaError, errors.NotFound, errors.PreconditionFailed,
                 errors.ModelLoadError, errors.SelfTestMismatch, errors.StepFailed, Refusal):
        assert issubclass(kind, errors.EdgeshipError), kind
    assert errors.InputError("a\n  b").args == ("a b",)  # one line, whatever it wraps


def test_a_user_error_is_one_line_with_the_prefix_and_exit_1(tmp_path, capsys) -> None:
    assert cli.main(["device", "status", "--state-dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err == f"edgeship: error: state directory {tmp_path / 'none'} does not exist\n"


def test_a_bug_is_reported_as_internal_and_debug_shows_the_traceback(monkeypatch, capsys):
    from edgeship.device import state

    def broken(*_args, **_kwargs):
        raise KeyError("slot")

    monkeypatch.setattr(state, "device_status", broken)
    assert cli.main(["device", "status", "--state-dir", "."]) == 1
    assert capsys.readouterr().err == (
        "edgeship: internal error: KeyError: 'slot' (rerun with --debug for the traceback)\n")
    with pytest.raises(KeyError):
        cli.main(["--debug", "device", "status", "--state-dir", "."])


def test_python_m_edgeship_is_the_same_command_line(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "edgeship", "device", "status", "--state-dir",
                           str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("edgeship: error: state directory")
    assert proc.stderr.count("\n") == 1
