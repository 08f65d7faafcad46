"""``edgeship submit``: compile a pipeline and run it on Kubeflow Pipelines with ``kfp.Client``.

The run is created from the compiled IR itself (no pipeline upload), so every submission carries
exactly the spec that was compiled from this checkout. Parameters given as ``KEY=VALUE`` are
converted with the types the IR declares, so a typo or a wrong type fails here, not in a pod.
kfp is imported inside functions, so registering the command costs nothing: ``edgeship --help``
stays fast, and on a device install (no kfp) ``submit`` says which extra it needs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from edgeship.errors import InputError, RunFailed, UsageError
from edgeship.params import ParamKind
from edgeship.params import parse_params as parse_pairs
from edgeship.subcommands import Subparsers

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "edgeship"
#: Seconds between two looks at a run's state while following it (``--wait``).
POLL_INTERVAL = 5.0
SUCCESS_STATES = frozenset({"SUCCEEDED"})
# SKIPPED counts as a failure: a skipped run produced no model.
FAILURE_STATES = frozenset({"FAILED", "ERROR", "CANCELED", "SKIPPED"})

@dataclass(frozen=True)
class Submission:
    """What ``submit`` created: the run, where to see it, and its last known state."""

    run_id: str
    experiment_id: str
    url: str
    state: str


def read_pipeline_spec(package: str | Path) -> dict[str, Any]:
    """Return the PipelineSpec (first YAML document) of a compiled KFP IR package."""
    import yaml

    path = Path(package)
    try:
        with path.open() as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except FileNotFoundError:
        raise InputError(f"{path}: no such pipeline package") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not YAML ({str(err).splitlines()[0]})") from None
    spec = docs[0] if docs else None
    if not isinstance(spec, dict) or "root" not in spec or "pipelineInfo" not in spec:
        raise InputError(f"{path}: not a compiled KFP pipeline (no root/pipelineInfo)")
    return spec


def declared_parameters(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pipeline's input parameters: name -> {parameterType, defaultValue?, isOptional?}."""
    return dict(spec["root"].get("inputDefinitions", {}).get("parameters", {}))


#: KFP's IR parameter types, as the one ``KEY=VALUE`` grammar names them.
KFP_KINDS: dict[str, ParamKind] = {
    "STRING": "string", "NUMBER_INTEGER": "integer", "NUMBER_DOUBLE": "number",
    "BOOLEAN": "boolean", "LIST": "list", "STRUCT": "object",
}


def parse_params(pairs: list[str], declared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` strings into typed run parameters by the IR's declared types
    (:func:`edgeship.params.parse_params`, the grammar ``run --orchestrator tfx``
    reads too).

    Unknown keys, repeated keys and missing required parameters are refused, each with a
    message naming the parameter.
    """
    given = {pair.partition("=")[0].strip() for pair in pairs}
    kinds: dict[str, ParamKind] = {}
    for name, d in declared.items():
        kind = d.get("parameterType", "STRING")
        if kind in KFP_KINDS:
            kinds[name] = KFP_KINDS[kind]
        elif name in given:
            raise UsageError(f"--param {name}: the pipeline declares unsupported type {kind}")
    required = [name for name, d in declared.items()
                if "defaultValue" not in d and not d.get("isOptional")]
    return parse_pairs(pairs, kinds, required=required)


def _state_name(run: Any) -> str:
    state = getattr(run, "state", None)
    return str(state) if state else "PENDING"


def connect(host: str, ui_host: str | None = None) -> Any:
    """A ``kfp.Client`` for ``host`` that has answered KFP's healthz (else an InputError)."""
    import kfp
    import kfp_server_api
    import urllib3

    if not host.startswith(("http://", "https://")):
        raise InputError(f"--host {host}: expected an http:// or https:// URL")
    try:
        # The constructor already asks healthz (single- vs multi-user); ask once more so a
        # context file that sets a namespace still gets a liveness check.
        with warnings_quiet():
            client = kfp.Client(host=host, ui_host=ui_host)
            client.get_kfp_healthz(sleep_duration=1)
    except (urllib3.exceptions.HTTPError, kfp_server_api.ApiException, TimeoutError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"cannot reach Kubeflow Pipelines at {host}: {reason}") from None
    return client


@contextlib.contextmanager
def warnings_quiet() -> Generator[None]:
    """Silence kfp.Client's warning, on every construction, that it needs a KFP server >= 2.0.0b2
    (the cluster manifests deploy 2.5.0, manifests/kfp/kustomization.yaml), and urllib3's
    "Retrying ..." lines while an unreachable host is retried: the one error line says it."""
    import logging
    import warnings

    pool_log = logging.getLogger("urllib3.connectionpool")
    level = pool_log.level
    pool_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        pool_log.setLevel(level)


def submit_package(
    client: Any,
    package: str | Path,
    *,
    params: dict[str, Any],
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    pipeline_root: str | None = None,
    ui_host: str,
) -> Submission:
    """Get or create ``experiment`` and create a run of the compiled ``package`` in it."""
    import kfp_server_api

    # kfp prints its own "Experiment details:" lines; we print one URL ourselves.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            exp = client.create_experiment(name=experiment)
            result = client.create_run_from_pipeline_package(
                str(package),
                arguments=params,
                run_name=run_name,
                experiment_id=exp.experiment_id,
                pipeline_root=pipeline_root,
            )
        except kfp_server_api.ApiException as err:
            raise InputError(f"KFP refused the run: {_api_reason(err)}") from None
    run = result.run_info
    url = f"{ui_host.rstrip('/')}/#/runs/details/{run.run_id}"
    return Submission(run.run_id, exp.experiment_id, url, _state_name(run))


def _api_reason(err: Any) -> str:
    """The server's message from an ApiException body, else its HTTP status line."""
    try:
        body = json.loads(err.body or "{}")
        message = body.get("message") or body.get("error")
    except (TypeError, ValueError):
        message = None
    return f"HTTP {err.status}: {message or err.reason}"


def follow(
    client: Any,
    run_id: str,
    *,
    timeout: float | None,
    poll_interval: float = POLL_INTERVAL,
    out: TextIO | None = None,
) -> str:
    """Poll the run until it reaches a terminal state; print each state change; return it."""
    out = out or sys.stdout
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while True:
        state = _state_name(client.get_run(run_id))
        if state != last:
            print(f"run {run_id}: {state}", file=out, flush=True)
            last = state
        if state in SUCCESS_STATES or state in FAILURE_STATES:
            return state
        if deadline is not None and time.monotonic() >= deadline:
            raise InputError(
                f"run {run_id} still {state} after {timeout:g}s (it keeps running on the cluster)"
            )
        time.sleep(poll_interval)


def submit(
    package: str | Path,
    *,
    host: str,
    params: list[str] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    pipeline_root: str | None = None,
    ui_host: str | None = None,
    wait: bool = False,
    timeout: float | None = None,
    poll_interval: float = POLL_INTERVAL,
    out: TextIO | None = None,
) -> Submission:
    """Submit a compiled pipeline package; with ``wait``, follow it to its end."""
    out = out or sys.stdout
    spec = read_pipeline_spec(package)
    typed = parse_params(params or [], declared_parameters(spec))
    client = connect(host, ui_host)
    name = run_name or f"{spec['pipelineInfo']['name']} {time.strftime('%Y-%m-%d %H:%M:%S')}"
    sub = submit_package(
        client, package, params=typed, experiment=experiment, run_name=name,
        pipeline_root=pipeline_root, ui_host=ui_host or host,
    )
    print(f"run {sub.run_id} in experiment '{experiment}': {sub.url}", file=out, flush=True)
    if not wait:
        return sub
    state = follow(client, sub.run_id, timeout=timeout, poll_interval=poll_interval, out=out)
    return Submission(sub.run_id, sub.experiment_id, sub.url, state)


def cmd_submit(args: argparse.Namespace) -> int:
    """``edgeship submit``: exit 0 when submitted (or, with --wait, when the run succeeded)."""
    with tempfile.TemporaryDirectory(prefix="edgeship-submit-") as tmp:
        if args.package:
            package = Path(args.package)
        else:
            from edgeship.pipelines.compile import compile_pipeline

            package = Path(tmp) / f"{args.pipeline}.yaml"
            compile_pipeline(args.pipeline, package)
        sub = submit(
            package,
            host=args.host,
            params=args.param,
            experiment=args.experiment,
            run_name=args.run_name,
            pipeline_root=args.pipeline_root,
            ui_host=args.ui_host,
            wait=args.wait,
            timeout=args.timeout,
            poll_interval=args.poll_interval,
        )
    if args.wait and sub.state not in SUCCESS_STATES:
        raise RunFailed(f"run {sub.run_id} ended {sub.state}: {sub.url}")
    return 0


def register_submit(subparsers: Subparsers) -> None:
    """``edgeship submit PIPELINE``: kfp is imported only when it runs."""
    p = subparsers.add_parser(
        "submit",
        help="compile a pipeline and run it on Kubeflow Pipelines",
        description="Compile PIPELINE (or take --package) and create a run on the KFP at --host.",
    )
    p.add_argument("pipeline", help="pipeline name (sensor, vision, tabular)")
    p.add_argument("--host", required=True,
                   help="KFP endpoint, e.g. http://localhost:31380 on the kind cluster")
    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                   help=f"experiment to run in, created if missing (default: {DEFAULT_EXPERIMENT})")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline parameter, typed by the pipeline's declaration (repeatable)")
    p.add_argument("--wait", action="store_true",
                   help="follow the run to its end; exit 1 unless it SUCCEEDED")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="with --wait: give up after S seconds (the run keeps going)")
    p.add_argument("--package", metavar="FILE",
                   help="submit this compiled IR YAML instead of compiling PIPELINE")
    p.add_argument("--run-name", help="display name of the run (default: pipeline + time)")
    p.add_argument("--pipeline-root",
                   help="override the pipeline root, e.g. minio://mlpipeline/v2/artifacts")
    p.add_argument("--ui-host",
                   help="base URL of the KFP UI for the printed link (default: --host)")
    p.add_argument("--poll-interval", type=float, default=POLL_INTERVAL, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_submit)
