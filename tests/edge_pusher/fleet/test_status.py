"""The fleet's status from reports and the signed index: running, pending (as devices choose),
refused by reason, reverted, unhealthy."""

from __future__ import annotations

from datetime import datetime, timezone

from edgeship.contract import rollout_bucket
from edgeship.edge_pusher.fleet.status import fleet_status, format_table


def report(device_id: str, version: int | None, hardware: str = "cpu", refused=None,
           health: str | None = None) -> dict:
    active = None if version is None else {"name": "sensor", "version": version, "sha256": "x"}
    return {"device_id": device_id, "hardware": hardware, "channel": "stable", "active": active,
            "refused": refused or {}, "last_result": {},
            "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "health": None if health is None else {"state": health, "name": "sensor",
                                                   "version": version, "reason": "", "at": ""}}


def entry(version: int, rollout: int, state: str = "active", hardware: str = "cpu") -> dict:
    return {"version": version, "hardware": hardware, "rollout": rollout, "state": state,
            "path": f"models/sensor/stable/{version}/{hardware}/model.tflite",
            "since": "2026-11-30T00:00:00Z"}


def test_counts_per_build() -> None:
    ids = [f"d{i}" for i in range(40)]
    covered = [d for d in ids if rollout_bucket(d, "sensor", 2) < 50]
    reports = {d: report(d, 1) for d in ids}
    reports[covered[0]] = report(covered[0], 2, health="unhealthy")
    reports[covered[1]] = report(covered[1], 2, health="healthy")
    reports[covered[2]] = report(covered[2], 1, refused={"sensor/2/cpu": "self-test-failed"})
    reports[covered[3]] = report(covered[3], 1, refused={"sensor/2/cpu": "revoked"})
    reports["tpu"] = report("tpu", None, hardware="edgetpu")
    rows = {(r.version, r.hardware): r for r in fleet_status(
        reports, {"stable": {"sensor": [entry(1, 100), entry(2, 50)]}})}
    v2 = rows[(2, "cpu")]
    assert (v2.rollout, v2.state, v2.running, v2.unhealthy, v2.healthy) == (50, "active", 2, 1, 1)
    assert v2.refused == {"self-test-failed": 1} and v2.reverted == 1
    assert v2.pending == len(covered) - 4  # covered, not on it, not refused
    assert v2.covered == len(covered)
    assert (v2.failures, v2.tried) == (2, 3)
    assert rows[(1, "cpu")].running == 38 and rows[(1, "cpu")].pending == 0
    assert (1, "edgetpu") not in rows  # no build for it: nothing pending
    table = format_table(list(rows.values()))
    assert table.splitlines()[0].split() == ["channel", "model", "version", "hardware",
                                             "rollout", "running", "unhealthy", "pending",
                                             "refused", "reverted"]
    assert "self-test-failed 1" in table and "50% active" in table


def test_halted_and_revoked_builds_have_nobody_pending() -> None:
    reports = {f"d{i}": report(f"d{i}", 1) for i in range(30)}
    for state in ("halted", "revoked"):
        rows = {r.version: r for r in fleet_status(
            reports, {"stable": {"sensor": [entry(1, 100), entry(2, 100, state)]}})}
        assert rows[2].pending == 0 and rows[2].state == state


def test_health_of_an_earlier_model_does_not_count() -> None:
    stale = report("d1", 2)
    stale["health"] = {"state": "unhealthy", "name": "sensor", "version": 1, "reason": "",
                       "at": ""}
    (row,) = fleet_status({"d1": stale}, {})
    assert (row.running, row.unhealthy, row.rollout) == (1, 0, None)


def test_a_device_can_only_speak_for_builds_its_rollout_offered_it() -> None:
    """Found in review: one uncovered device reporting a refusal (or another hardware's build)
    revoked a build. Only devices the build's rollout covers count against it."""
    outside, liar = [f"d{i}" for i in range(3000)
                     if rollout_bucket(f"d{i}", "sensor", 2) >= 5][:2]
    inside = next(f"d{i}" for i in range(3000) if rollout_bucket(f"d{i}", "sensor", 2) < 5)
    reports = {
        outside: report(outside, 1, refused={"sensor/2/cpu": "self-test-failed"}),
        inside: report(inside, 1, hardware="arm", refused={"sensor/2/cpu": "self-test-failed",
                                                           "sensor/²/arm": "self-test-failed"}),
        liar: report(liar, 2, health="unhealthy"),  # claims to run what never reached it
    }
    rows = {(r.version, r.hardware): r for r in fleet_status(
        reports, {"stable": {"sensor": [entry(1, 100), entry(2, 5)]}})}
    v2 = rows[(2, "cpu")]
    assert (v2.failures, v2.refused, v2.running) == (0, {}, 1)


def test_a_covered_device_with_no_model_counts_as_covered() -> None:
    """Found in review: a covered device reporting no active model and a refusal was left out
    of `covered`, so its one refusal looked like everything the stage had."""
    ids = [f"d{i}" for i in range(3000) if rollout_bucket(f"d{i}", "sensor", 2) < 50][:4]
    reports = {d: report(d, 1) for d in ids[1:]}
    reports[ids[0]] = report(ids[0], None, refused={"sensor/2/cpu": "self-test-failed"})
    rows = {(r.version, r.hardware): r for r in fleet_status(
        reports, {"stable": {"sensor": [entry(1, 100), entry(2, 50)]}})}
    assert rows[(2, "cpu")].covered == 4 and rows[(2, "cpu")].failures == 1


def test_device_text_cannot_draw_table_rows_or_drive_the_terminal() -> None:
    """Issue 18: `fleet status` printed device-supplied text raw, so a report could draw a
    fake table row or clear the operator's screen with ANSI escapes."""
    fake = "x\nstable   sensor   9   cpu   100% active   999\x1b[2J\x1b]0;owned\x07\u202e"
    reports = {"d1": report("d1", 1, refused={"sensor/2/cpu": fake})}
    table = format_table(fleet_status(reports, {}))
    assert len(table.splitlines()) == 3  # the header and two builds, nothing drawn
    assert not any(ch in table for ch in "\x1b\x07\u202e")
    assert "x\\nstable" in table and "\\x1b[2J" in table and "\\u202e" in table


def test_a_device_counts_once_per_build_whatever_its_report_repeats() -> None:
    """Issue 18: active-and-unhealthy plus a refusal (or one refusal under two spellings of
    its key) counted one device as two failures."""
    ids = [f"d{i}" for i in range(3000) if rollout_bucket(f"d{i}", "sensor", 2) < 50][:5]
    reports = {d: report(d, 2, health="healthy") for d in ids[1:]}
    reports[ids[0]] = report(ids[0], 2, health="unhealthy", refused={
        "sensor/2/cpu": "self-test-failed", "sensor/02/cpu": "model-load-failed"})
    rows = {(r.version, r.hardware): r for r in fleet_status(
        reports, {"stable": {"sensor": [entry(1, 100), entry(2, 50)]}})}
    v2 = rows[(2, "cpu")]
    assert (v2.failures, v2.tried, v2.healthy, v2.running) == (1, 5, 4, 5)
    assert sum(v2.refused.values()) == 1
