"""Run a pipeline on this machine with ``kfp.local`` (no cluster, no Docker), its steps in this
process or each in its own (``RUNNERS``).

Every output of a run lands under its work folder: the pipeline root with each task's artifacts,
and ``run.log`` with everything the steps printed. The caller gets per-step wall times (read
from kfp.local's own log lines) and each step's summary (the JSON string it returned).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edgeship.components import progress
from edgeship.errors import ERROR_DIR_ENV, InputError, UsageError, read_step_errors
from edgeship.pipelines.cache import StepCache
from edgeship.pipelines.inprocess import patched_steps

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EVENT = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d\.\d{3}) - \w+ - "
    r"(?:Executing task '(?P<start>[^']+)'|Task '(?P<end>[^']+)' finished with status (?P<st>\w+))"
)


# How `edgeship run` executes steps: in this process (the default), or kfp.local's subprocesses.
RUNNERS = ("in-process", "kfp-local")


@dataclass
class StepResult:
    name: str
    status: str
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    task_dir: Path | None = None
    cached: bool = False  # its outputs came from the step cache


@dataclass
class RunResult:
    pipeline: str
    workdir: Path
    run_dir: Path | None
    log_path: Path
    steps: list[StepResult]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def new_workdir(base: str | Path = ".edgeship/runs", pipeline: str = "run") -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(base) / f"{pipeline}-{stamp}"


class _LogWithProgress(io.TextIOBase):
    """Everything kfp.local prints goes to the run log; step starts and ends, and the progress
    lines long steps print (``edgeship.components.progress``), also to ``progress``, so that a
    person watching a minutes-long run sees where it is."""

    def __init__(self, log: TextIO, progress: TextIO | None) -> None:
        self._log, self._progress, self._pending = log, progress, ""

    def write(self, text: str) -> int:
        self._log.write(_ANSI.sub("", text))  # kfp colours its lines; a log file has no colour
        if self._progress is not None:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                line = _ANSI.sub("", line).strip()
                event = _EVENT.match(line)
                update = progress.parse(line)
                if event and event["start"]:
                    print(f"... {event['start']} running", file=self._progress, flush=True)
                elif event:
                    print(f"... {event['end']} {event['st']}", file=self._progress, flush=True)
                elif update:
                    print(f"... {update[0]}: {update[1]}", file=self._progress, flush=True)
        return len(text)

    def flush(self) -> None:
        self._log.flush()


def run_local(
    pipeline: str,
    arguments: dict[str, Any],
    workdir: str | Path,
    progress: TextIO | None = None,
    runner: str = "in-process",
    cache: StepCache | None = None,
) -> RunResult:
    """Run the named pipeline to its end (or first failure) under ``workdir``.

    Step starts and ends are echoed to ``progress`` (e.g. ``sys.stdout``) when given.
    ``runner`` is one of :data:`RUNNERS`: ``in-process`` runs the steps in this process
    (``edgeship.pipelines.inprocess``), ``kfp-local`` each in its own Python, as kfp.local does
    (what a cluster's containers do); both write the same artifacts. With ``cache``, a step
    whose inputs, parameters and code are unchanged is reused (``edgeship.pipelines.cache``).
    """
    if runner not in RUNNERS:
        raise UsageError(f"runner {runner!r}: expected one of {', '.join(RUNNERS)}")
    from kfp import local

    from edgeship.pipelines.registry import get_pipeline

    pipeline_fn = get_pipeline(pipeline)
    workdir = Path(workdir).resolve()
    pipeline_root = workdir / "pipeline_root"
    pipeline_root.mkdir(parents=True, exist_ok=True)
    earlier_runs = {p for p in pipeline_root.iterdir() if p.is_dir()}
    log_path = workdir / "run.log"
    errors_dir = workdir / "errors"  # where a step that fails on bad input leaves its line
    shutil.rmtree(errors_dir, ignore_errors=True)  # a failure of an earlier run is not ours
    scratch = workdir / "tmp"  # the steps' temporary files (kfp's too): under the workdir
    scratch.mkdir(exist_ok=True)
    tempfile.gettempdir()  # this process keeps its own temp folder; only the steps use scratch
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    error = ""
    with (
        open(log_path, "a") as log,  # a second run into the same workdir adds to the log
        contextlib.redirect_stdout(_LogWithProgress(log, progress)),
        warnings.catch_warnings(),
        _environ(ERROR_DIR_ENV, str(errors_dir)),  # the steps are subprocesses: they inherit it
        _environ("TMPDIR", str(scratch)),
        patched_steps(in_process=runner == "in-process", scratch=scratch, log=log, cache=cache),
    ):
        start = log.tell()
        print(f"=== edgeship run {pipeline}, {dt.datetime.now().isoformat(timespec='seconds')}",
              file=log, flush=True)
        warnings.simplefilter("ignore")
        try:
            pipeline_fn(**arguments)
        except RuntimeError as err:
            error = str(err)
    shutil.rmtree(scratch, ignore_errors=True)
    with open(log_path) as log:
        log.seek(start)
        text = log.read()  # this run's part
    if error:
        error = _step_error(errors_dir) or _ANSI.sub("", error) + f" (see {log_path})"
    # this run's folder: not the last by name (another pipeline's run in the same workdir may
    # sort after it)
    run_dirs = sorted(p for p in pipeline_root.iterdir() if p.is_dir() and p not in earlier_runs)
    run_dir = run_dirs[-1] if run_dirs else None
    steps = _steps(text, run_dir)
    for step in steps:
        step.cached = cache is not None and step.name in cache.reused
    return RunResult(pipeline, workdir, run_dir, log_path, steps, error)


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _step_error(errors_dir: Path) -> str:
    """The failed step's own one-line error, from the file it left (``step_errors``)."""
    records = read_step_errors(errors_dir) if errors_dir.is_dir() else []
    return records[-1]["message"] if records else ""


def _steps(log_text: str, run_dir: Path | None) -> list[StepResult]:
    started: dict[str, dt.datetime] = {}
    steps: list[StepResult] = []
    for line in log_text.splitlines():
        match = _EVENT.match(line.strip())
        if not match:
            continue
        when = dt.datetime.strptime(match["time"], "%H:%M:%S.%f")
        if match["start"]:
            started[match["start"]] = when
            continue
        name = match["end"]
        seconds = (when - started.get(name, when)).total_seconds() % 86400  # across midnight
        task_dir = run_dir / name if run_dir else None
        steps.append(StepResult(name, match["st"], seconds, _summary(task_dir), task_dir))
    return steps


def _summary(task_dir: Path | None) -> dict[str, Any]:
    """The JSON string a step returned, from kfp.local's executor output file."""
    if task_dir is None:
        return {}
    output = task_dir / "executor_output.json"
    if not output.is_file():
        return {}
    values = json.loads(output.read_text()).get("parameterValues", {})
    if "Output" not in values:  # a step with named outputs (push) returns them as they are
        return values
    try:
        summary = json.loads(values["Output"])
    except (TypeError, json.JSONDecodeError):
        return {}
    return summary if isinstance(summary, dict) else {}


def require_data(path: str) -> None:
    """Fail early, on the host, when a --data path does not exist (ingest reads local paths
    and the bundled ``builtin:`` datasets only)."""
    if path and not path.startswith("builtin:") and not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
