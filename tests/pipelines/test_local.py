"""The local runner: progress and step times from kfp.local's log, a failed step's own line from
the error file it left."""

import io
from pathlib import Path

import pytest

from edgeship.components.progress import Progress
from edgeship.errors import ERROR_DIR_ENV, InputError, step_errors
from edgeship.pipelines.local import _ANSI, _LogWithProgress, _step_error, _steps

LOG = (
    "10:00:00.000 - INFO - Executing task \x1b[96m'ingest'\x1b[0m\n"
    "    some output of the step\n"
    "10:00:12.500 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status "
    "\x1b[92mSUCCESS\x1b[0m\n"
    "10:00:12.600 - INFO - Executing task 'validate'\n"
    "    edgeship.errors.InputError: validate: anomalies in Split-eval: 'site': new value\n"
    "10:00:40.100 - INFO - Task 'validate' finished with status FAILURE\n"
)


def test_progress_shows_each_step_start_and_end_and_the_log_keeps_everything() -> None:
    log, progress = io.StringIO(), io.StringIO()
    sink = _LogWithProgress(log, progress)
    for chunk in (LOG[:50], LOG[50:170], LOG[170:]):  # lines arrive in arbitrary pieces
        sink.write(chunk)
    assert log.getvalue() == _ANSI.sub("", LOG)  # the log file has no colour codes
    assert progress.getvalue().splitlines() == [
        "... ingest running",
        "... ingest SUCCESS",
        "... validate running",
        "... validate FAILURE",
    ]


def test_progress_lines_of_a_long_step_reach_the_console() -> None:
    log, console = io.StringIO(), io.StringIO()
    sink = _LogWithProgress(log, console)
    out = io.StringIO()
    Progress("validate", every=0, out=out).update("120000 examples so far")
    cut = LOG.index("    edgeship.errors")  # inside the validate step
    sink.write(LOG[:cut] + "    " + out.getvalue() + LOG[cut:])
    assert console.getvalue().splitlines()[2:4] == [
        "... validate running",
        "... validate: 120000 examples so far (0 s)",
    ]
    assert out.getvalue() in log.getvalue()


def test_step_times_come_from_the_log(tmp_path: Path) -> None:
    text = LOG.replace("\x1b[96m", "").replace("\x1b[92m", "").replace("\x1b[0m", "")
    steps = _steps(text, tmp_path)
    assert [(s.name, s.status) for s in steps] == [("ingest", "SUCCESS"), ("validate", "FAILURE")]
    assert abs(steps[0].seconds - 12.5) < 1e-6 and abs(steps[1].seconds - 27.5) < 1e-6


def test_the_users_error_comes_from_the_file_the_step_left(tmp_path: Path, monkeypatch) -> None:
    """No traceback text is parsed: the step writes its one line, the runner reads it."""
    errors = tmp_path / "errors"
    monkeypatch.setenv(ERROR_DIR_ENV, str(errors))
    message = "validate: anomalies in Split-eval: 'site': new value"
    with pytest.raises(InputError), step_errors("validate"):
        raise InputError(message)
    assert _step_error(errors) == message
    with pytest.raises(ZeroDivisionError), step_errors("train"):  # a bug leaves no user line
        1 / 0  # noqa: B018
    assert [p.name for p in errors.iterdir()] == ["validate.json"]


@pytest.mark.slow
def test_a_second_run_adds_to_the_log_and_temporary_files_stay_in_the_workdir(
        tmp_path: Path, monkeypatch) -> None:
    """kfp.local writes each step's program to ``$TMPDIR/tmp.*/ephemeral_component.py``, and a
    run into the same workdir used to overwrite the first run's run.log."""
    from kfp import dsl

    from edgeship.pipelines import local, registry

    @dsl.component(base_image="python:3.11")
    def where_temp_files_go() -> str:
        import tempfile

        return tempfile.gettempdir()

    @dsl.pipeline(name="tiny")
    def tiny() -> None:
        where_temp_files_go()

    monkeypatch.setitem(registry.PIPELINES, "tiny", tiny)
    workdir = tmp_path / "work"
    first = local.run_local("tiny", {}, workdir)
    second = local.run_local("tiny", {}, workdir)
    assert not first.error and not second.error
    log = (workdir / "run.log").read_text()
    assert log.count("=== edgeship run tiny, ") == 2 and "\x1b[" not in log
    assert [s.status for s in second.steps] == ["SUCCESS"]  # this run's steps only
    outputs = list((workdir / "pipeline_root").rglob("executor_output.json"))
    assert outputs and all(str(workdir / "tmp") in o.read_text() for o in outputs)
    assert not (workdir / "tmp").exists()  # scratch, removed after the run
