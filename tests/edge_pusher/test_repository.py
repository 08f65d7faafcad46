"""Publisher side: keys, consistent-snapshot layout, hashed bins, versions, refresh, rotation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from edgeship.edge_pusher import keys
from edgeship.edge_pusher.repository import Repository, content_key
from edgeship.errors import OtaError
from tests.helpers.ota import release


def _ts(bucket) -> Timestamp:
    return Metadata[Timestamp].from_bytes(bucket.get("metadata/timestamp.json")).signed


def test_keys_init_separates_offline_root_and_signs_root(tmp_path):
    kd = tmp_path / "k"
    keys.init_keys(kd)
    assert sorted(p.name for p in (kd / "offline").iterdir()) == ["root.pem", "signers.json"]
    assert {p.name for p in (kd / "online").iterdir()} == {
        "targets.pem", "snapshot.pem", "timestamp.pem", "signers.json"}
    assert (kd / "online" / "targets.pem").stat().st_mode & 0o077 == 0
    root = Metadata[Root].from_bytes((kd / "root.json").read_bytes())
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    assert root.signed.consistent_snapshot
    assert {root.signed.keys[k].keytype for k in root.signed.keys} == {"ed25519"}
    assert len({root.signed.roles[r].keyids[0] for r in keys.ALL_ROLES}) == 4
    with pytest.raises(OtaError, match="already holds keys"):
        keys.init_keys(kd)


def test_signers_load_through_uris_and_reject_foreign_keys(keys_dir, tmp_path):
    signers = keys.load_signers(keys_dir, "targets")
    assert signers[0].public_key.keyid == keys.public_key_of(keys_dir, "targets").keyid
    other = tmp_path / "other"
    keys.init_keys(other)
    table = json.loads((keys_dir / "online" / "signers.json").read_text())
    table["targets"] = [f"file2:{other / 'online' / 'targets.pem'}"]
    (keys_dir / "online" / "signers.json").write_text(json.dumps(table))
    with pytest.raises(OtaError, match="matches none of root's targets keys"):
        keys.load_signers(keys_dir, "targets")


@pytest.mark.parametrize("table", [["file2:targets.pem"], {"targets": 7},
                                   {"targets": ["file2:targets.pem", 7]}, "not json"])
def test_a_damaged_signers_table_is_named_not_a_traceback(keys_dir, table):
    """Found while typing keys.py: a signers.json that is not an object of URIs (a list, a
    number where a URI goes) raised AttributeError or TypeError from deep in the loader; now
    it is one line naming the file, like a damaged applied_roots.json."""
    path = keys_dir / "online" / "signers.json"
    path.write_text(table if isinstance(table, str) else json.dumps(table))
    with pytest.raises(OtaError, match=f"{path}.*(damaged|not a URI or a list of URIs)"):
        keys.load_signers(keys_dir, "targets")


def test_publish_uploads_consistent_snapshot_layout(repo, bucket, publish):
    result = publish(1)
    assert result.paths == ["models/sensor/stable/1/cpu/model.tflite"]
    listing = bucket.list()
    assert "metadata/1.root.json" in listing and "metadata/timestamp.json" in listing
    assert "metadata/1.snapshot.json" in listing and "metadata/1.targets.json" in listing
    assert sum(k.startswith("metadata/1.bins-") for k in listing) == 64
    tf = repo.target(result.paths[0])
    assert f"targets/models/sensor/stable/1/cpu/{tf.hashes['sha256']}.model.tflite" in listing
    custom = tf.custom
    assert custom["name"] == "sensor" and custom["version"] == 1 and custom["rollout"] == 100
    assert custom["hardware"] == "cpu" and custom["channel"] == "stable"
    assert custom["pipeline_run"] == "run-test"
    assert custom["input_quantization"]["dtype"] == "int8"
    assert float(custom["output_quantization"]["scale"]) > 0
    assert set(custom["self_test"]) >= {"input", "expected_output", "atol", "rtol"}
    # timestamp is tiny and points at the snapshot just written
    ts = _ts(bucket)
    assert ts.snapshot_meta.version == 1 and len(bucket.get("metadata/timestamp.json")) < 1024


def test_hashed_bins_keep_top_level_targets_bounded(repo, bucket, tiny_models):
    repo.publish([release(tiny_models, 1, name=f"m{i}") for i in range(40)])
    sv = _ts(bucket).snapshot_meta.version
    snap = Metadata[Snapshot].from_bytes(bucket.get(f"metadata/{sv}.snapshot.json")).signed
    top = Metadata[Targets].from_bytes(
        bucket.get(f"metadata/{snap.meta['targets.json'].version}.targets.json")).signed
    assert top.targets == {}  # everything lives in the bins
    assert top.delegations.succinct_roles.bit_length == 6
    assert repo.target("models/m7/stable/1/cpu/model.tflite") is not None


def test_no_version_follows_2_63_minus_1(repo, publish, tiny_models, bucket):
    publish(2**63 - 1)
    before = bucket.get("metadata/timestamp.json")
    with pytest.raises(OtaError, match=f"is at v{2**63 - 1}: no version can follow it"):
        repo.publish([release(tiny_models, 0)])  # 0 = next version
    with pytest.raises(OtaError, match="invalid version"):
        publish(2**63)
    assert bucket.get("metadata/timestamp.json") == before


def test_versions_only_go_up_within_name_and_channel(repo, publish, tiny_models):
    publish(3)
    with pytest.raises(OtaError, match="not newer than v3"):
        publish(3)
    with pytest.raises(OtaError, match="not newer than v3"):
        publish(2)
    publish(1, channel="beta")  # another channel is another series
    publish(3, hardware="edgetpu")  # a new hardware build of the newest version is allowed
    publish(4)
    result = repo.publish([release(tiny_models, 0)])  # 0 = next version
    assert result.paths == ["models/sensor/stable/5/cpu/model.tflite"]
    idx = repo.read_index("stable")["models"]["sensor"]
    # per hardware down to the second newest full rollout (the fallback if the newest stops)
    assert [(e["version"], e["hardware"]) for e in idx] == [(3, "edgetpu"), (4, "cpu"),
                                                            (5, "cpu")]


def test_index_keeps_partial_rollouts_above_the_two_newest_full_ones(repo, publish):
    publish(1)
    publish(2, rollout=100)
    publish(3, rollout=100)
    publish(4, rollout=20)
    publish(5, rollout=50)
    versions = [e["version"] for e in repo.read_index("stable")["models"]["sensor"]]
    assert versions == [2, 3, 4, 5]


def test_refresh_resigns_timestamp_only(repo, bucket, publish):
    publish(1)
    before = _ts(bucket)
    short = Repository(bucket, repo.keys_dir, timestamp_expiry=timedelta(hours=2))
    result = short.refresh()
    after = _ts(bucket)
    assert after.version == before.version + 1
    assert after.snapshot_meta.version == before.snapshot_meta.version  # nothing re-published
    assert result.paths == []
    lifetime = after.expires - short._clock()
    assert timedelta(hours=1, minutes=59) <= lifetime <= timedelta(hours=2)


def test_invalid_names_and_rollout_are_refused(tiny_models):
    with pytest.raises(OtaError, match="invalid model name"):
        release(tiny_models, 1, name="../etc")
    with pytest.raises(OtaError, match="rollout"):
        release(tiny_models, 1, rollout=101)
    with pytest.raises(OtaError, match="version"):
        release(tiny_models, -2)


def test_publisher_refuses_to_build_on_tampered_metadata(repo, bucket, publish):
    publish(1)
    sv = _ts(bucket).snapshot_meta.version
    md = Metadata[Snapshot].from_bytes(bucket.get(f"metadata/{sv}.snapshot.json"))
    md.signed.expires = md.signed.expires + timedelta(days=1)  # signature no longer matches
    assert bucket.exists(f"metadata/{sv}.snapshot.json")  # tamper with the published file
    with open(bucket.root + f"/metadata/{sv}.snapshot.json", "wb") as f:
        f.write(md.to_bytes())
    with pytest.raises(OtaError, match="snapshot metadata .* not signed by any key"):
        publish(2)


def test_any_signer_uri_scheme_can_replace_a_key_file(keys_dir, bucket, tiny_models,
                                                      monkeypatch):
    """A KMS/HSM signer is one line in signers.json: simulate one with a custom URI scheme."""
    from securesystemslib.signer import SIGNER_FOR_URI_SCHEME, CryptoSigner, Signer

    used = []

    class FakeKms(Signer):
        SCHEME = "fakekms"

        def __init__(self, inner):
            self._inner = inner

        @classmethod
        def from_priv_key_uri(cls, priv_key_uri, public_key, secrets_handler=None):
            used.append(priv_key_uri)
            pem = keys_dir / "online" / (priv_key_uri.split(":", 1)[1] + ".pem")
            return cls(CryptoSigner.from_priv_key_uri(f"file2:{pem}", public_key))

        @property
        def public_key(self):
            return self._inner.public_key

        def sign(self, payload):
            return self._inner.sign(payload)

    monkeypatch.setitem(SIGNER_FOR_URI_SCHEME, FakeKms.SCHEME, FakeKms)
    table = json.loads((keys_dir / "online" / "signers.json").read_text())
    table["timestamp"] = ["fakekms:timestamp"]
    (keys_dir / "online" / "signers.json").write_text(json.dumps(table))
    Repository(bucket, str(keys_dir)).publish([release(tiny_models, 1)])
    assert used == ["fakekms:timestamp"]
    ts = Metadata[Timestamp].from_bytes(bucket.get("metadata/timestamp.json"))
    root = keys.load_root(keys_dir).signed
    root.verify_delegate("timestamp", ts.signed_bytes, ts.signatures)


def test_rotation_retires_old_key_file(keys_dir):
    before = keys.public_key_of(keys_dir, "snapshot").keyid
    md = keys.rotate(keys_dir, "snapshot")
    assert md.signed.version == 2
    assert keys.public_key_of(keys_dir, "snapshot").keyid != before
    assert not (keys_dir / "online" / "snapshot.pem").exists()
    assert (keys_dir / "online" / "snapshot-v2.pem").exists()
    assert (keys_dir / "root_history" / "2.root.json").exists()
    with pytest.raises(OtaError, match="unknown role"):
        keys.rotate(keys_dir, "bins")


def test_retired_key_cannot_launder_metadata_through_the_publisher(keys_dir, bucket, publish,
                                                                   repo):
    """After a rotation is applied, metadata signed by the old (maybe stolen) key is refused,
    not re-signed with the new key."""
    from securesystemslib.signer import CryptoSigner

    publish(1)
    old_key = (keys_dir / "online" / "snapshot.pem").read_bytes()
    old_pub = keys.public_key_of(keys_dir, "snapshot")
    keys.rotate(keys_dir, "snapshot")
    publish(2)  # applies the rotation: snapshot re-signed with the new key
    stolen = keys_dir.parent / "stolen.pem"
    stolen.write_bytes(old_key)
    signer = CryptoSigner.from_priv_key_uri(f"file2:{stolen}", old_pub)
    sv = _ts(bucket).snapshot_meta.version
    md = Metadata[Snapshot].from_bytes(bucket.get(f"metadata/{sv}.snapshot.json"))
    md.signatures.clear()
    md.sign(signer)
    with open(bucket.root + f"/metadata/{sv}.snapshot.json", "wb") as f:
        f.write(md.to_bytes())
    with pytest.raises(OtaError, match="snapshot metadata .* not signed by any key"):
        publish(3)


def _plant_attacker_bin(bucket, tiny_models, old_targets) -> str:
    """What a holder of a rotated-away targets key can do to the bucket: re-sign targets.json
    (in place) so it also trusts the attacker's bin key, and add a target to a bin signed by
    that key. Returns the planted path."""
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import TargetFile

    snap = Metadata[Snapshot].from_bytes(
        bucket.get(f"metadata/{_ts(bucket).snapshot_meta.version}.snapshot.json")).signed
    tv = snap.meta["targets.json"].version
    targets = Metadata[Targets].from_bytes(bucket.get(f"metadata/{tv}.targets.json"))
    evil = CryptoSigner.generate_ed25519()
    succinct = targets.signed.delegations.succinct_roles
    targets.signed.delegations.keys[evil.public_key.keyid] = evil.public_key
    succinct.keyids.append(evil.public_key.keyid)
    targets.signatures.clear()
    targets.sign(old_targets)
    bucket.put(f"metadata/{tv}.targets.json", targets.to_bytes())

    path = release(tiny_models, 9).path
    name = succinct.get_role_for_target(path)
    bv = snap.meta[f"{name}.json"].version
    bin_md = Metadata[Targets].from_bytes(bucket.get(f"metadata/{bv}.{name}.json"))
    data = b"attacker model"
    tf = TargetFile.from_data(path, data, ["sha256"])
    bin_md.signed.targets[path] = tf
    bin_md.sign(evil)
    bucket.put(content_key(path, tf.hashes["sha256"]), data)
    bucket.put(f"metadata/{bv}.{name}.json", bin_md.to_bytes())
    return path


def _old_targets_signer(keys_dir):
    from securesystemslib.signer import CryptoSigner

    stolen = keys_dir.parent / "stolen-targets.pem"
    stolen.write_bytes((keys_dir / "online" / "targets.pem").read_bytes())
    public = keys.public_key_of(keys_dir, "targets")
    return CryptoSigner.from_priv_key_uri(f"file2:{stolen}", public)


def _targets_signed_by_current_key(bucket, keys_dir) -> set[str]:
    """Target paths in the bins of the bucket's current snapshot that the targets key of the
    current root signed (what a device would accept)."""
    from tuf.api.exceptions import UnsignedMetadataError

    root = keys.load_root(keys_dir).signed
    snap = Metadata[Snapshot].from_bytes(
        bucket.get(f"metadata/{_ts(bucket).snapshot_meta.version}.snapshot.json")).signed
    paths = set()
    for meta_name, meta in snap.meta.items():
        if meta_name.startswith("bins"):
            md = Metadata[Targets].from_bytes(bucket.get(f"metadata/{meta.version}.{meta_name}"))
            try:
                root.verify_delegate("targets", md.signed_bytes, md.signatures)
            except UnsignedMetadataError:
                continue
            paths.update(md.signed.targets)
    return paths


def test_bucket_cannot_reopen_the_rotation_window_with_an_old_root(keys_dir, bucket, publish,
                                                                   tiny_models):
    """Writing root v1 back as metadata/root.json must not make the publisher accept (and
    re-sign with the new key) metadata signed by the rotated-away targets key."""
    publish(1)
    old_targets = _old_targets_signer(keys_dir)
    keys.rotate(keys_dir, "targets")
    publish(2)  # applies the rotation
    path = _plant_attacker_bin(bucket, tiny_models, old_targets)
    bucket.put("metadata/root.json", (keys_dir / "root_history" / "1.root.json").read_bytes())
    before = _ts(bucket).version
    with pytest.raises(OtaError, match="targets metadata .* not signed by any key"):
        publish(3)
    assert _ts(bucket).version == before
    assert path not in _targets_signed_by_current_key(bucket, keys_dir)


def test_first_publish_after_targets_rotation_checks_bins_against_root_keys(
        keys_dir, bucket, publish, tiny_models):
    """In the genuine first publish after a targets rotation, bins are checked against the
    targets keys the roots name, not against delegations in the bucket's own targets.json."""
    publish(1)
    old_targets = _old_targets_signer(keys_dir)
    keys.rotate(keys_dir, "targets")
    path = _plant_attacker_bin(bucket, tiny_models, old_targets)
    before = _ts(bucket).version
    with pytest.raises(OtaError, match="bins-.* no valid signature"):
        publish(2)
    assert _ts(bucket).version == before
    assert path not in _targets_signed_by_current_key(bucket, keys_dir)


def test_publish_records_applied_root_and_survives_read_only_keys(keys_dir, bucket, publish,
                                                                  monkeypatch, caplog):
    publish(1)
    assert keys.applied_root(keys_dir, bucket.url) == 1
    keys.rotate(keys_dir, "timestamp")

    def read_only(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(keys, "record_applied_root", read_only)
    publish(2)  # published; only the record is missing, with a warning
    assert _ts(bucket).version == 2
    assert keys.applied_root(keys_dir, bucket.url) == 1
    assert "could not record root v2" in caplog.text
