"""The in-process runner: kfp.local's orchestration, each step run in this process as if it had
a process of its own (temporary folder, environment, working folder, file descriptor 2)."""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.

import json
import os
import signal
from pathlib import Path

import pytest

from edgeship.pipelines.inprocess import StepCommand

pytest.importorskip("kfp", reason="the pipelines extra (kfp) is not installed")


def test_only_a_lightweight_python_components_command_is_run_here() -> None:
    with pytest.raises(ValueError, match="lightweight"):
        StepCommand.parse(["python3", "-m", "trainer", "--epochs", "3"])
    with pytest.raises(ValueError, match="--function_to_execute"):
        StepCommand.parse(["sh", "-ec", "python3 -m kfp.dsl.executor_main", "def f(): ...",
                           "--executor_input", "{}"])


def test_the_command_kfp_builds_is_read_back_whole() -> None:
    from kfp import dsl
    from kfp.dsl import component_factory

    @dsl.component(base_image="python:3.11")
    def add(a: int, b: int) -> int:
        return a + b

    command, args = component_factory._get_command_and_args_for_lightweight_component(
        add.python_func)
    args = [json.dumps({"inputs": {}}) if a.startswith("{{$") else a for a in args]
    step = StepCommand.parse([*command, *args])
    assert step.function == "add"
    assert "def add(a: int, b: int) -> int:" in step.source
    assert step.executor_input == {"inputs": {}}


def _tiny_pipelines():
    """Components that change what a process owns, fail, exit, and report what they see."""
    from kfp import dsl

    @dsl.component(base_image="python:3.11")
    def mess_up(how: str) -> str:
        import os
        import signal
        import sys
        import tempfile

        os.environ["EDGESHIP_LEAKED"] = "yes"
        os.environ.pop("EDGESHIP_KEPT", None)
        os.chdir("/")
        tempfile.tempdir = "/nonexistent"
        os.umask(0)
        signal.signal(signal.SIGINT, lambda signum, frame: None)
        sys.path.insert(0, "/planted")
        os.write(2, b"a native library writes this to fd 2\n")
        if how == "raise":
            raise RuntimeError("this step fails")
        if how == "exit":
            sys.exit("config.yaml: no such file")
        if how == "close":
            os.close(1)
            os.close(2)
        return "done"

    @dsl.component(base_image="python:3.11")
    def observe() -> str:
        import json
        import os
        import signal
        import sys
        import tempfile

        umask = os.umask(0)
        os.umask(umask)
        return json.dumps({"cwd": os.getcwd(), "tmp": tempfile.gettempdir(),
                           "leaked": os.environ.get("EDGESHIP_LEAKED", ""),
                           "kept": os.environ.get("EDGESHIP_KEPT", ""), "umask": umask,
                           "sigint": repr(signal.getsignal(signal.SIGINT)),
                           "planted": "/planted" in sys.path})

    @dsl.pipeline(name="mess")
    def mess(how: str = "raise") -> None:
        mess_up(how=how)

    @dsl.pipeline(name="look")
    def look() -> None:
        observe()

    return mess, look


@pytest.mark.parametrize(("how", "status"), [("raise", "FAILURE"), ("exit", "FAILURE"),
                                              ("return", "SUCCESS"), ("close", "SUCCESS")])
def test_a_step_cannot_change_what_the_next_step_sees(
        how: str, status: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    from edgeship.pipelines import local, registry

    mess, look = _tiny_pipelines()
    monkeypatch.setitem(registry.PIPELINES, "mess", mess)
    monkeypatch.setitem(registry.PIPELINES, "look", look)
    monkeypatch.setenv("EDGESHIP_KEPT", "kept")
    monkeypatch.chdir(tmp_path)
    umask = os.umask(0o022)  # the usual one, whatever this shell has
    request.addfinalizer(lambda: os.umask(umask))
    workdir = tmp_path / "work"

    messed = local.run_local("mess", {"how": how}, workdir)
    assert [s.status for s in messed.steps] == [status]
    assert bool(messed.error) == (status == "FAILURE")
    seen = local.run_local("look", {}, workdir)

    assert not seen.error, seen.error
    assert seen.steps[0].summary == {
        "cwd": str(tmp_path), "tmp": str(workdir / "tmp"), "leaked": "", "kept": "kept",
        "umask": 0o022, "sigint": repr(signal.getsignal(signal.SIGINT)), "planted": False}
    log = (workdir / "run.log").read_text()
    assert "a native library writes this to fd 2" in log  # in the log, not the terminal
    if how == "raise":
        assert "RuntimeError: this step fails" in log
    if how == "exit":
        assert "config.yaml: no such file" in log  # sys.exit's message, as Python prints it


@pytest.mark.parametrize("runner", ["in-process", "kfp-local"])
def test_both_runners_write_the_same_outputs(runner: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeship.pipelines import local, registry

    _, look = _tiny_pipelines()
    monkeypatch.setitem(registry.PIPELINES, "look", look)
    monkeypatch.chdir(tmp_path)
    result = local.run_local("look", {}, tmp_path / "work", runner=runner)
    assert not result.error, result.error
    assert [s.status for s in result.steps] == ["SUCCESS"]
    output = result.steps[0].task_dir / "executor_output.json"  # kfp.local's layout
    assert json.loads(output.read_text())["parameterValues"]["Output"]


def test_an_unknown_runner_is_a_usage_error(tmp_path: Path) -> None:
    from edgeship.errors import UsageError
    from edgeship.pipelines import local

    with pytest.raises(UsageError, match="in-process, kfp-local"):
        local.run_local("sensor", {}, tmp_path, runner="docker")
