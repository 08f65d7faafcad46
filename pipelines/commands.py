"""``edgeship run`` and ``edgeship compile`` (``submit`` lives in ``edgeship.pipelines.submit``).

:mod:`edgeship.cli` calls :func:`register_run` and :func:`register_compile` once each; the
handlers are :func:`cmd_run` and :func:`cmd_compile`. Registering imports nothing heavy: kfp,
TensorFlow and TFX are imported when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import sys
import time
from collections.abc import Generator
from pathlib import Path

from edgeship.errors import InputError, StepFailed
from edgeship.pipelines.local import RUNNERS
from edgeship.subcommands import Subparsers

PIPELINE_NAMES = ("sensor", "vision", "tabular")


def register_run(sub: Subparsers) -> None:
    """``edgeship run PIPELINE``: kfp.local, or TFX's LocalDagRunner."""
    run = sub.add_parser("run", help="run a pipeline locally (kfp.local, no cluster)")
    run.add_argument("pipeline", choices=PIPELINE_NAMES)
    run.add_argument("--data", help="CSV file (tabular, sensor) or image folder (vision)")
    run.add_argument("--label", help="label column of a CSV")
    run.add_argument("--bucket", help="OTA bucket URL (default: file://WORKDIR/bucket)")
    run.add_argument("--keys", help="signing keys folder (default: demo keys in WORKDIR/keys)")
    run.add_argument("--channel", help="release channel of the published model")
    run.add_argument("--workdir", help="where every output of the run goes")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other pipeline parameter, typed as the pipeline declares it (repeatable; "
        "with tfx, a name two steps declare differently is given as STEP__NAME=VALUE)",
    )
    run.add_argument(
        "--orchestrator",
        choices=("kfp", "tfx"),
        default="kfp",
        help="kfp.local (default), or TFX's LocalDagRunner (in TFX's environment, see "
        "docs/tfx.md)",
    )
    run.add_argument(
        "--runner",
        choices=RUNNERS,
        default=RUNNERS[0],
        help="with kfp: run every step in this process (in-process, default: TensorFlow is "
        "imported once), or each in its own Python as kfp.local and a cluster do (kfp-local)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="run every step, even one whose inputs, parameters and code are unchanged since a "
        "run whose outputs the step cache holds (push always runs)",
    )
    run.set_defaults(func=cmd_run)


def register_compile(sub: Subparsers) -> None:
    """``edgeship compile PIPELINE``: KFP IR YAML, without importing TensorFlow."""
    comp = sub.add_parser("compile", help="compile a pipeline to KFP IR YAML")
    comp.add_argument("pipeline", choices=PIPELINE_NAMES)
    comp.add_argument("-o", "--output", help="output file (default: PIPELINE.yaml)")
    comp.set_defaults(func=cmd_compile)


def cmd_compile(args: argparse.Namespace) -> int:
    from edgeship.pipelines.compile import compile_pipeline

    path = compile_pipeline(args.pipeline, args.output or f"{args.pipeline}.yaml")
    print(f"wrote {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.orchestrator == "tfx":
        return _run_tfx(args)
    from google.protobuf import json_format

    from edgeship.pipelines.cache import StepCache
    from edgeship.pipelines.local import new_workdir, require_data, run_local
    from edgeship.pipelines.registry import get_pipeline
    from edgeship.pipelines.submit import declared_parameters, parse_params

    if args.data:
        require_data(args.data)
    pipeline_fn = get_pipeline(args.pipeline)
    # The same typed parsing as `submit`, from the same declared parameters of the pipeline.
    declared = declared_parameters(json_format.MessageToDict(pipeline_fn.pipeline_spec))
    workdir = Path(args.workdir) if args.workdir else new_workdir(pipeline=args.pipeline)
    workdir = workdir.resolve()
    arguments = parse_params(args.param, declared)
    if args.data:
        arguments["data_path"] = str(Path(args.data).resolve())
        # a user's data publishes under its own name, not the bundled data's
        named = model_name_from(Path(args.data))
        if named:
            arguments.setdefault("model_name", named)
    if args.label:
        if "label" not in declared:
            raise InputError(f"--label: the {args.pipeline} pipeline takes labels from folders")
        arguments["label"] = args.label
    if args.channel:
        arguments["channel"] = args.channel
    # --bucket/--keys win; otherwise a --param value; otherwise a demo bucket and keys.
    if args.bucket or "bucket_url" not in arguments:
        arguments["bucket_url"] = args.bucket or (workdir / "bucket").as_uri()
    if args.keys:
        arguments["keys_dir"] = _checked_keys(Path(args.keys).resolve())
    elif "keys_dir" not in arguments:
        arguments["keys_dir"] = _demo_keys(workdir)

    print(f"edgeship run {args.pipeline}: working in {workdir}", flush=True)
    cache = None if args.no_cache else StepCache.open()
    result = run_local(args.pipeline, arguments, workdir, progress=sys.stdout, runner=args.runner,
                       cache=cache)
    from edgeship.pipelines.report import format_run

    print()
    print(format_run(result))
    if not result.ok:
        raise StepFailed(result.error)
    return 0


def _run_tfx(args: argparse.Namespace) -> int:
    """The pipeline under TFX (edgeship.tfx), in TFX's environment: no kfp imported. The flags
    mean what they mean on the KFP route, and win over a --param as they do there."""
    if importlib.util.find_spec("tfx") is None:
        raise InputError("--orchestrator tfx needs TFX (tfx is missing): pip install "
                         "'edgeship[tfx]' on Python 3.10, or make tfx")
    if args.label and args.pipeline == "vision":
        raise InputError(f"--label: the {args.pipeline} pipeline takes labels from folders")
    if args.data:
        from edgeship.pipelines.local import require_data

        require_data(args.data)
    workdir = (Path(args.workdir) if args.workdir else Path(".edgeship/runs") /
               f"{args.pipeline}-tfx-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    quiet = contextlib.nullcontext() if args.debug else _output_to(workdir / "run.log")
    try:
        with quiet:  # importing TFX prints TensorFlow's and Google's clients' lines
            try:
                from edgeship.tfx.run import parse_params, run_pipeline
            except ImportError as err:  # TFX is there, but not all it needs (e.g. TFMA)
                raise InputError(f"--orchestrator tfx needs TFX's stack ({err.name} is "
                                 "missing): pip install 'edgeship[tfx]' on Python 3.10, or "
                                 "make tfx") from None
            params = parse_params(args.param)
    except InputError:
        if created:  # a mistyped --param leaves nothing behind
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    if args.channel:  # --channel wins over a --param, as on the KFP route
        params["push__channel"] = args.channel
    named = model_name_from(Path(args.data)) if args.data else ""
    if named:  # as on the KFP route: a user's data publishes under its own name
        params.setdefault("push__model_name", named)
    # --bucket/--keys win; otherwise a --param value; otherwise a demo bucket and keys
    given_bucket, given_keys = params.pop("push__bucket_url", ""), params.pop("push__keys_dir", "")
    bucket = str(args.bucket or given_bucket or (workdir / "bucket").as_uri())
    keys = (_checked_keys(Path(args.keys).resolve()) if args.keys else
            str(given_keys) if given_keys else _demo_keys(workdir))
    data = str(Path(args.data).resolve()) if args.data else None
    print(f"edgeship run {args.pipeline} --orchestrator tfx: working in {workdir} (the steps' "
          "output goes to run.log)", flush=True)
    with contextlib.nullcontext() if args.debug else _output_to(workdir / "run.log"):
        table = run_pipeline(args.pipeline, workdir, data, args.label, bucket, keys, params)
    print(table)
    print(f"bucket: {bucket}")
    return 0


@contextlib.contextmanager
def _output_to(log: Path) -> Generator[None]:
    """Send everything printed meanwhile (TensorFlow's and Beam's C++ logs, Google clients'
    warnings: about 120 lines a TFX run) to ``log``, as the KFP route keeps its steps' output
    in ``run.log``; the terminal keeps the summary and an error's one line."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def model_name_from(data: Path) -> str:
    """A model name from a data file's stem or a folder's name ('Plant Sensors 2026.csv':
    'plant-sensors-2026'): what ``edgeship.contract.check_name`` accepts, or '' when nothing
    of it is usable."""
    stem = data.resolve().stem if data.is_file() else data.resolve().name
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip(".-_")[:64].rstrip(".-_")
    return name if name and name[0].isalnum() else ""


def _checked_keys(keys: Path) -> str:
    """Fail before the first step, not at push minutes later, when --keys cannot sign."""
    from edgeship.edge_pusher.keys import check_online_keys

    return check_online_keys(keys)


def _demo_keys(workdir: Path) -> str:
    """Fresh keys for a self-contained local run (a real fleet passes --keys)."""
    from edgeship.edge_pusher.keys import init_keys

    keys = workdir / "keys"
    if not keys.exists():
        init_keys(keys)
    return str(keys)
