"""A file bucket whose folder someone else can write (an NFS export, an SD card): the publisher
never writes through a link nor reads a FIFO or device, says so in one line naming the
object, never hangs, and always lets go of the publish lock (issue 18, item 3)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgeship.edge_pusher.buckets import FileBucket
from edgeship.edge_pusher.lock import LOCK_KEY, PublishLock
from edgeship.edge_pusher.repository import Repository
from edgeship.errors import NotFound, OtaError
from tests.helpers.ota import release
from tests.helpers.threads import ended

#: Seconds a refusal may take before the test calls it a hang (the refusals are immediate).
OUTER = 60


def _one_line_naming(err: object, *names: str) -> str:
    assert isinstance(err, OtaError), repr(err)
    text = str(err)
    assert "\n" not in text
    for name in names:
        assert name in text, text
    return text


def _publish(bucket: FileBucket, keys_dir: Path, tiny_models: Path, version: int) -> object:
    """Publish in a thread that must end within OUTER seconds; lock_wait=0 so that a lock
    left behind fails the next publish at once instead of waiting for its lease."""
    repo = Repository(bucket, str(keys_dir), lock_wait=0)
    return ended(lambda: repo.publish([release(tiny_models, version, "b")]), OUTER)


@pytest.fixture
def published(publish, bucket) -> FileBucket:
    publish(1)
    return bucket


def test_a_linked_targets_models_out_of_the_bucket_is_not_written_through(
        published, keys_dir, tiny_models, tmp_path):
    outside = tmp_path / "outside"
    models = Path(published.root, "targets", "models")
    shutil.copytree(models, outside)
    before = sorted(p.name for p in outside.rglob("*"))
    shutil.rmtree(models)
    os.symlink(outside, models)
    err = _publish(published, keys_dir, tiny_models, 2)
    _one_line_naming(err, "targets/models", "symbolic link")
    assert sorted(p.name for p in outside.rglob("*")) == before  # nothing written out there
    assert not published.exists(LOCK_KEY)  # the lock was let go
    os.unlink(models)
    shutil.copytree(outside, models)
    result = _publish(published, keys_dir, tiny_models, 2)  # and the next publish succeeds
    assert not isinstance(result, BaseException), result


@pytest.mark.parametrize("victim", ["metadata/timestamp.json", "snapshot", "content"])
def test_a_fifo_in_the_bucket_is_refused_without_hanging_and_the_lock_is_let_go(
        published, keys_dir, tiny_models, victim):
    """Opening a FIFO for reading blocks until a writer comes: under the publish lock, for
    ever. Each place a publish reads: the timestamp, the metadata it names, a target's
    content (read back to re-sign the channel index)."""
    root = Path(published.root)
    if victim == "snapshot":
        victim = next(str(p.relative_to(root)) for p in (root / "metadata").glob(
            "*.snapshot.json"))
    elif victim == "content":
        victim = next(str(p.relative_to(root)) for p in (root / "targets" / "index").glob(
            "*.stable.json"))
    path = root / victim
    saved = path.read_bytes()
    path.unlink()
    os.mkfifo(path)
    err = _publish(published, keys_dir, tiny_models, 2)
    _one_line_naming(err, victim, "FIFO")
    assert not published.exists(LOCK_KEY)
    path.unlink()
    path.write_bytes(saved)
    result = _publish(published, keys_dir, tiny_models, 2)
    assert not isinstance(result, BaseException), result


def test_a_sparse_3_gib_file_where_a_publish_reads_is_refused_unread(published, keys_dir,
                                                                    tiny_models):
    path = Path(published.root, "metadata", "timestamp.json")
    saved = path.read_bytes()
    os.truncate(path, 3 << 30)
    err = _publish(published, keys_dir, tiny_models, 2)
    _one_line_naming(err, "metadata/timestamp.json", "3221225472 bytes", "refused unread")
    assert not published.exists(LOCK_KEY)
    path.write_bytes(saved)
    result = _publish(published, keys_dir, tiny_models, 2)
    assert not isinstance(result, BaseException), result


@pytest.mark.parametrize("make", [
    lambda path: os.symlink("/dev/zero", path),  # reading it never ends
    lambda path: os.mkfifo(path),  # opening it blocks
], ids=["link-to-dev-zero", "fifo"])
def test_the_bucket_reads_only_regular_files(tmp_path, make):
    bucket = FileBucket(str(tmp_path / "b"))
    bucket.put("metadata/x.json", b"{}")
    make(tmp_path / "b" / "metadata" / "y.json")
    for call in (lambda: bucket.get("metadata/y.json"),
                 lambda: bucket.get_with_etag("metadata/y.json"),
                 lambda: bucket.exists("metadata/y.json"),
                 lambda: bucket.list("metadata/"),
                 lambda: bucket.put_if_match("metadata/y.json", b"[]", "x")):
        _one_line_naming(ended(call, OUTER), "metadata/y.json")
    assert bucket.get("metadata/x.json") == b"{}"


def test_the_bucket_never_writes_through_a_linked_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    bucket = FileBucket(str(tmp_path / "b"))
    bucket.put("targets/keep.json", b"{}")
    os.symlink(outside, tmp_path / "b" / "targets" / "models")
    for call in (lambda: bucket.put("targets/models/m/1.tflite", b"x"),
                 lambda: bucket.put_if_absent("targets/models/m/1.tflite", b"x"),
                 lambda: bucket.get("targets/models/m/1.tflite"),
                 lambda: bucket.exists("targets/models/m/1.tflite"),
                 lambda: bucket.delete("targets/models/m/1.tflite")):
        _one_line_naming(ended(call, OUTER), "targets/models", "symbolic link")
    assert list(outside.iterdir()) == []
    with pytest.raises(NotFound):
        bucket.get("targets/other/1.tflite")


def test_a_fifo_at_the_lock_is_refused_in_one_line(tmp_path):
    bucket = FileBucket(str(tmp_path / "b"))
    os.makedirs(tmp_path / "b" / "locks")
    os.mkfifo(tmp_path / "b" / LOCK_KEY)
    lock = PublishLock(bucket, wait_seconds=0)
    _one_line_naming(ended(lock.acquire, OUTER), LOCK_KEY, "FIFO")


def test_a_failed_release_does_not_hide_the_transactions_error(tmp_path, caplog):
    bucket = FileBucket(str(tmp_path / "b"))

    class Broken(RuntimeError):
        pass

    with pytest.raises(Broken), PublishLock(bucket, wait_seconds=0):
        os.rename(tmp_path / "b" / "locks", tmp_path / "elsewhere")
        os.symlink(tmp_path / "elsewhere", tmp_path / "b" / "locks")
        raise Broken("the transaction's own error")
    assert "not released" in caplog.text
