"""Faults a device must survive: killed mid-download and mid-switch, bucket offline, disk full."""

from __future__ import annotations

import errno
import http.server
import os
import signal
import subprocess
import threading
import time

import pytest

from edgeship.cli import main
from tests.helpers.ota import PY, subprocess_env
from tests.helpers.threads import ended


@pytest.fixture
def v1_device(publish, make_agent):
    publish(1)
    agent = make_agent()
    assert agent.poll_once().version == 1
    return agent


def _poll_args(agent, keys_dir, repo_url=None) -> list[str]:
    return ["device", "poll", "--once", "--repo", repo_url or agent.repo_url,
            "--trusted-root", str(keys_dir / "root_history" / "1.root.json"),
            "--state-dir", agent.state_dir, "--device-id", agent.device_id]


def _assert_still_v1(agent, model_bytes):
    assert agent.status()["active"]["version"] == 1
    with open(agent.active_model_path(), "rb") as f:
        assert f.read() == model_bytes["a"]
    assert agent.slots.verified(agent.slots.active_slot()) is not None


def test_killed_during_download(v1_device, publish, bucket, keys_dir, http_serve, model_bytes):
    publish(2, which="b")
    stalled = threading.Event()
    release = threading.Event()

    class Stall(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802 - http.server API
            if "/targets/models/" not in self.path:
                return super().do_GET()
            data = open(self.translate_path(self.path), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            stalled.set()
            release.wait(30)

    url = http_serve(bucket.root, Stall)
    proc = subprocess.Popen([PY, "-m", "edgeship", *_poll_args(v1_device, keys_dir, url)],
                            env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert stalled.wait(60), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        release.set()
    _assert_still_v1(v1_device, model_bytes)
    # the next poll (bucket healthy again) completes the update
    assert main(_poll_args(v1_device, keys_dir)) == 0
    assert v1_device.status()["active"]["version"] == 2


_KILL_AT = """
import os, signal, sys
from edgeship.device import agent, slots

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv[1]
if point == "self-test":  # after the verified download, before the model is run
    agent.selftest.check = die
elif point == "install":  # self-tested, before the slot is written
    slots.SlotStore.install = die
elif point == "switch":  # slot written, before the active pointer moves
    slots.SlotStore.activate = die
from edgeship.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("point", [
    pytest.param("self-test", marks=pytest.mark.slow),
    pytest.param("install", marks=pytest.mark.slow),
    "switch",
])
def test_killed_during_switch(v1_device, publish, keys_dir, model_bytes, point):
    publish(2, which="b")
    proc = subprocess.run([PY, "-c", _KILL_AT, point, *_poll_args(v1_device, keys_dir)],
                          env=subprocess_env(), capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    _assert_still_v1(v1_device, model_bytes)
    assert main(_poll_args(v1_device, keys_dir)) == 0
    status = v1_device.status()
    assert status["active"]["version"] == 2 and status["active"]["slot"] == "b"
    leftovers = [n for n in os.listdir(v1_device.slots.slot_dir("b")) if n.endswith(".partial")]
    assert leftovers == []


def test_interrupt_between_pointer_writes_leaves_a_valid_pointer(v1_device, publish,
                                                                 monkeypatch, model_bytes):
    publish(2, which="b")
    real_replace = os.replace

    def crash_on_pointer(src, dst):
        if str(dst).endswith("/active"):
            raise KeyboardInterrupt("power cut")  # not an Exception: nothing may catch it
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_pointer)
    with pytest.raises(KeyboardInterrupt):
        v1_device.poll_once()
    monkeypatch.setattr(os, "replace", real_replace)
    _assert_still_v1(v1_device, model_bytes)
    assert v1_device.poll_once().version == 2


def test_bucket_offline(v1_device, keys_dir, model_bytes, http_serve, bucket):
    url = http_serve(bucket.root)
    # serve once so the device knows the HTTP URL, then take the server away
    offline = "http://127.0.0.1:9"  # discard port: connection refused
    assert main(_poll_args(v1_device, keys_dir, url)) == 0
    start = time.monotonic()
    assert main(_poll_args(v1_device, keys_dir, offline)) == 1
    assert time.monotonic() - start < 30
    status = v1_device.status()
    assert status["last_error"]["reason"] == "bucket-unreachable"
    _assert_still_v1(v1_device, model_bytes)


def _enospc():
    return OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_downloading(v1_device, publish, monkeypatch, model_bytes, keys_dir):
    """ENOSPC in python-tuf's download buffer for the model only: metadata and the channel
    index go through the same buffer and must arrive, so it is the model download that fails."""
    import tuf.ngclient.fetcher as tuf_fetcher

    from edgeship.device.fetcher import FileFetcher

    publish(2, which="b")
    real_temp, real_fetch = tuf_fetcher.tempfile.TemporaryFile, FileFetcher.fetch
    fetched: list[str] = []  # in order; download_file fetches before it writes a chunk
    refused: list[str] = []

    def fetch(self, url):
        fetched.append(url)
        return real_fetch(self, url)

    class FullDisk:
        def __init__(self, *a, **k):
            self._f = real_temp(*a, **k)

        def write(self, data):
            if "/targets/models/" in fetched[-1]:
                refused.append(fetched[-1])
                raise _enospc()
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    monkeypatch.setattr(FileFetcher, "fetch", fetch)
    monkeypatch.setattr(tuf_fetcher.tempfile, "TemporaryFile", FullDisk)
    result = v1_device.poll_once()
    assert not result.ok and result.reason == "disk-full", result
    assert refused and all("/targets/models/sensor/stable/2/" in u for u in refused), refused
    assert any(u.endswith("/metadata/timestamp.json") for u in fetched)
    assert any("/targets/index/" in u for u in fetched)
    monkeypatch.undo()
    _assert_still_v1(v1_device, model_bytes)
    assert v1_device.status()["last_error"]["reason"] == "disk-full"
    assert v1_device.poll_once().version == 2


@pytest.mark.parametrize("write", ["model.tflite.partial", "meta.json"])
def test_disk_full_while_installing_into_slot(v1_device, publish, monkeypatch, model_bytes,
                                              write):
    """ENOSPC on a real write into the inactive slot: the verified model bytes (python-tuf
    copies them to slots/b/model.tflite.partial, which install() renames to model.tflite), or
    install()'s atomic write of the slot's meta.json."""
    import shutil

    from edgeship.device import slots

    publish(2, which="b")
    target = os.path.join(v1_device.slots.slot_dir("b"), write)
    refused: list[str] = []
    real_copy, real_atomic = shutil.copyfileobj, slots.atomic_write

    def copyfileobj(src, dst, *a, **k):
        if getattr(dst, "name", None) == target:
            refused.append(target)
            raise _enospc()
        return real_copy(src, dst, *a, **k)

    def atomic_write(path, data):
        if path == target:
            refused.append(target)
            raise _enospc()
        return real_atomic(path, data)

    monkeypatch.setattr(shutil, "copyfileobj", copyfileobj)
    monkeypatch.setattr(slots, "atomic_write", atomic_write)
    result = v1_device.poll_once()
    assert refused == [target]
    assert result.reason == "disk-full"
    _assert_still_v1(v1_device, model_bytes)
    monkeypatch.undo()
    assert v1_device.poll_once().version == 2


def test_slow_retrieval_ends_the_poll_and_is_recorded(v1_device, publish, keys_dir, bucket,
                                                       http_serve, model_bytes):
    """A bucket that drips timestamp.json one byte at a time kept a poll running for hours,
    with nothing recorded. Now the poll ends as ``slow-retrieval``, in status.json like any
    refusal, and the active model is untouched; once the bucket behaves the update goes on."""
    publish(2, which="b")
    stop, dripped = threading.Event(), threading.Event()

    class Drip(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802 - http.server API
            if not self.path.endswith("/timestamp.json") or stop.is_set():
                return super().do_GET()
            self.send_response(200)
            self.send_header("Content-Length", "4000")
            self.end_headers()
            try:
                while not stop.is_set():
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    dripped.set()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass

    url = http_serve(bucket.root, Drip)
    assert v1_device.status()["last_error"] is None
    limits = ["--rate-grace", "0.5", "--min-rate", "1000"]
    assert ended(lambda: main([*_poll_args(v1_device, keys_dir, url), *limits])) == 1
    assert dripped.is_set()
    status = v1_device.status()
    assert status["last_error"]["reason"] == "slow-retrieval"
    assert "timestamp.json" in status["last_error"]["message"]
    _assert_still_v1(v1_device, model_bytes)
    stop.set()
    assert main([*_poll_args(v1_device, keys_dir, url), *limits]) == 0
    assert v1_device.status()["active"]["version"] == 2


def test_a_missing_file_is_not_found_and_an_unreachable_bucket_says_why(
        v1_device, keys_dir, tmp_path, http_serve, bucket):
    empty = tmp_path / "empty-bucket"
    empty.mkdir()
    assert main(_poll_args(v1_device, keys_dir, http_serve(str(empty)))) == 1
    error = v1_device.status()["last_error"]
    assert error["reason"] == "not-found" and "timestamp.json: HTTP 404" in error["message"]
    assert main(_poll_args(v1_device, keys_dir, "http://127.0.0.1:9")) == 1
    error = v1_device.status()["last_error"]
    assert error["reason"] == "bucket-unreachable"
    assert "http://127.0.0.1:9/metadata/" in error["message"]
    assert "cannot connect" in error["message"]


def test_an_io_error_in_the_state_folder_keeps_the_active_model(v1_device, publish, monkeypatch,
                                                                 model_bytes):
    publish(2, which="b")

    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    result = v1_device.poll_once()
    assert (result.ok, result.reason) == (False, "io-error")
    monkeypatch.undo()
    _assert_still_v1(v1_device, model_bytes)
    assert v1_device.poll_once().version == 2
