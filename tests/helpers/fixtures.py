"""Shared fixtures: tiny real models, keys, repositories, an S3 server, an HTTP server, and
the wheel users install (built once per test process)."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from edgeship.device.agent import Agent
from edgeship.edge_pusher import keys
from edgeship.edge_pusher.buckets import FileBucket, S3Bucket
from edgeship.edge_pusher.repository import Repository
from tests.helpers.ota import HERE, PY, release


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Real int8 .tflite models, made once per test session with TensorFlow in a subprocess so
    that no test process imports TF (the device code under test never does)."""
    folder = tmp_path_factory.mktemp("edge_pusher_models")
    subprocess.run([PY, str(HERE / "make_models.py"), str(folder)], check=True,
                   capture_output=True, timeout=600)
    return folder


@pytest.fixture(scope="session")
def model_bytes(tiny_models) -> dict[str, bytes]:
    return {"a": (tiny_models / "model_int8.tflite").read_bytes(),
            "b": (tiny_models / "model_int8_b.tflite").read_bytes()}


@pytest.fixture(scope="session")
def _session_keys(tmp_path_factory) -> Path:
    kd = tmp_path_factory.mktemp("keys-template") / "keys"
    keys.init_keys(kd)
    return kd


@pytest.fixture
def keys_dir(tmp_path, _session_keys) -> Path:
    """A fresh copy of one key set (Ed25519 generation is cheap, but copying is cheaper)."""
    kd = tmp_path / "keys"
    shutil.copytree(_session_keys, kd)
    return kd


@pytest.fixture
def bucket(tmp_path) -> FileBucket:
    return FileBucket(str(tmp_path / "bucket"))


@pytest.fixture
def repo(bucket, keys_dir) -> Repository:
    return Repository(bucket, str(keys_dir), lock_wait=5)


@pytest.fixture
def publish(repo, tiny_models):
    def _publish(version: int, which: str = "a", **kw):
        return repo.publish([release(tiny_models, version, which, **kw)])
    return _publish


@pytest.fixture
def make_agent(tmp_path, keys_dir, bucket):
    def _make(state: str = "device", repo_url: str | None = None, **kw) -> Agent:
        kw.setdefault("device_id", "dev-1")
        return Agent(str(tmp_path / state), repo_url or bucket.url,
                     trusted_root=str(keys_dir / "root_history" / "1.root.json"), **kw)
    return _make


# --------------------------------------------------------------------------- servers


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_serve():
    """Serve a folder over real HTTP on 127.0.0.1; returns the base URL."""
    servers = []

    def _serve(directory: str, handler=None) -> str:
        h = functools.partial(handler or _QuietHandler, directory=directory)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield _serve
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's threaded S3 server over real HTTP on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint, monkeypatch, request) -> S3Bucket:
    """A fresh S3 bucket; credentials and endpoint come from the AWS_* environment."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    name = "ota-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    boto3.client("s3").create_bucket(Bucket=name)
    return S3Bucket(name, "fleet")


# --------------------------------------------------------------------------- the wheel


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    from tests.helpers.wheel import build_wheel  # tomllib: Python 3.11+, not the TFX tests'

    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def installed_tree(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked: the layout an install puts into site-packages."""
    tree = tmp_path_factory.mktemp("installed")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tree)
    return tree
