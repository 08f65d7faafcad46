"""The folder and HTTP backends (S3 is in test_ota_s3.py)."""

from __future__ import annotations

import os
import threading

import pytest

from edgeship.edge_pusher.buckets import FileBucket, HttpBucket, S3Bucket, open_bucket
from edgeship.errors import NotFound, OtaError, PreconditionFailed


def test_open_bucket_schemes(tmp_path):
    assert isinstance(open_bucket(f"file://{tmp_path}"), FileBucket)
    assert isinstance(open_bucket(str(tmp_path)), FileBucket)
    s3 = open_bucket("s3://ota/fleet/a")
    assert isinstance(s3, S3Bucket) and (s3.bucket, s3.prefix) == ("ota", "fleet/a")
    assert isinstance(open_bucket("https://cdn.example.com/fleet"), HttpBucket)
    with pytest.raises(OtaError, match="unsupported bucket URL"):
        open_bucket("ftp://x/y")


def test_file_bucket_conditional_writes(tmp_path):
    b = FileBucket(str(tmp_path))
    etag = b.put_if_absent("a/b.json", b"1")
    with pytest.raises(PreconditionFailed):
        b.put_if_absent("a/b.json", b"2")
    with pytest.raises(PreconditionFailed):
        b.put_if_match("a/b.json", b"2", "stale")
    b.put_if_match("a/b.json", b"2", etag)
    assert b.get("a/b.json") == b"2" and b.list("a/") == ["a/b.json"]
    with pytest.raises(NotFound):
        b.get("nope")
    with pytest.raises(OtaError, match="escapes"):
        b.get("../outside")
    assert not [n for n in os.listdir(tmp_path / "a") if n.endswith(".edgeship-tmp")]


def test_file_bucket_create_if_absent_has_one_winner(tmp_path):
    b = FileBucket(str(tmp_path))
    wins, barrier = [], threading.Barrier(8)

    def racer(i):
        barrier.wait()
        try:
            b.put_if_absent("lock", b"%d" % i)
            wins.append(i)
        except PreconditionFailed:
            pass

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and b.get("lock") == b"%d" % wins[0]


def test_http_bucket_reads_and_refuses_writes(tmp_path, http_serve):
    FileBucket(str(tmp_path)).put("metadata/x.json", b"{}")
    b = open_bucket(http_serve(str(tmp_path)))
    assert b.get("metadata/x.json") == b"{}"
    assert b.exists("metadata/x.json") and not b.exists("metadata/y.json")
    with pytest.raises(NotFound):
        b.get("metadata/y.json")
    with pytest.raises(OtaError, match="read-only"):
        b.put("metadata/x.json", b"[]")
