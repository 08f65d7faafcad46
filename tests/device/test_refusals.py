"""Every attack the device must refuse, against a real repository and the real tuf.ngclient.

Each test: the device runs v1; the repository then offers something bad; ``device poll --once``
must exit non-zero, keep v1 active (byte for byte), and name the reason in status.json."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import Metadata, MetaFile, Snapshot, Timestamp

from edgeship.cli import main
from edgeship.contract import target_path
from edgeship.edge_pusher import keys
from edgeship.edge_pusher.repository import Repository, content_key
from edgeship.errors import OtaError


@pytest.fixture
def v1_device(publish, make_agent, model_bytes):
    publish(1)
    agent = make_agent()
    assert agent.poll_once().version == 1
    return agent


def _poll_cli(agent, keys_dir) -> int:
    return main(["device", "poll", "--once", "--repo", agent.repo_url,
                 "--trusted-root", str(keys_dir / "root_history" / "1.root.json"),
                 "--state-dir", agent.state_dir, "--device-id", agent.device_id])


def assert_refused(agent, keys_dir, model_bytes, *reasons):
    assert _poll_cli(agent, keys_dir) == 1
    status = agent.status()
    assert status["last_error"]["reason"] in reasons, status["last_error"]
    assert status["active"]["version"] == 1
    with open(agent.active_model_path(), "rb") as f:
        assert f.read() == model_bytes["a"]
    return status


def _file(bucket, key) -> str:
    return os.path.join(bucket.root, key)


def _v2_blob(repo, bucket) -> str:
    tf = repo.target(target_path("sensor", "stable", 2, "cpu"))
    return _file(bucket, content_key(tf.path, tf.hashes["sha256"]))


def test_modified_model_bytes(v1_device, publish, repo, bucket, keys_dir, model_bytes):
    publish(2, which="b")
    path = _v2_blob(repo, bucket)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    assert_refused(v1_device, keys_dir, model_bytes, "hash-mismatch")


def test_target_larger_than_signed_length(v1_device, publish, repo, bucket, keys_dir,
                                          model_bytes):
    publish(2, which="b")
    with open(_v2_blob(repo, bucket), "ab") as f:
        f.write(b"\0" * 10_000_000)  # endless data: the device stops at length + one chunk
    status = assert_refused(v1_device, keys_dir, model_bytes, "length-exceeded")
    assert not os.path.exists(v1_device.slots.partial_path("b"))
    assert "exceeding" in status["last_error"]["message"]


def test_endless_timestamp_metadata(v1_device, bucket, keys_dir, model_bytes):
    with open(_file(bucket, "metadata/timestamp.json"), "wb") as f:
        f.write(b" " * 100_000)
    assert_refused(v1_device, keys_dir, model_bytes, "length-exceeded")


def test_metadata_resigned_with_untrusted_key(v1_device, publish, bucket, keys_dir,
                                              model_bytes):
    publish(2, which="b")
    md = Metadata[Timestamp].from_bytes(bucket.get("metadata/timestamp.json"))
    md.signed.version += 1
    md.signatures.clear()
    md.sign(CryptoSigner.generate_ed25519())  # the attacker's key
    bucket.put("metadata/timestamp.json", md.to_bytes())
    assert_refused(v1_device, keys_dir, model_bytes, "untrusted-signature")


def test_whole_repository_replaced_by_attacker(v1_device, bucket, keys_dir, tmp_path,
                                               tiny_models, model_bytes):
    from edgeship.edge_pusher.buckets import FileBucket
    from tests.helpers.ota import release

    evil_keys = tmp_path / "evil-keys"
    keys.init_keys(evil_keys)
    evil = FileBucket(str(tmp_path / "evil"))
    Repository(evil, str(evil_keys)).publish([release(tiny_models, 9, which="b")])
    shutil.rmtree(bucket.root)
    shutil.copytree(evil.root, bucket.root)
    assert_refused(v1_device, keys_dir, model_bytes, "untrusted-signature")


def test_modified_metadata_without_resigning(v1_device, publish, bucket, keys_dir, model_bytes):
    publish(2, which="b")
    md = json.loads(bucket.get("metadata/timestamp.json"))
    md["signed"]["expires"] = "2099-01-01T00:00:00Z"
    bucket.put("metadata/timestamp.json", json.dumps(md).encode())
    assert_refused(v1_device, keys_dir, model_bytes, "untrusted-signature")


def test_replayed_older_timestamp(v1_device, publish, bucket, keys_dir, model_bytes):
    old = bucket.get("metadata/timestamp.json")
    publish(2, which="b")
    # the device sees v2's timestamp but (say) its self-test is pending: simulate by polling
    # only TUF metadata, then replaying the old timestamp
    v1_device._updater().refresh()
    bucket.put("metadata/timestamp.json", old)
    assert_refused(v1_device, keys_dir, model_bytes, "rollback")


def test_replayed_older_snapshot_with_stolen_timestamp_key(v1_device, publish, bucket,
                                                           keys_dir, model_bytes):
    publish(2, which="b")
    v1_device._updater().refresh()  # device now trusts snapshot v2
    ts = Metadata[Timestamp].from_bytes(bucket.get("metadata/timestamp.json"))
    old_snap = bucket.get("metadata/1.snapshot.json")
    ts.signed.version += 1
    ts.signed.snapshot_meta = MetaFile(version=1, length=len(old_snap))
    ts.signatures.clear()
    for s in keys.load_signers(keys_dir, "timestamp"):  # even the real timestamp key
        ts.sign(s, append=True)
    bucket.put("metadata/timestamp.json", ts.to_bytes())
    assert_refused(v1_device, keys_dir, model_bytes, "rollback")


def test_replayed_older_bins_with_stolen_snapshot_key(v1_device, publish, bucket, keys_dir,
                                                      model_bytes):
    """Mix-and-match: a snapshot (validly signed with a stolen key) that lists old bins."""
    publish(2, which="b")
    v1_device.poll_once()  # now on v2, trusting the v2 bins
    ts = Metadata[Timestamp].from_bytes(bucket.get("metadata/timestamp.json"))
    snap = Metadata[Snapshot].from_bytes(
        bucket.get(f"metadata/{ts.signed.snapshot_meta.version}.snapshot.json"))
    first = Metadata[Snapshot].from_bytes(bucket.get("metadata/1.snapshot.json"))
    snap.signed.meta = first.signed.meta
    snap.signed.version += 1
    snap.signatures.clear()
    signer: Signer = keys.load_signers(keys_dir, "snapshot")[0]
    snap.sign(signer)
    data = snap.to_bytes()
    bucket.put(f"metadata/{snap.signed.version}.snapshot.json", data)
    ts.signed.version += 1
    ts.signed.snapshot_meta = MetaFile(version=snap.signed.version, length=len(data))
    ts.signatures.clear()
    ts.sign(keys.load_signers(keys_dir, "timestamp")[0])
    bucket.put("metadata/timestamp.json", ts.to_bytes())
    assert _poll_cli(v1_device, keys_dir) == 1
    assert v1_device.status()["last_error"]["reason"] == "rollback"
    assert v1_device.status()["active"]["version"] == 2


def test_expired_metadata_freeze(v1_device, bucket, keys_dir, model_bytes, tiny_models):
    from tests.helpers.ota import release

    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    stale = Repository(bucket, str(keys_dir), clock=lambda: past)
    stale.publish([release(tiny_models, 2, which="b")])  # timestamp expired two days ago
    status = assert_refused(v1_device, keys_dir, model_bytes, "expired-metadata")
    assert "expired" in status["last_error"]["message"].lower()


@pytest.mark.parametrize("tamper", [
    lambda text: b"{this is not json",
    lambda text: text.replace(b'"version":1}}', b'"version":NaN}}'),  # once an empty message
])
def test_invalid_json_metadata(v1_device, bucket, keys_dir, model_bytes, tamper):
    timestamp = bucket.get("metadata/timestamp.json")
    assert timestamp.endswith(b'"version":1}}')
    bucket.put("metadata/timestamp.json", tamper(timestamp))
    assert_refused(v1_device, keys_dir, model_bytes, "invalid-metadata")
    message = v1_device.status()["last_error"]["message"]
    assert message.endswith("metadata/timestamp.json)") and ": " in message, message


@pytest.mark.parametrize("field,value,reason", [
    ("hardware", "edgetpu", "wrong-hardware"),
    ("channel", "beta", "wrong-channel"),
])
def test_build_signed_for_other_hardware_or_channel(v1_device, repo, keys_dir, model_bytes,
                                                    tiny_models, field, value, reason):
    from tests.helpers.ota import add_raw_target, release

    rel = release(tiny_models, 2, which="b")
    custom = dict(rel.custom, name="sensor", version=2, hardware="cpu", channel="stable",
                  rollout=100)
    custom[field] = value  # the signed metadata says another device class
    path = target_path("sensor", "stable", 2, "cpu")
    add_raw_target(repo, path, rel.data, custom,
                   {"name": "sensor", "version": 2, "hardware": "cpu", "rollout": 100},
                   "stable")
    assert_refused(v1_device, keys_dir, model_bytes, reason)


@pytest.mark.parametrize("version", [2**63, 2**64 + 5])
def test_a_signed_version_beyond_2_63_minus_1_is_refused(v1_device, repo, keys_dir, model_bytes,
                                                          tiny_models, version):
    """Signed by the online keys, but a version no 64-bit client can hold: were it taken, every
    later release of the model would be "not newer" forever."""
    from tests.helpers.ota import add_raw_target, release

    rel = release(tiny_models, 2, which="b")
    custom = dict(rel.custom, name="sensor", version=version, hardware="cpu",
                  channel="stable", rollout=100)
    path = target_path("sensor", "stable", version, "cpu")
    add_raw_target(repo, path, rel.data, custom,
                   {"name": "sensor", "version": version, "hardware": "cpu", "rollout": 100},
                   "stable")
    status = assert_refused(v1_device, keys_dir, model_bytes, "invalid-metadata")
    assert "invalid version" in status["last_error"]["message"]


def test_model_failing_self_test_is_never_activated_and_remembered(v1_device, publish,
                                                                   keys_dir, model_bytes):
    import numpy as np

    from edgeship.contract import encode_array

    publish(2, which="b", custom={"self_test": {
        "input": encode_array(np.zeros((1, 8))), "expected_output": encode_array([[9, 9, 9]]),
        "atol": "0.01", "rtol": "0"}})
    status = assert_refused(v1_device, keys_dir, model_bytes, "self-test-failed")
    assert status["bad_versions"] == ["sensor/2/cpu"]
    # the bad build is not retried; the device is healthy on v1 again
    result = v1_device.poll_once()
    assert result.ok and result.action == "up-to-date" and result.version == 1


def test_model_that_does_not_load(v1_device, repo, keys_dir, model_bytes, tiny_models):
    from tests.helpers.ota import release

    rel = release(tiny_models, 2)
    rel.data = b"TFL3" + os.urandom(3000)
    repo.publish([rel])
    assert_refused(v1_device, keys_dir, model_bytes, "model-load-failed")
    assert v1_device.status()["bad_versions"] == ["sensor/2/cpu"]


def test_active_model_is_the_verified_one(v1_device, model_bytes):
    meta = v1_device.slots.verified(v1_device.slots.active_slot())
    assert meta["sha256"] == hashlib.sha256(model_bytes["a"]).hexdigest()


def test_a_bad_index_entry_of_another_model_does_not_lock_the_device_out(
        v1_device, repo, keys_dir, model_bytes, tiny_models, publish):
    """Only the entries of the model a device follows are acted on, so one of another model's
    cannot freeze every device on the channel."""
    from tests.helpers.ota import add_raw_target, release

    rel = release(tiny_models, 1, which="b", name="other")
    add_raw_target(repo, target_path("other", "stable", 2**63, "cpu"), rel.data,
                   dict(rel.custom, name="other", version=2**63, hardware="cpu",
                        channel="stable", rollout=100),
                   {"name": "other", "version": 2**63, "hardware": "cpu", "rollout": 100},
                   "stable")
    assert v1_device.poll_once().action == "up-to-date"
    rel = release(tiny_models, 2, which="b")
    add_raw_target(repo, rel.path, rel.data, dict(rel.custom, name="sensor", version=2,
                   hardware="cpu", channel="stable", rollout=100),
                   {"name": "sensor", "version": 2, "hardware": "cpu", "rollout": 100}, "stable")
    assert v1_device.poll_once().version == 2
    # the publisher refuses to sign on top of that index rather than carry the bad entry on
    with pytest.raises(OtaError, match="malformed"):
        publish(3)


def _index_with_v2(repo, tiny_models, **entry_changes) -> dict:
    """The channel index as it stands, plus a signed v2 target whose index entry is changed."""
    from tests.helpers.ota import add_raw_target, release

    rel = release(tiny_models, 2, which="b")
    add_raw_target(repo, rel.path, rel.data, dict(rel.custom, name="sensor", version=2,
                   hardware="cpu", channel="stable", rollout=100), None, "stable")
    index = repo.read_index("stable")
    v1 = index["models"]["sensor"][0]
    index["models"]["sensor"].append(dict(v1, path=rel.path, **entry_changes))
    return index


@pytest.mark.parametrize("changes", [
    {"version": "2"},  # a string that reads as a version
    {"version": 1, "state": "active"},  # v1 listed twice: one could be revoked, one active
])
def test_a_malformed_signed_index_is_refused_and_the_device_keeps_its_model(
        v1_device, repo, keys_dir, model_bytes, tiny_models, changes):
    from tests.helpers.ota import sign_raw_index

    index = _index_with_v2(repo, tiny_models, **{"version": 2} | changes)
    sign_raw_index(repo, "stable", json.dumps(index).encode())
    status = assert_refused(v1_device, keys_dir, model_bytes, "invalid-metadata")
    assert "signed channel index" in status["last_error"]["message"]


def test_a_revoked_build_listed_again_as_active_is_never_installed(
        v1_device, repo, keys_dir, model_bytes, tiny_models):
    from tests.helpers.ota import sign_raw_index

    index = _index_with_v2(repo, tiny_models, version=2, state="revoked")
    index["models"]["sensor"].append(dict(index["models"]["sensor"][-1], state="active"))
    sign_raw_index(repo, "stable", json.dumps(index).encode())
    assert_refused(v1_device, keys_dir, model_bytes, "invalid-metadata")


def test_a_signed_index_with_a_repeated_key_is_refused(v1_device, repo, keys_dir, model_bytes,
                                                       tiny_models):
    """Python keeps the last of two equal keys, a C reader the first: with v2 revoked in one
    copy and active in the other, the index means two things, so it means nothing."""
    from tests.helpers.ota import sign_raw_index

    index = _index_with_v2(repo, tiny_models, version=2)
    entries = json.dumps(index["models"]["sensor"])
    revoked = json.dumps([dict(e, state="revoked") for e in index["models"]["sensor"]])
    text = f'{{"models": {{"sensor": {revoked}, "sensor": {entries}}}, "schema_version": 2}}'
    sign_raw_index(repo, "stable", text.encode())
    status = assert_refused(v1_device, keys_dir, model_bytes, "invalid-metadata")
    assert "appears twice" in status["last_error"]["message"]


def test_a_deeply_nested_signed_index_is_invalid_metadata_not_a_crash(
        v1_device, repo, keys_dir, model_bytes):
    from tests.helpers.ota import sign_raw_index

    deep = b'{"models": {}, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    sign_raw_index(repo, "stable", deep)
    status = assert_refused(v1_device, keys_dir, model_bytes, "invalid-metadata")
    assert "malformed" in status["last_error"]["message"]


@pytest.mark.parametrize("changes", [{"version": "2"}, {"version": 1}])
def test_the_publisher_refuses_to_build_on_a_malformed_index(
        v1_device, repo, tiny_models, changes):
    from tests.helpers.ota import release, sign_raw_index

    index = _index_with_v2(repo, tiny_models, **{"version": 2} | changes)
    sign_raw_index(repo, "stable", json.dumps(index).encode())
    with pytest.raises(OtaError, match="signed index .* is malformed"):
        repo.publish([release(tiny_models, 3)])
