"""A ``file://`` bucket (an SD card, an NFS export) and the device's own ``tuf/`` cache under
the same deadlines and caps as HTTP (issue 18, item 3).

Each bucket test: the device runs v1; the bucket then holds a FIFO, a link or an oversized
file where the device reads; the poll must end within its deadline (an outer timeout turns a
regression into a failure, not a hung CI), refuse with a named reason, and keep v1 byte for
byte."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from tuf.api import exceptions

from edgeship.contract import target_path
from edgeship.device import fetcher as fetcher_mod
from edgeship.device.agent import Agent
from edgeship.device.fetcher import DeadlineFetcher, FileFetcher, TransferLimits
from edgeship.edge_pusher.repository import content_key
from tests.helpers.ota import PY, subprocess_env
from tests.helpers.threads import ended

#: What the attacker's report used: a poll must end well within these.
POLL_TIMEOUT, FILE_TIMEOUT = 10, 5
#: Seconds after which a poll counts as hung (generous: CI machines are slow).
OUTER = 90
GIB = 1 << 30


@pytest.fixture
def v1_device(publish, make_agent):
    publish(1)
    agent = make_agent(limits=TransferLimits(file_seconds=FILE_TIMEOUT, poll_seconds=POLL_TIMEOUT))
    assert agent.poll_once().version == 1
    return agent


def _poll_cli(agent: Agent, keys_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """``edgeship device poll --once`` as the attacker ran it, in a process of its own."""
    return subprocess.run(
        [PY, "-m", "edgeship", "device", "poll", "--once", "--repo", agent.repo_url,
         "--trusted-root", str(keys_dir / "root_history" / "1.root.json"),
         "--state-dir", agent.state_dir, "--device-id", agent.device_id,
         "--poll-timeout", str(POLL_TIMEOUT), "--file-timeout", str(FILE_TIMEOUT), *extra],
        env=subprocess_env(), capture_output=True, text=True, timeout=OUTER)


def _assert_kept_v1(agent: Agent, model_bytes: dict[str, bytes]) -> dict:
    status = agent.status()
    assert status["active"]["version"] == 1 and status["active"]["verified"] is True
    with open(agent.active_model_path(), "rb") as f:
        assert f.read() == model_bytes["a"]
    return status


def _refused(agent: Agent, model_bytes: dict[str, bytes], reason: str, *words: str) -> dict:
    """Poll in a thread that must end within OUTER seconds; the refusal and v1 kept."""
    result = ended(agent.poll_once, OUTER)
    assert not isinstance(result, BaseException), result
    assert (result.ok, result.reason) == (False, reason), result
    for word in words:
        assert word in result.message, result.message
    return _assert_kept_v1(agent, model_bytes)


def _replace(path: str | Path, make) -> None:
    os.unlink(path)
    make(str(path))


def _new_files(bucket, before: set[str]) -> list[str]:
    return sorted(set(bucket.list()) - before)


# ------------------------------------------------------------------ FIFOs in the bucket


def test_a_fifo_at_timestamp_json_ends_the_cli_poll_with_unsafe_file(v1_device, bucket,
                                                                      keys_dir, model_bytes):
    """The attacker's report: this hung `device poll --once --poll-timeout 10
    --file-timeout 5` for ever."""
    _replace(os.path.join(bucket.root, "metadata", "timestamp.json"), os.mkfifo)
    started = time.monotonic()
    done = _poll_cli(v1_device, keys_dir)
    assert time.monotonic() - started < OUTER
    assert done.returncode == 1, done
    printed = json.loads(done.stdout)
    assert printed["reason"] == "unsafe-file" and "FIFO" in printed["message"], printed
    assert "metadata/timestamp.json" in printed["message"]
    status = _assert_kept_v1(v1_device, model_bytes)
    assert status["last_error"]["reason"] == "unsafe-file"


def test_a_device_polling_on_an_interval_keeps_polling_past_a_fifo(v1_device, bucket, publish,
                                                                    model_bytes):
    """With --interval the device never polled again, so it never saw a revocation."""
    timestamp = os.path.join(bucket.root, "metadata", "timestamp.json")
    saved = Path(timestamp).read_bytes()
    _replace(timestamp, os.mkfifo)
    results, stop = [], threading.Event()

    def on_result(result) -> None:
        results.append(result)
        if len(results) == 2:  # the bucket is repaired after the second refusal
            os.unlink(timestamp)
            Path(timestamp).write_bytes(saved)
        if len(results) == 3:
            stop.set()

    ended(lambda: v1_device.run_forever(0.01, jitter=0, stop=stop, on_result=on_result), OUTER)
    assert [r.reason for r in results] == ["unsafe-file", "unsafe-file", None], results
    _assert_kept_v1(v1_device, model_bytes)


def test_a_fifo_at_a_target_path_is_refused(v1_device, publish, repo, bucket, model_bytes):
    publish(2, which="b")
    tf = repo.target(target_path("sensor", "stable", 2, "cpu"))
    _replace(os.path.join(bucket.root, content_key(tf.path, tf.hashes["sha256"])), os.mkfifo)
    _refused(v1_device, model_bytes, "unsafe-file", "FIFO", "/targets/models/")
    assert not os.path.exists(v1_device.slots.partial_path("b"))


def test_a_fifo_at_a_bin_metadata_file_is_refused(v1_device, publish, bucket, model_bytes):
    before = set(bucket.list())
    publish(2, which="b")
    bins = [k for k in _new_files(bucket, before) if ".bins-" in k]
    assert bins
    for key in bins:
        _replace(os.path.join(bucket.root, key), os.mkfifo)
    _refused(v1_device, model_bytes, "unsafe-file", "FIFO", ".bins-")


# ------------------------------------------------------------------ links


def test_a_link_to_dev_zero_is_refused(v1_device, bucket, model_bytes):
    _replace(os.path.join(bucket.root, "metadata", "timestamp.json"),
             lambda p: os.symlink("/dev/zero", p))
    _refused(v1_device, model_bytes, "unsafe-file", "out of the bucket", "/dev/zero")


def test_a_link_out_of_the_bucket_is_refused_even_to_good_metadata(v1_device, publish, bucket,
                                                                   tmp_path, model_bytes):
    publish(2, which="b")
    timestamp = os.path.join(bucket.root, "metadata", "timestamp.json")
    outside = tmp_path / "outside.json"
    shutil.copyfile(timestamp, outside)
    _replace(timestamp, lambda p: os.symlink(outside, p))
    _refused(v1_device, model_bytes, "unsafe-file", "out of the bucket")


def test_a_linked_folder_out_of_the_bucket_is_refused(v1_device, publish, bucket, tmp_path,
                                                      model_bytes):
    publish(2, which="b")
    models = Path(bucket.root, "targets", "models")
    shutil.copytree(models, tmp_path / "elsewhere")
    shutil.rmtree(models)
    os.symlink(tmp_path / "elsewhere", models)
    _refused(v1_device, model_bytes, "unsafe-file", "out of the bucket")


def test_a_link_inside_the_bucket_is_followed(v1_device, publish, bucket):
    """A bucket synced with links that stay inside it still serves."""
    publish(2, which="b")
    timestamp = os.path.join(bucket.root, "metadata", "timestamp.json")
    os.rename(timestamp, timestamp + ".real")
    os.symlink("timestamp.json.real", timestamp)
    assert ended(v1_device.poll_once, OUTER).version == 2


# ------------------------------------------------------------------ oversized files


def test_a_sparse_3_gib_target_is_refused_unread(v1_device, publish, repo, bucket, model_bytes):
    """Larger than its signed length: refused from its size, before a byte is read."""
    publish(2, which="b")
    tf = repo.target(target_path("sensor", "stable", 2, "cpu"))
    os.truncate(os.path.join(bucket.root, content_key(tf.path, tf.hashes["sha256"])), 3 * GIB)
    _refused(v1_device, model_bytes, "length-exceeded", "refused unread", str(tf.length))


def test_a_sparse_3_gib_timestamp_is_refused_unread(v1_device, bucket, model_bytes):
    os.truncate(os.path.join(bucket.root, "metadata", "timestamp.json"), 3 * GIB)
    _refused(v1_device, model_bytes, "length-exceeded", "refused unread")


def test_the_file_fetcher_reads_no_more_than_the_length_asked_for(tmp_path, monkeypatch):
    """A file larger than the length asked for is refused from its size; one that grows
    after its size was checked is still read only to length + 1 (the byte that shows
    python-tuf it is too long)."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    fetcher = DeadlineFetcher(FileFetcher(str(tmp_path)), TransferLimits())
    assert fetcher.download_bytes(path.as_uri(), 100) == b"x" * 100
    with pytest.raises(exceptions.DownloadLengthMismatchError, match="refused unread"):
        fetcher.download_bytes(path.as_uri(), 99)
    checked = fetcher_mod._FileReader._check

    def then_grow(self, fd: int) -> None:
        checked(self, fd)
        with open(path, "ab") as f:
            f.write(b"y" * (10 << 20))

    monkeypatch.setattr(fetcher_mod._FileReader, "_check", then_grow)
    reader = fetcher_mod._FileReader(path.as_uri(), str(path), None, 150)
    reader.start()
    pieces = []
    while piece := reader.take(time.monotonic() + OUTER, "late"):
        pieces.append(piece)
    assert pieces[0] is True and len(b"".join(pieces[1:])) == 151


# ------------------------------------------------------------------ a bucket that stops answering


@pytest.fixture
def stuck(monkeypatch):
    """Make opening (or reading) a bucket file block, as on an NFS export whose server has
    gone: inside the kernel, where no check of the poll's own thread runs."""
    release = threading.Event()
    real_open = fetcher_mod._FileReader._open

    def stall_open(self):
        release.wait(OUTER)
        return real_open(self)

    def stall_read(fd, mode="r", buffering=-1):
        class Stalled:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                os.close(fd)

            def read(self, n):
                release.wait(OUTER)
                return b""
        return Stalled()

    def _stick(where: str) -> None:
        if where == "open":
            monkeypatch.setattr(fetcher_mod._FileReader, "_open", stall_open)
        else:
            monkeypatch.setattr(fetcher_mod.os, "fdopen", stall_read)
    yield _stick
    release.set()


@pytest.mark.parametrize("where", ["open", "read"])
def test_a_file_that_never_answers_ends_in_slow_retrieval(tmp_path, stuck, where):
    (tmp_path / "timestamp.json").write_bytes(b"{}")
    limits = TransferLimits(file_seconds=1.0, grace_seconds=0.2, socket_seconds=0.3)
    fetcher = DeadlineFetcher(FileFetcher(str(tmp_path), limits), limits)
    fetcher.start_poll()
    stuck(where)
    started = time.monotonic()
    err = ended(lambda: fetcher.download_bytes((tmp_path / "timestamp.json").as_uri(), 100),
                OUTER)
    assert isinstance(err, exceptions.SlowRetrievalError), err
    assert time.monotonic() - started < 5


def test_a_stuck_bucket_ends_the_poll_as_slow_retrieval(publish, make_agent, stuck, model_bytes):
    publish(1)
    limits = TransferLimits(file_seconds=1.0, grace_seconds=0.2, socket_seconds=0.3,
                            poll_seconds=POLL_TIMEOUT)
    agent = make_agent(limits=limits)
    assert agent.poll_once().version == 1
    stuck("open")
    _refused(agent, model_bytes, "slow-retrieval", "not opened within")


# ------------------------------------------------------------------ the device's own tuf/ cache


def _limit_memory() -> None:
    """A device's memory, not this machine's: reading 3 GiB must fail, not succeed slowly."""
    resource.setrlimit(resource.RLIMIT_AS, (2 * GIB, 2 * GIB))


@pytest.mark.parametrize("cached", [
    "tuf/timestamp.json", "tuf/snapshot.json", "tuf/targets.json",
    "tuf/root_history/2.root.json", "cache/index-stable.json",
])
def test_a_sparse_3_gib_file_in_the_tuf_cache_is_repaired(v1_device, publish, keys_dir,
                                                          model_bytes, cached):
    """Found by an outside attacker: every poll ended `internal-error` (MemoryError), and the
    file was never repaired. The poll runs in a process with a device-sized address space."""
    publish(2, which="b")
    path = os.path.join(v1_device.state_dir, *cached.split("/"))
    with open(path, "ab"):
        pass
    os.truncate(path, 3 * GIB)
    done = subprocess.run(
        [PY, "-m", "edgeship", "device", "poll", "--once", "--repo", v1_device.repo_url,
         "--trusted-root", str(keys_dir / "root_history" / "1.root.json"),
         "--state-dir", v1_device.state_dir, "--device-id", v1_device.device_id],
        env={**subprocess_env(), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=OUTER, preexec_fn=_limit_memory)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["version"] == 2
    status = v1_device.status()
    assert status["active"]["version"] == 2 and status["active"]["verified"] is True
    assert any(cached in r and "3221225472 bytes" in r for r in status["repairs"]), status
    assert os.path.getsize(path) < 1 << 20 if os.path.exists(path) else True
