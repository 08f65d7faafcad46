"""Run kfp.local's steps inside this process: ``edgeship run``'s default local runner.

kfp.local's SubprocessRunner starts a new Python for every step, and every step then imports
TensorFlow, TFDV, TFMA and Beam again: on a small table that import is most of a run. This
runner keeps kfp.local's orchestration (the DAG, the placeholders, the artifact layout under the
pipeline root, ``executor_output.json``, its log lines and its error on a failed step) and swaps
only the last move: instead of ``sh -c 'python3 -m kfp.dsl.executor_main ...'`` it compiles the
same component source the subprocess would have written to a file and hands it to the same
``kfp.dsl.executor.Executor``, here. Everything downstream reads the same files.

What a subprocess gave for free, a step gets back here:

- its own temporary folder (``tempfile.tempdir``, which a process computes once) and
  ``_KFP_RUNTIME``, restored afterwards;
- its output: Python's and the native libraries' writes to file descriptor 2 (TensorFlow's C++
  log lines) go where the step's printed lines go, the run log, as they did through the pipe;
- the working folder, environment, umask, signal handlers (Ctrl-C still stops the run), import
  path and file descriptors it started with, whatever it changed (a thread it leaves running
  is named in the log: a process would have waited for it);
- a failure that ends only the step: an exception (or ``sys.exit``, its message printed) becomes
  the failed status kfp.local reports, with the traceback in the log; Ctrl-C still stops the
  run.

State a library keeps in memory (TensorFlow's graph, Keras's name counters) does carry over
from one step to the next; the steps seed what they draw, and a test runs a failing pipeline and
then a good one in one process and checks the good one's results against a fresh process's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from edgeship.pipelines.cache import StepCache

# What kfp.dsl.component_factory's command for a lightweight Python component runs.
_SCRIPT_MARKER = "kfp.dsl.executor_main"


@dataclass(frozen=True)
class StepCommand:
    """What kfp.local would run in a subprocess for one lightweight Python step."""

    function: str
    source: str
    executor_input: dict[str, Any]

    @classmethod
    def parse(cls, command: Sequence[str]) -> StepCommand:
        """Read the component source, function name and executor input from ``command``.

        Raises ValueError for anything but kfp's lightweight-component command (a container
        component has no Python source to run here).
        """
        # ["sh", "-ec", <script>, <source>, *args]; a component that asks for kfp to be
        # installed puts ["sh", "-c", <pip install ... && "$0" "$@">] in front (skipped here:
        # this process has kfp)
        start = next((i for i in range(len(command) - 3) if command[i] == "sh"
                      and command[i + 1] == "-ec" and _SCRIPT_MARKER in command[i + 2]), None)
        if start is None:
            raise ValueError("not a lightweight Python component's command")
        command = command[start:]
        args = list(command[4:])
        values: dict[str, str] = {}
        for flag in ("--executor_input", "--function_to_execute"):
            if flag not in args or args.index(flag) + 1 >= len(args):
                raise ValueError(f"the command has no {flag}")
            values[flag] = args[args.index(flag) + 1]
        executor_input = json.loads(values["--executor_input"])
        if not isinstance(executor_input, dict):
            raise ValueError("--executor_input is not a JSON object")
        return cls(values["--function_to_execute"], command[3], executor_input)

    @property
    def task(self) -> str:
        """The task's name: kfp.local writes its output file into the task's own folder."""
        return Path(self.executor_input["outputs"]["outputFile"]).parent.name


def run_step(step: StepCommand, scratch: Path, log: TextIO | None = None) -> int:
    """Run one step in this process; its exit status (0 on success)."""
    from kfp.dsl.executor import Executor

    namespace: dict[str, Any] = {"__name__": f"edgeship_step_{step.function}"}
    with _as_if_a_new_process(scratch, log):
        try:
            # dont_inherit: this module's `from __future__ import annotations` would turn the
            # step's annotations into strings, and kfp's Executor reads them as types
            code = compile(step.source, f"<component {step.function}>", "exec", dont_inherit=True)
            exec(code, namespace)
            Executor(executor_input=step.executor_input,
                     function_to_execute=namespace[step.function]).execute()
        except SystemExit as stop:  # a step that exits ends itself, not the run
            return _exit_status(stop.code)
        except Exception:  # noqa: BLE001 - any error fails the step, as its process would
            traceback.print_exc(file=sys.stdout)
            return 1
    return 0


def _exit_status(code: object) -> int:
    """What a process's exit status would be for ``sys.exit(code)``: a message is printed and
    is status 1, as Python does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code)
    return 1


@contextlib.contextmanager
def patched_steps(*, in_process: bool, scratch: Path, log: TextIO | None = None,
                  cache: StepCache | None = None) -> Iterator[None]:
    """While active, kfp.local's SubprocessRunner runs each step through here: from ``cache``
    when it holds the step's outputs, else in this process (``in_process``) or in kfp.local's
    own subprocess; a step that succeeds is stored in ``cache``.

    ``log``, when given, receives what in-process steps write to file descriptor 2.
    """
    from kfp.local import subprocess_task_handler

    original: Callable[[list[str]], int] = subprocess_task_handler.run_local_subprocess

    def run_local_subprocess(full_command: list[str]) -> int:
        try:
            step = StepCommand.parse(full_command)
        except ValueError:
            if in_process:
                raise
            return original(full_command)
        key = cache.key(step.function, step.source, step.executor_input) if cache else None
        if cache and key and cache.restore(key, step.executor_input):
            cache.reused.append(step.task)
            print(f"outputs reused from the step cache ({cache.root / key})")
            return 0
        code = run_step(step, scratch, log) if in_process else original(full_command)
        if cache and key and code == 0:
            cache.store(key, step.executor_input)
        return code

    subprocess_task_handler.run_local_subprocess = run_local_subprocess
    try:
        yield
    finally:
        subprocess_task_handler.run_local_subprocess = original


@contextlib.contextmanager
def _as_if_a_new_process(scratch: Path, log: TextIO | None) -> Iterator[None]:
    """What a step's own process would have kept to itself: the environment, working folder,
    temporary folder, umask, signal handlers, import path and file descriptors 1 and 2."""
    saved_environ = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_tempdir = tempfile.tempdir
    saved_path = list(sys.path)
    saved_umask = os.umask(0o022)
    os.umask(saved_umask)
    saved_signals = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    threads = set(threading.enumerate())
    os.environ["_KFP_RUNTIME"] = "true"
    os.environ["TMPDIR"] = str(scratch)
    tempfile.tempdir = str(scratch)
    try:
        with _descriptors_kept(log):
            yield
    finally:
        tempfile.tempdir = saved_tempdir
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.path[:] = saved_path
        os.umask(saved_umask)
        for signum, handler in saved_signals.items():
            if handler is not None:
                signal.signal(signum, handler)
        left = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()
                and not t.daemon]
        if left:  # a process would have waited for them; this one goes on
            print(f"warning: the step left threads running: {', '.join(left)}")


# The signals whose handlers decide how a run stops (Ctrl-C, a kill).
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _descriptors_kept(log: TextIO | None) -> Iterator[None]:
    """File descriptors 1 and 2 as they were after the step, whatever it closed or pointed
    elsewhere; during it, 2 goes to ``log`` (native libraries write there, not to sys.stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if log is not None:
        log.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    if log is not None:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
