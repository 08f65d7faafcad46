"""Rollout control without a new build: widen, narrow, halt and revoke are signed changes to the
channel index, which devices act on at their next poll (real repository, real ngclient)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeship.contract import index_path, rollout_bucket
from edgeship.errors import OtaError
from tests.helpers.ota import subprocess_env


def devices(version: int, below: int, above: int | None = None, n: int = 1) -> list[str]:
    """Device ids whose rollout bucket for sensor ``version`` is < below (and >= above)."""
    low = -1 if above is None else above
    return [f"d{i}" for i in range(5000)
            if low <= rollout_bucket(f"d{i}", "sensor", version) < below][:n]


def index(repo) -> dict:
    return {(e["version"], e["hardware"]): e for e in repo.read_index("stable")["models"]["sensor"]}


def test_set_widens_a_rollout_to_the_first_devices_of_the_stable_hash(repo, publish,
                                                                      make_agent) -> None:
    publish(1)
    publish(2, which="b", rollout=0)
    (early,), (late,) = devices(2, 10), devices(2, 50, above=10)
    a, b = make_agent("a", device_id=early), make_agent("b", device_id=late)
    assert a.poll_once().version == 1 and b.poll_once().version == 1  # 0 %: nobody
    repo.change_rollout("sensor", 2, percent=10)
    assert a.poll_once().version == 2 and b.poll_once().action == "up-to-date"
    repo.change_rollout("sensor", 2, percent=50)
    assert b.poll_once().version == 2
    repo.change_rollout("sensor", 2, percent=5)  # narrowing: devices on it stay
    assert a.poll_once().action == "up-to-date" and a.status()["active"]["version"] == 2
    entry = index(repo)[(2, "cpu")]
    assert (entry["rollout"], entry["state"]) == (5, "active") and entry["since"].endswith("Z")


def test_halt_stops_new_devices_and_keeps_those_on_it(repo, publish, make_agent) -> None:
    publish(1)
    publish(2, which="b", rollout=100)
    on_it = make_agent("on")
    assert on_it.poll_once().version == 2
    repo.change_rollout("sensor", 2, state="halted")
    fresh = make_agent("fresh", device_id="d-new")
    assert fresh.poll_once().version == 1  # the halted build reaches no further device
    assert on_it.poll_once().action == "up-to-date"
    assert on_it.status()["active"]["version"] == 2
    repo.change_rollout("sensor", 2, percent=100)  # set resumes a halt
    assert fresh.poll_once().version == 2


def test_revoke_sends_devices_back_and_never_forward_again(repo, publish, make_agent) -> None:
    publish(1)
    agent = make_agent()
    assert agent.poll_once().version == 1
    publish(2, which="b")
    assert agent.poll_once().version == 2
    repo.change_rollout("sensor", 2, state="revoked")
    result = agent.poll_once()
    assert (result.action, result.reason, result.version) == ("reverted", "revoked", 1)
    assert agent.status()["active"]["version"] == 1 and agent.status()["active"]["verified"]
    assert agent.bad_versions()["sensor/2/cpu"]["reason"] == "revoked"
    assert agent.poll_once().action == "up-to-date"
    fresh = make_agent("fresh", device_id="d-new")
    assert fresh.poll_once().version == 1  # nobody takes a revoked build
    publish(3)
    assert agent.poll_once().version == 3  # and the next version reaches everyone


def test_revoked_with_nothing_to_go_back_to_is_kept_and_said(repo, publish, make_agent) -> None:
    publish(1)
    agent = make_agent()
    agent.poll_once()
    repo.change_rollout("sensor", 1, state="revoked")
    result = agent.poll_once()
    assert (result.ok, result.action, result.reason) == (True, "kept-revoked",
                                                         "revoked-no-fallback")
    assert "sensor v1 is revoked" in result.message
    assert agent.status()["active"]["version"] == 1


def test_a_revocation_is_final_and_survives_pruning(repo, publish) -> None:
    publish(1)
    publish(2, which="b")
    repo.change_rollout("sensor", 2, state="revoked")
    with pytest.raises(OtaError, match="sensor v2 \\(cpu\\) is revoked, and stays revoked"):
        repo.change_rollout("sensor", 2, percent=100)
    publish(3)
    publish(4, which="b")
    publish(5)  # three full rollouts after v1: v1 and v3 are pruned, the revocation is not
    assert sorted(index(repo)) == [(2, "cpu"), (4, "cpu"), (5, "cpu")]
    assert index(repo)[(2, "cpu")]["state"] == "revoked"
    with pytest.raises(OtaError, match=r"sensor v9 is not in channel stable's index \(it lists "
                                       r"v2, v4, v5\)"):
        repo.change_rollout("sensor", 9, state="halted")


def test_a_replayed_older_index_cannot_undo_a_revocation(repo, publish, make_agent, bucket):
    """The index is a signed target: old bytes in its place fail its hash, and old metadata
    naming the old index fails TUF's version checks."""
    publish(1)
    agent = make_agent()
    agent.poll_once()
    publish(2, which="b")
    agent.poll_once()
    before = bucket.get("metadata/timestamp.json")
    old_index = repo.target(index_path("stable"))
    old_bytes = bucket.get(f"targets/index/{old_index.hashes['sha256']}.stable.json")
    repo.change_rollout("sensor", 2, state="revoked")
    assert agent.poll_once().action == "reverted"

    after = bucket.get("metadata/timestamp.json")
    bucket.put("metadata/timestamp.json", before)  # replay the whole older repository
    result = agent.poll_once()
    assert (result.action, result.reason) == ("refused", "rollback")
    bucket.put("metadata/timestamp.json", after)
    new_index = repo.target(index_path("stable"))
    key = f"targets/index/{new_index.hashes['sha256']}.stable.json"
    bucket.put(key, old_bytes)  # the old index's bytes under the new name
    fresh = make_agent("fresh", device_id="d-new")
    result = fresh.poll_once()
    assert (result.action, result.reason) == ("refused", "hash-mismatch")
    assert agent.status()["active"]["version"] == 1 and fresh.active_model_path() is None


def test_the_rollout_command_line(repo, publish, bucket, keys_dir) -> None:
    publish(1)
    publish(2, which="b", rollout=5)

    def rollout(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgeship", "rollout", *args, "--bucket",
                               bucket.url, "--keys", str(keys_dir)], capture_output=True,
                              text=True, env=subprocess_env(), timeout=120)

    done = rollout("set", "sensor", "2", "--percent", "25")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sensor v2 (cpu) on stable: active at 25%\n"
    assert rollout("halt", "sensor", "2").stdout == "sensor v2 (cpu) on stable: halted at 25%\n"
    assert rollout("revoke", "sensor", "2").returncode == 0
    refused = rollout("set", "sensor", "2", "--percent", "50")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "is revoked, and stays revoked" in refused.stderr
    bad = rollout("set", "sensor", "2", "--percent", "150")
    assert bad.returncode == 2 and "must be an integer 0..100" in bad.stderr
    assert json.loads(json.dumps(index(repo)[(2, "cpu")]))["state"] == "revoked"


def test_revoked_with_an_empty_other_slot_takes_an_older_build_from_the_index(
        repo, publish, make_agent) -> None:
    """Found in review: a device whose first install was the newest build has nothing in its
    other slot; revoking that build must still move it to the older build the index offers."""
    publish(1)
    publish(2, which="b")
    fresh = make_agent("fresh")
    assert fresh.poll_once().version == 2  # straight to v2: slot a was never filled
    repo.change_rollout("sensor", 2, state="revoked")
    result = fresh.poll_once()
    assert (result.action, result.version) == ("updated", 1)
    assert fresh.status()["active"]["version"] == 1 and fresh.status()["active"]["verified"]
    assert fresh.poll_once().action == "up-to-date"


def test_an_index_devices_would_refuse_is_never_written(repo, publish, monkeypatch) -> None:
    """Found in review: revocations are kept for ever, so an index could outgrow what devices
    read (length-exceeded on every device). The publisher refuses to write it."""
    from edgeship.edge_pusher import repository

    publish(1)
    monkeypatch.setattr(repository, "MAX_INDEX_BYTES", 300)
    with pytest.raises(OtaError, match="channel stable's index would be \\d+ bytes, over the 300"):
        publish(2, which="b")
    assert [e["version"] for e in repo.read_index("stable")["models"]["sensor"]] == [1]


def test_a_revoked_build_is_replaced_by_what_the_index_offers_not_by_any_older_slot(
        repo, publish, make_agent) -> None:
    """Found in review: revert went to the other slot whatever the index said of it (a halted
    build, or one a newer full rollout had superseded). It now goes where the index would send
    a device without a model, from the other slot only when that is the same build."""
    (device,) = devices(2, 99)
    publish(1)
    agent = make_agent(device_id=device)
    agent.poll_once()  # slot a: v1
    publish(2, which="b", rollout=99)  # partial: v1 stays in the index as a full rollout
    agent.poll_once()  # slot b: v2
    publish(3)  # slot a: v3
    assert agent.poll_once().version == 3
    repo.change_rollout("sensor", 2, state="halted")
    repo.change_rollout("sensor", 3, state="revoked")
    result = agent.poll_once()  # slot b holds v2, halted: not a place to go back to
    assert (result.action, result.version) == ("updated", 1)
    assert agent.status()["active"]["version"] == 1


def test_revert_in_place_when_the_other_slot_holds_what_the_index_offers(
        repo, publish, make_agent) -> None:
    publish(1)
    agent = make_agent()
    agent.poll_once()
    publish(2, which="b")
    agent.poll_once()
    repo.change_rollout("sensor", 2, state="revoked")
    result = agent.poll_once()
    assert (result.action, result.reason, result.version) == ("reverted", "revoked", 1)
    assert result.message == "sensor v2 is revoked; back to sensor v1"
