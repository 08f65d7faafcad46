"""Contract test: the real ``kfp.Client`` against a fake KFP v2beta1 API server.

The server implements only the endpoints ``edgeship submit`` calls (healthz, experiments list and
create, runs create and get) and checks every request body against KFP's published API models in
``kfp-server-api``: no field the API does not define, required fields present, enums valid. The
tests then assert what was sent (the compiled IR, the typed parameters, the experiment) and that
``--wait`` follows the run's states to its end.
"""

import argparse
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import kfp_server_api
import pytest
import yaml
from kfp import compiler, dsl

from edgeship import cli
from edgeship.errors import InputError, RunFailed, UsageError
from edgeship.image import IMAGE
from edgeship.pipelines import submit

API = "/apis/v2beta1"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def _echo(data_path: str, epochs: int, min_accuracy: float, quick: bool, channels: list) -> str:
    return f"{data_path} {epochs} {min_accuracy} {quick} {channels}"


@dsl.pipeline(name="contract-demo")
def _demo_pipeline(
    data_path: str,
    epochs: int = 2,
    min_accuracy: float = 0.8,
    quick: bool = False,
    channels: list = ["x"],  # noqa: B006 - KFP reads list defaults from the signature
) -> None:
    _echo(data_path=data_path, epochs=epochs, min_accuracy=min_accuracy, quick=quick,
          channels=channels)


def _check_model(body: dict, model: str) -> Any:
    """Refuse fields the API model lacks; return the body deserialized into the model."""
    cls = getattr(kfp_server_api.models, model)
    allowed = set(cls.attribute_map.values())
    unknown = set(body) - allowed
    assert not unknown, f"{model}: fields not in KFP's API: {sorted(unknown)}"

    class _Resp:
        data = json.dumps(body)

    return kfp_server_api.ApiClient().deserialize(_Resp(), model)


class FakeKfp:
    """In-memory KFP API state plus a record of every request."""

    def __init__(self, states: list[str]):
        self.requests: list[tuple[str, str, Any]] = []
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.states = list(states)  # what successive GETs of a run report
        self.errors: list[str] = []

    def seed_experiment(self, name: str) -> str:
        exp_id = str(uuid.uuid4())
        self.experiments[exp_id] = {"experiment_id": exp_id, "display_name": name}
        return exp_id

    def handle(self, method: str, url: str, body: Any) -> tuple[int, dict]:
        parsed = urlparse(url)
        path, query = parsed.path, parse_qs(parsed.query)
        self.requests.append((method, path, body))
        if method == "GET" and path == f"{API}/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and path == f"{API}/experiments":
            flt = json.loads(query["filter"][0])
            (pred,) = flt["predicates"]
            # The filter is KFP's Filter proto as JSON: EQUALS may be sent by name or number.
            assert pred["key"] == "display_name" and pred["operation"] in ("EQUALS", 1)
            found = [e for e in self.experiments.values()
                     if e["display_name"] == pred["stringValue"]]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if method == "POST" and path == f"{API}/experiments":
            exp = _check_model(body, "V2beta1Experiment")
            assert exp.display_name, "an experiment needs display_name"
            assert not exp.experiment_id, "the server assigns experiment_id"
            exp_id = self.seed_experiment(exp.display_name)
            return 200, self.experiments[exp_id]
        if method == "POST" and path == f"{API}/runs":
            run = _check_model(body, "V2beta1Run")
            assert run.display_name, "a run needs display_name"
            assert run.experiment_id in self.experiments, "run names an unknown experiment"
            assert (run.pipeline_spec is None) != (run.pipeline_version_reference is None), (
                "a run needs exactly one of pipeline_spec or pipeline_version_reference"
            )
            _check_model(body.get("runtime_config") or {}, "V2beta1RuntimeConfig")
            run_id = str(uuid.uuid4())
            self.runs[run_id] = dict(body, run_id=run_id, state="PENDING")
            return 200, self.runs[run_id]
        if method == "GET" and path.startswith(f"{API}/runs/"):
            run_id = path.rsplit("/", 1)[1]
            if run_id not in self.runs:
                return 404, {"error": "run not found", "code": 5, "message": "run not found"}
            if self.states:
                self.runs[run_id]["state"] = self.states.pop(0)
            _check_model({"state": self.runs[run_id]["state"]}, "V2beta1Run")
            return 200, self.runs[run_id]
        return 404, {"error": f"not implemented: {method} {path}", "code": 5}


@pytest.fixture
def fake_kfp() -> Iterator[tuple[FakeKfp, str]]:
    state = FakeKfp(states=[])

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            try:
                status, payload = state.handle(method, self.path, body)
            except AssertionError as err:  # a contract violation: record it and answer 400
                state.errors.append(str(err))
                status, payload = 400, {"error": str(err), "code": 3, "message": str(err)}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pkg") / "demo.yaml"
    compiler.Compiler().compile(_demo_pipeline, str(path))
    return path


def _cli(argv: list[str]) -> int:
    """Run ``edgeship submit`` through its argparse registration, as the CLI does."""
    parser = argparse.ArgumentParser(prog="edgeship")
    sub = parser.add_subparsers(dest="command", required=True)
    submit.register_submit(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def _posts(state: FakeKfp, path: str) -> list[Any]:
    return [body for method, p, body in state.requests if method == "POST" and p == path]


def test_contract_submit_sends_ir_typed_params_and_new_experiment(fake_kfp, package, capsys):
    state, host = fake_kfp
    code = _cli([
        "submit", "demo", "--host", host, "--package", str(package), "--experiment", "nightly",
        "--param", "data_path=s3://data/sensor.csv", "--param", "epochs=3",
        "--param", "min_accuracy=0.75", "--param", "quick=true", "--param", 'channels=["a","b"]',
    ])
    assert code == 0
    assert state.errors == []
    assert ("GET", f"{API}/healthz", None) in state.requests
    (exp_body,) = _posts(state, f"{API}/experiments")
    assert exp_body["display_name"] == "nightly"
    (run_body,) = _posts(state, f"{API}/runs")
    (exp_id,) = state.experiments
    assert run_body["experiment_id"] == exp_id
    assert run_body["runtime_config"]["parameters"] == {
        "data_path": "s3://data/sensor.csv", "epochs": 3, "min_accuracy": 0.75,
        "quick": True, "channels": ["a", "b"],
    }
    compiled = yaml.safe_load(package.read_text())
    sent = run_body["pipeline_spec"]
    assert sent["pipelineInfo"] == compiled["pipelineInfo"]
    assert sent["root"]["dag"] == compiled["root"]["dag"]
    images = {e["container"]["image"] for e in sent["deploymentSpec"]["executors"].values()}
    assert images == {IMAGE}
    (run_id,) = state.runs
    assert f"{host}/#/runs/details/{run_id}" in capsys.readouterr().out


def test_contract_submit_reuses_an_existing_experiment(fake_kfp, package):
    state, host = fake_kfp
    exp_id = state.seed_experiment("edgeship")
    code = _cli(["submit", "demo", "--host", host, "--package", str(package),
                 "--param", "data_path=gs://x"])
    assert code == 0 and state.errors == []
    assert _posts(state, f"{API}/experiments") == []
    (run_body,) = _posts(state, f"{API}/runs")
    assert run_body["experiment_id"] == exp_id
    # Unset parameters are left to the pipeline's declared defaults.
    assert run_body["runtime_config"]["parameters"] == {"data_path": "gs://x"}


def test_contract_wait_follows_states_to_success(fake_kfp, package, capsys):
    state, host = fake_kfp
    state.states = ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]
    code = _cli(["submit", "demo", "--host", host, "--package", str(package),
                 "--param", "data_path=x", "--wait", "--poll-interval", "0.01"])
    assert code == 0 and state.errors == []
    out = capsys.readouterr().out
    run_id = next(iter(state.runs))
    assert [line.split(": ")[-1] for line in out.splitlines() if line.startswith("run ")][1:] == [
        "PENDING", "RUNNING", "SUCCEEDED"
    ]
    gets = [p for m, p, _ in state.requests if m == "GET" and p == f"{API}/runs/{run_id}"]
    assert len(gets) == 4


@pytest.mark.parametrize("final", ["FAILED", "CANCELED"])
def test_contract_wait_exits_nonzero_when_the_run_fails(fake_kfp, package, capsys, final):
    state, host = fake_kfp
    state.states = ["RUNNING", final]
    code = cli.main(["submit", "demo", "--host", host, "--package", str(package),
                     "--param", "data_path=x", "--wait", "--poll-interval", "0.01"])
    assert code == 1
    captured = capsys.readouterr()
    # The handler raises RunFailed and the root prints it, as every other error.
    (run_id,) = state.runs
    assert captured.err.splitlines() == [
        f"edgeship: error: run {run_id} ended {final}: {host}/#/runs/details/{run_id}"]
    assert captured.out.rstrip().endswith(final)


def test_contract_wait_failure_is_raised_not_printed(fake_kfp, package, capsys):
    state, host = fake_kfp
    state.states = ["FAILED"]
    with pytest.raises(RunFailed, match="ended FAILED"):
        _cli(["submit", "demo", "--host", host, "--package", str(package),
              "--param", "data_path=x", "--wait", "--poll-interval", "0.01"])
    assert capsys.readouterr().err == ""


def test_contract_wait_gives_up_after_the_timeout(fake_kfp, package):
    state, host = fake_kfp
    state.states = ["RUNNING"] * 1000
    with pytest.raises(InputError, match=r"still RUNNING after 0.05s"):
        _cli(["submit", "demo", "--host", host, "--package", str(package),
              "--param", "data_path=x", "--wait", "--timeout", "0.05", "--poll-interval", "0.01"])


@pytest.mark.parametrize(
    "params,message",
    [
        (["epochs=3"], "missing required parameter.*data_path"),
        (["data_path=x", "epochs=three"], r"epochs=three: expected an integer"),
        (["data_path=x", "quick=maybe"], r"quick=maybe: expected a boolean"),
        (["data_path=x", "channels={}"], r"channels=\{\}: expected a JSON list"),
        (["data_path=x", "epoch=3"], r"epoch: not a parameter .*known: channels, data_path"),
        (["data_path=x", "data_path=y"], "data_path: given more than once"),
        (["data_path"], "expected KEY=VALUE"),
    ],
)
def test_bad_params_are_refused_before_anything_is_sent(fake_kfp, package, params, message):
    state, host = fake_kfp
    argv = ["submit", "demo", "--host", host, "--package", str(package)]
    for p in params:
        argv += ["--param", p]
    with pytest.raises(UsageError, match=message):
        _cli(argv)
    assert state.requests == []


def test_unreachable_host_is_one_readable_error(package, unused_port, caplog):
    """Once preceded by three urllib3 "Retrying ..." warnings."""
    import logging

    with caplog.at_level(logging.WARNING), pytest.raises(
            InputError, match=rf"cannot reach Kubeflow Pipelines at http://127.0.0.1:{unused_port}"):
        _cli(["submit", "demo", "--host", f"http://127.0.0.1:{unused_port}",
              "--package", str(package), "--param", "data_path=x"])
    assert [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")] == []


def test_not_a_pipeline_package_names_the_file(tmp_path):
    bad = tmp_path / "notes.yaml"
    bad.write_text("hello: world\n")
    with pytest.raises(InputError, match="notes.yaml: not a compiled KFP pipeline"):
        _cli(["submit", "demo", "--host", "http://127.0.0.1:9", "--package", str(bad)])


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
