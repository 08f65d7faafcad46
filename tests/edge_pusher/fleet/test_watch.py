"""The rollout policy: each decision from the numbers, and carried out on a real repository."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from edgeship.contract import rollout_bucket
from edgeship.edge_pusher.fleet.registry import Identity
from edgeship.edge_pusher.fleet.status import BUILD_FAILURES, BuildRow
from edgeship.edge_pusher.fleet.watch import Policy, decide, watch_once
from edgeship.errors import OtaError
from tests.edge_pusher.fleet.test_status import report

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
POLICY = Policy(stages=(5, 25, 100), min_healthy=3, soak_seconds=600, max_failure_share=0.2,
                max_report_age=10**8)  # the tests' clock jumps hours ahead of the reports


def row(rollout=5, running=0, unhealthy=0, refused=None, soaked=3600, covered=50) -> BuildRow:
    """A build's row as distinct covered devices make it: ``running`` of them run it (of
    which ``unhealthy`` are), others refused it by reason."""
    failed = sum(n for reason, n in (refused or {}).items() if reason in BUILD_FAILURES)
    r = BuildRow("stable", "sensor", 2, "cpu", rollout, "active",
                 since=(NOW - timedelta(seconds=soaked)).isoformat().replace("+00:00", "Z"),
                 covered=covered, running=running, unhealthy=unhealthy,
                 healthy=running - unhealthy, failures=unhealthy + failed,
                 tried=running + failed)
    r.refused.update(refused or {})
    return r


def registered(reports: dict, hardware: str = "cpu") -> dict:
    """A registry listing every reporting device as what it claims (on ``stable``)."""
    return {d: Identity(r.get("hardware", hardware), "stable") for d, r in reports.items()}


@pytest.mark.parametrize(("build", "action", "to", "why"), [
    (row(running=3), "advance", 25,
     "3 healthy of 50 covered (3 needed), 0 of 3 failed, 3600 s at 5%"),
    (row(rollout=25, running=10), "advance", 100, "10 healthy"),
    (row(running=2), "hold", None, "2 healthy devices, 3 needed (the stage covers 50)"),
    (row(running=2, covered=2), "advance", 25, "2 healthy of 2 covered (2 needed)"),
    (row(running=0, covered=0), "hold", None, "covers none of the reporting devices"),
    # found in review: one device's word alone never stops a rollout
    (row(running=0, refused={"self-test-failed": 1}, covered=9), "hold", None,
     "1 of 1 devices that tried it failed, fewer than the 2 needed to stop it: not widened"),
    (row(running=0, refused={"self-test-failed": 1}, covered=1), "hold", None, "fewer than"),
    (row(running=0, refused={"self-test-failed": 2}, covered=2), "halt", None, "2 of 2"),
    (row(running=9, soaked=60), "hold", None, "60 s of 600 s soak at this stage; 9 healthy"),
    (row(running=4, refused={"self-test-failed": 2}), "halt", None,
     "2 of 6 devices that tried it failed (33% > 20%)"),
    (row(running=5, unhealthy=2), "halt", None, "2 of 5 devices that tried it failed (40%"),
    (row(running=9, refused={"self-test-failed": 1}), "advance", 25, "1 of 10 failed"),
    (row(running=9, refused={"bucket-unreachable": 5}), "advance", 25, "0 of 9 failed"),
    (row(rollout=100, running=50), "done", None, "at its last stage"),
    (row(rollout=0, running=0), "hold", None, "below the first stage (5%): not started"),
])
def test_decisions(build, action, to, why) -> None:
    decision = decide(build, POLICY, NOW)
    assert (decision.action, decision.to) == (action, to)
    assert why in decision.why, decision.why
    assert decision.counts["running"] == build.running


def test_revoke_by_policy_and_bad_policies() -> None:
    revoking = Policy(on_failure="revoke")
    assert decide(row(running=2, unhealthy=2), revoking, NOW).action == "revoke"
    for bad in ({"stages": (25, 5)}, {"stages": ()}, {"stages": (0, 100)},
                {"max_failure_share": 1.5}, {"on_failure": "pause"}, {"stages": (5, 101)},
                {"min_healthy": 0}, {"min_failures": 0}, {"max_report_age": 0}):
        with pytest.raises(OtaError):
            Policy(**bad)


def test_watch_once_advances_and_halts_on_a_real_repository(repo, publish) -> None:
    publish(1)
    publish(2, which="b", rollout=5)
    on_v2 = [f"d{i}" for i in range(3000) if rollout_bucket(f"d{i}", "sensor", 2) < 5][:4]
    reports = {d: report(d, 2) for d in on_v2} | {f"o{i}": report(f"o{i}", 1)
                                                   for i in range(20)}
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    (decision,) = watch_once(repo, reports, "stable", POLICY, now=later,
                             registry=registered(reports))
    assert (decision.action, decision.rollout, decision.to) == ("advance", 5, 25)
    entry = {e["version"]: e for e in repo.read_index("stable")["models"]["sensor"]}[2]
    assert entry["rollout"] == 25
    (decision,) = watch_once(repo, reports, "stable", POLICY, registry=registered(reports))
    assert decision.action == "hold" and "soak" in decision.why  # a new stage soaks again

    reports[on_v2[0]] = report(on_v2[0], 2, health="unhealthy")
    reports[on_v2[1]] = report(on_v2[1], 2, health="unhealthy")
    (decision,) = watch_once(repo, reports, "stable", POLICY, now=later,
                             registry=registered(reports))
    assert decision.action == "halt" and decision.counts["failures"] == 2
    entry = {e["version"]: e for e in repo.read_index("stable")["models"]["sensor"]}[2]
    assert (entry["state"], entry["rollout"]) == ("halted", 25)
    # halted: no longer watched; v1 is again the newest active build, and complete
    (decision,) = watch_once(repo, reports, "stable", POLICY, now=later,
                             registry=registered(reports))
    assert (decision.version, decision.action) == (1, "done")


def test_stale_reports_and_no_reports_decide_nothing(repo, publish) -> None:
    """Found in review: an empty (restarted) broker, or devices gone dark, is no evidence."""
    publish(1)
    publish(2, which="b", rollout=5)
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    policy = Policy()  # reports older than an hour are stale
    with pytest.raises(OtaError, match="no device report newer than 3600 s \\(0 stale\\)"):
        watch_once(repo, {}, "stable", policy, now=later, registry={})
    on_v2 = [f"d{i}" for i in range(3000) if rollout_bucket(f"d{i}", "sensor", 2) < 5][:4]
    old = (later - timedelta(hours=3)).isoformat()
    dark = {d: report(d, 2) | {"time": old} for d in on_v2}
    with pytest.raises(OtaError, match="\\(4 stale\\)"):
        watch_once(repo, dark, "stable", policy, now=later, registry=registered(dark))
    assert {e["version"]: e["rollout"] for e in
            repo.read_index("stable")["models"]["sensor"]}[2] == 5


def test_a_clock_in_the_future_is_stale() -> None:
    """Found in review: a report dated 2099 stayed fresh for ever."""
    from edgeship.edge_pusher.fleet.watch import fresh_reports

    def at(when) -> dict:
        return {"time": when}

    fresh = fresh_reports({"now": at((NOW - timedelta(seconds=5)).isoformat()),
                           "2099": at("2099-01-01T00:00:00Z"),
                           "skewed": at((NOW + timedelta(seconds=60)).isoformat()),
                           "naive": at("2026-11-30T11:59:00"), "junk": at(17), "none": {}},
                          3600, NOW)
    assert set(fresh) == {"now", "skewed"}
