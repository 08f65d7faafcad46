"""A state folder holding anything at all: polls never raise, `device status` never fails, the
damage is repaired from what still verifies, and `verified` means signed."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from edgeship.cli import main
from edgeship.device.agent import Agent
from edgeship.device.state import device_status
from tests.helpers.threads import ended


@pytest.fixture
def v1(publish, make_agent) -> Agent:
    publish(1)
    agent = make_agent()
    assert agent.poll_once().version == 1
    return agent


def _path(agent: Agent, *parts: str) -> str:
    return os.path.join(agent.state_dir, *parts)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _edit_meta(agent: Agent, slot: str, **changes) -> None:
    path = _path(agent, "slots", slot, "meta.json")
    with open(path) as f:
        meta = json.load(f)
    meta.update(changes)
    _write(path, json.dumps(meta))


def _assert_runs_signed_v1(agent: Agent) -> None:
    status = agent.status()
    assert status["active"]["version"] == 1 and status["active"]["verified"] is True, status
    assert status["damaged"] == []


@pytest.mark.parametrize("content", ["[]", '"text"', "{}", "not json", "{" * 100_000])
def test_a_damaged_meta_of_the_active_slot_is_rebuilt_from_the_signed_metadata(v1, content):
    """Every later poll used to end as internal-error, with no repair."""
    _write(_path(v1, "slots", "a", "meta.json"), content)
    assert v1.status()["active"] is None  # status reads it as damaged, and says so
    assert v1.status()["damaged"][0].startswith("slots/a/meta.json: ")
    result = v1.poll_once()
    assert result.ok, result
    _assert_runs_signed_v1(v1)
    assert "meta.json rebuilt from the signed metadata of sensor v1" in v1.status()["repairs"][-1]


@pytest.mark.parametrize("changes", [{"version": "x"}, {"version": 2**63}, {"sha256": "00"},
                                     {"name": "../etc"}, {"length": -1}, {"version": True}])
def test_a_meta_with_a_bad_field_is_damaged(v1, changes):
    _edit_meta(v1, "a", **changes)
    (field,) = changes
    assert field in v1.status()["damaged"][0]
    assert v1.poll_once().ok
    _assert_runs_signed_v1(v1)


def test_a_replaced_model_with_an_edited_meta_is_not_verified_and_is_reinstalled(v1, model_bytes):
    """`verified` used to compare the file with the slot's own meta.json: a replaced model with
    a matching meta read as verified. It now means: matches the *signed* target metadata."""
    import hashlib

    other = model_bytes["b"]
    with open(_path(v1, "slots", "a", "model.tflite"), "wb") as f:
        f.write(other)
    _edit_meta(v1, "a", sha256=hashlib.sha256(other).hexdigest(), length=len(other))
    active = v1.status()["active"]
    assert active["verified"] is False
    assert active["not_verified"] == "the model file does not match its signed length and sha256"
    assert v1.poll_once().ok  # not a signed build: the slot is emptied, v1 installed again
    _assert_runs_signed_v1(v1)
    with open(v1.active_model_path(), "rb") as f:
        assert f.read() == model_bytes["a"]
    assert any(r.endswith("slots/a/model.tflite is not the signed sensor v1; slot emptied")
               for r in v1.status()["repairs"])


def test_status_says_unverified_when_the_tuf_cache_cannot_prove_anything(v1):
    _write(_path(v1, "tuf", "timestamp.json"), "{}")
    active = v1.status()["active"]
    assert active["verified"] is False and "TUF cache" in active["not_verified"]
    assert v1.poll_once().ok  # ngclient fetches what it cannot use from the cache again
    _assert_runs_signed_v1(v1)


@pytest.mark.parametrize("parts, kind", [
    (("slots", "b"), "file"), (("slots",), "file"), (("tuf",), "file"), (("active",), "dir"),
    (("status.json",), "dir"), (("bad_versions.json",), "dir"),
    (("slots", "a", "meta.json"), "dir"), (("trusted_root.json",), "dir"), (("cache",), "file"),
    (("tuf", "snapshot.json"), "dir"), (("tuf", "root_history"), "file"),
])
def test_a_file_where_a_folder_belongs_or_the_reverse(v1, parts, kind):
    path = _path(v1, *parts)
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)
    os.makedirs(path) if kind == "dir" else _write(path, "x")
    status = device_status(v1.state_dir)  # never fails
    assert isinstance(status["damaged"], list)
    assert main(["device", "status", "--state-dir", v1.state_dir]) == 0
    assert v1.poll_once().ok
    _assert_runs_signed_v1(v1)


def test_an_active_pointer_naming_no_slot_is_pointed_at_the_signed_build(v1):
    _write(_path(v1, "active"), "c\n")
    assert v1.status()["damaged"] == ["active: names no slot: 'c'"]
    assert v1.poll_once().ok
    _assert_runs_signed_v1(v1)
    assert v1.status()["repairs"][-1].endswith("active: names no slot: 'c'; now slot a")


def test_bad_versions_keeps_its_well_formed_entries(v1):
    _write(_path(v1, "bad_versions.json"),
           json.dumps({"tiny/2/cpu": {"reason": "self-test-failed"}, "junk": 5}))
    assert v1.bad_versions() == {"tiny/2/cpu": {"reason": "self-test-failed"}}


def test_a_device_out_of_reach_of_its_bucket_repairs_from_its_tuf_cache(v1, make_agent):
    """The application must keep a model it can prove while the bucket is unreachable."""
    _write(_path(v1, "slots", "a", "meta.json"), "[]")
    assert v1.active_model_path() is None
    offline = make_agent(repo_url="http://127.0.0.1:9")
    result = offline.poll_once()
    assert (result.ok, result.reason) == (False, "bucket-unreachable")
    assert offline.active_model_path() is not None
    _assert_runs_signed_v1(offline)
    assert "rebuilt from the signed metadata of sensor v1" in offline.status()["repairs"][-1]


@pytest.mark.parametrize("changes", [{"version": 999}, {"name": "x"}, {"version": 2**63 - 1}])
def test_an_unsigned_model_with_a_plausible_meta_is_neither_kept_nor_trusted(
        v1, model_bytes, publish, changes):
    """Found in review: a slot naming a build the signed metadata does not list was kept, and
    its version then blocked every later update ("sensor v999 is current")."""
    import hashlib

    with open(_path(v1, "slots", "a", "model.tflite"), "wb") as f:
        f.write(model_bytes["b"])
    _edit_meta(v1, "a", sha256=hashlib.sha256(model_bytes["b"]).hexdigest(),
               length=len(model_bytes["b"]), **changes)
    publish(2, which="b")
    assert v1.poll_once().version == 2
    status = v1.status()
    assert status["active"]["version"] == 2 and status["active"]["verified"] is True


def test_a_fake_slot_is_never_made_active(v1, model_bytes):
    import hashlib

    os.makedirs(_path(v1, "slots", "b"), exist_ok=True)
    with open(_path(v1, "slots", "b", "model.tflite"), "wb") as f:
        f.write(model_bytes["b"])
    meta = json.load(open(_path(v1, "slots", "a", "meta.json")))
    meta.update(version=2**63 - 1, sha256=hashlib.sha256(model_bytes["b"]).hexdigest(),
                length=len(model_bytes["b"]))
    _write(_path(v1, "slots", "b", "meta.json"), json.dumps(meta))
    _write(_path(v1, "active"), "x\n")
    assert v1.poll_once().ok
    _assert_runs_signed_v1(v1)
    assert v1.status()["active"]["slot"] == "a"


@pytest.mark.parametrize("make", [
    lambda path: os.symlink("/dev/zero", path),  # reading it never ends
    lambda path: os.mkfifo(path),  # opening it blocks
])
@pytest.mark.parametrize("parts", [("slots", "a", "model.tflite"), ("status.json",),
                                   ("slots", "a", "meta.json"), ("active",)])
def test_a_link_or_fifo_in_the_state_folder_neither_hangs_nor_is_read(v1, make, parts):
    path = _path(v1, *parts)
    os.unlink(path)
    make(path)
    assert isinstance(ended(lambda: device_status(v1.state_dir)), dict)
    assert ended(v1.poll_once).ok
    _assert_runs_signed_v1(v1)


@pytest.mark.parametrize("name", ["trusted_root.json", "status.json", "bad_versions.json"])
def test_a_folder_left_where_a_write_puts_its_temporary_file_is_removed(v1, publish, name):
    """Found in review: a directory at status.json.tmp silently stopped every status write."""
    os.makedirs(_path(v1, name + ".tmp"))
    publish(2, which="b")
    assert v1.poll_once().version == 2
    assert v1.status()["active"]["version"] == 2
    assert v1.status()["last_result"]["version"] == 2
    assert not os.path.exists(_path(v1, name + ".tmp"))


def test_a_damaged_cached_root_is_reported_and_dropped(v1):
    """Found in review: an empty root_history/2.root.json (a power cut; python-tuf writes
    without fsync) kept `device status` from verifying anything, and was never reported."""
    _write(_path(v1, "tuf", "root_history", "2.root.json"), "")
    status = v1.status()
    assert status["active"]["verified"] is True  # the chain ends before it, as python-tuf's
    assert any(d.startswith("tuf/root_history: ") for d in status["damaged"])
    assert v1.poll_once().ok
    assert not os.path.exists(_path(v1, "tuf", "root_history", "2.root.json"))
    _assert_runs_signed_v1(v1)


def test_status_anchored_on_the_firmware_root(v1, keys_dir, tmp_path):
    """The kept copy of the root can be replaced by whoever writes the state folder; the
    firmware's own root.json is the anchor `device status --trusted-root` checks against."""
    from edgeship.edge_pusher import keys

    firmware_root = str(keys_dir / "root_history" / "1.root.json")
    keys.init_keys(tmp_path / "other-keys")
    shutil.copyfile(tmp_path / "other-keys" / "root_history" / "1.root.json",
                    _path(v1, "trusted_root.json"))
    assert device_status(v1.state_dir)["active"]["verified"] is False
    assert device_status(v1.state_dir, trusted_root=firmware_root)["active"]["verified"] is True


def test_status_with_a_missing_firmware_root_is_one_line(v1, tmp_path, capsys):
    assert main(["device", "status", "--state-dir", v1.state_dir,
                 "--trusted-root", str(tmp_path / "nope.json")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"edgeship: error: --trusted-root {tmp_path / 'nope.json'}: no such file")


def test_an_offline_repair_does_not_go_back_to_a_revoked_build(v1, publish, repo, make_agent):
    """Found in review: with ``active`` damaged and the bucket out of reach, repair made the
    newest proven slot active even when it held a build this device had left as revoked, so
    the device ran a revoked model until it could poll again. The slot it went back to is
    as proven, and not refused."""
    publish(2, which="b")
    assert v1.poll_once().version == 2  # slot b
    repo.change_rollout("sensor", 2, state="revoked")
    assert v1.poll_once().action == "reverted"  # slot a: v1; slot b still holds v2
    _write(_path(v1, "active"), "c\n")
    offline = make_agent(repo_url="http://127.0.0.1:9")
    assert offline.poll_once().reason == "bucket-unreachable"
    _assert_runs_signed_v1(offline)
    assert offline.status()["repairs"][-1].endswith("active: names no slot: 'c'; now slot a")
