"""The S3 backend against moto's threaded S3 server over real HTTP (real boto3 calls)."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from edgeship.edge_pusher.buckets import open_bucket
from edgeship.edge_pusher.lock import LOCK_KEY, PublishLock
from edgeship.edge_pusher.repository import Repository
from edgeship.errors import NotFound, OtaError, PreconditionFailed
from tests.helpers.ota import release


def test_s3_bucket_operations_and_conditional_writes(s3_bucket):
    b = s3_bucket
    etag = b.put_if_absent("x/one", b"1")
    with pytest.raises(PreconditionFailed):
        b.put_if_absent("x/one", b"2")
    with pytest.raises(PreconditionFailed):
        b.put_if_match("x/one", b"2", '"not-the-etag"')
    new = b.put_if_match("x/one", b"2", etag)
    assert b.get_with_etag("x/one") == (b"2", new)
    b.put("x/two", b"22")
    assert b.list("x/") == ["x/one", "x/two"] and b.exists("x/two")
    with pytest.raises(NotFound):
        b.get("x/missing")
    with pytest.raises(PreconditionFailed):
        b.delete("x/one", if_match=etag)
    b.delete("x/one", if_match=new)
    assert not b.exists("x/one")


def test_open_bucket_reads_endpoint_from_environment(s3_bucket, moto_endpoint):
    b = open_bucket(f"s3://{s3_bucket.bucket}/fleet")
    b.put("hello", b"world")
    assert s3_bucket.get("hello") == b"world"
    assert b.client.meta.endpoint_url == moto_endpoint


def test_publish_to_s3_and_poll_over_plain_http(s3_bucket, keys_dir, tiny_models, make_agent,
                                                moto_endpoint, model_bytes):
    repo = Repository(s3_bucket, str(keys_dir))
    repo.publish([release(tiny_models, 1)])
    # public read of metadata/ and targets/ only (never locks/), as docs/ota.md sets it up
    public = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": [f"arn:aws:s3:::{s3_bucket.bucket}/fleet/metadata/*",
                     f"arn:aws:s3:::{s3_bucket.bucket}/fleet/targets/*"]}]}
    s3_bucket.client.put_bucket_policy(Bucket=s3_bucket.bucket, Policy=json.dumps(public))
    # devices need no SDK: the same objects over plain GETs (moto serves path-style URLs)
    http_url = f"{moto_endpoint}/{s3_bucket.bucket}/fleet"
    with urllib.request.urlopen(f"{http_url}/metadata/timestamp.json") as r:
        assert b'"timestamp"' in r.read()
    agent = make_agent(repo_url=http_url)
    result = agent.poll_once()
    assert result.ok and result.version == 1, result
    with open(agent.active_model_path(), "rb") as f:
        assert f.read() == model_bytes["a"]


def test_two_publishers_racing_on_s3_both_land(s3_bucket, keys_dir, tiny_models):
    """Real threads, real HTTP: neither update is lost, the repository stays consistent."""
    barrier = threading.Barrier(4)
    errors, results = [], []

    def publisher(name):
        repo = Repository(open_bucket(f"s3://{s3_bucket.bucket}/fleet"), str(keys_dir),
                          lock_wait=60)
        barrier.wait()
        try:
            results.append(repo.publish([release(tiny_models, 1, name=name)]))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=publisher, args=(f"model{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(r.timestamp_version for r in results) == [1, 2, 3, 4]
    index = Repository(s3_bucket, str(keys_dir)).read_index("stable")
    assert sorted(index["models"]) == ["model0", "model1", "model2", "model3"]
    assert not s3_bucket.exists(LOCK_KEY)


def test_loser_fails_clearly_when_it_cannot_wait(s3_bucket, keys_dir, tiny_models):
    holder = PublishLock(s3_bucket, lease_seconds=60)
    holder.acquire()
    try:
        impatient = Repository(s3_bucket, str(keys_dir), lock_wait=0)
        with pytest.raises(OtaError, match="another publisher .* holds the publish lock"):
            impatient.publish([release(tiny_models, 1)])
    finally:
        holder.release()
    assert not s3_bucket.exists("metadata/timestamp.json")  # the loser wrote nothing


def test_expired_lock_is_taken_over_and_fencing_stops_the_zombie(s3_bucket, keys_dir,
                                                                 tiny_models):
    """A publisher whose lease ran out must not overwrite the newer publication."""
    Repository(s3_bucket, str(keys_dir)).publish([release(tiny_models, 1)])
    zombie = Repository(s3_bucket, str(keys_dir), lock_lease=0.0)
    st_holder = {}
    real_commit = zombie._commit

    def slow_commit(st):
        st_holder["st"] = st
        # while the zombie "stalls", a healthy publisher takes the expired lock and publishes
        Repository(s3_bucket, str(keys_dir), lock_wait=5).publish(
            [release(tiny_models, 1, name="healthy")])
        return real_commit(st)

    zombie._commit = slow_commit
    with pytest.raises(OtaError, match="changed .* nothing was published"):
        zombie.publish([release(tiny_models, 2)])
    index = Repository(s3_bucket, str(keys_dir)).read_index("stable")["models"]
    assert "healthy" in index and [e["version"] for e in index["sensor"]] == [1]
