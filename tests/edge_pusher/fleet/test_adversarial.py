"""The rollout policy against devices that lie: generated fleets, stages and policies, honest
devices, and k colluding devices (fewer than the policy's thresholds) that send any report a
valid MQTT login lets them send (any hardware, channel, model, version, refusals, health,
time). Whatever they send, the decisions are ones the same devices could have caused by
reporting honestly, one verdict each, on the builds offered to them: so no such minority
changes a decision that the honest devices' reports determine.

The three attacks found in issue 18, as examples of that property and as plain tests:
a covered device both unhealthy on and refusing a build (counted twice, it revoked a build 4
honest devices ran healthily); an uncovered device claiming the build runs healthily (it
advanced 25 % -> 50 %); a device claiming another hardware (it spoke for that hardware's
build)."""

from __future__ import annotations

import functools
import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edgeship.contract import rollout_covers
from edgeship.edge_pusher.fleet.registry import Identity
from edgeship.edge_pusher.fleet.reports import report_problem, trim
from edgeship.edge_pusher.fleet.watch import Policy, plan
from edgeship.errors import OtaError

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
STAMP = NOW.isoformat().replace("+00:00", "Z")
HARDWARE = ("cpu", "arm")
#: What an honest device can say of the build under rollout (v2 of its hardware).
COVERED_VOTES = ("silent", "v1", "healthy", "unhealthy", "refused")
UNCOVERED_VOTES = ("silent", "v1")


def index(stage: int) -> dict[str, list[dict]]:
    """v1 everywhere, v2 at ``stage`` % on both hardware, an hour into its stage."""
    since = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    return {"sensor": [
        {"version": v, "hardware": h, "rollout": r, "state": "active", "since": since,
         "path": f"models/sensor/stable/{v}/{h}/model.tflite"}
        for v, r in ((1, 100), (2, stage)) for h in HARDWARE]}


def report(device_id: str, hardware: str, vote: str) -> dict[str, Any] | None:
    """An honest device's report for ``vote`` (None: it sends nothing)."""
    if vote == "silent":
        return None
    version = 1 if vote in ("v1", "refused") else 2
    return {"schema_version": 1, "device_id": device_id, "hardware": hardware,
            "channel": "stable", "time": STAMP, "last_result": {},
            "active": {"name": "sensor", "version": version, "sha256": "x"},
            "refused": {f"sensor/2/{hardware}": "self-test-failed"} if vote == "refused"
            else {},
            "health": {"state": vote, "name": "sensor", "version": 2, "reason": "", "at": ""}
            if vote in ("healthy", "unhealthy") else None}


def covered(device_id: str, hardware: str, stage: int) -> bool:
    del hardware  # coverage hashes the device, model and version; hardware picks the build
    return rollout_covers(stage, device_id, "sensor", 2)


def outcome(reports: dict[str, dict], registry: dict[str, Identity], stage: int,
            policy: Policy) -> tuple:
    """What the policy decides, as a comparable value ("no data" when it decides nothing)."""
    try:
        made = plan(reports, registry, index(stage), "stable", policy, NOW)
    except OtaError:
        return ("no data",)
    return tuple(sorted((d.name, d.version, d.hardware, d.action, d.to) for d in made))


NAMES = st.sampled_from(["sensor", "other"])
KEYS = st.sampled_from(["sensor/2/cpu", "sensor/2/arm", "sensor/02/cpu", "sensor/1/cpu",
                        "sensor/3/arm", "other/2/cpu", "sensor/2", "junk"])
REASONS = st.sampled_from(["self-test-failed", "model-load-failed", "revoked",
                           "bucket-unreachable"])


@st.composite
def any_report(draw, device_id: str, registered: str) -> dict[str, Any]:
    """Any report a device's login can publish that the reader accepts (weighted toward
    the claims that could matter: its own hardware, fresh, the build under rollout)."""
    other = "arm" if registered == "cpu" else "cpu"
    sent = {
        "schema_version": 1, "device_id": device_id,
        "hardware": draw(st.sampled_from([registered] * 4 + [other] * 3 + ["tpu"])),
        "channel": draw(st.sampled_from(["stable"] * 6 + ["beta"])),
        "time": draw(st.sampled_from([STAMP] * 6 + ["2099-01-01T00:00:00Z",
                                                    "2020-01-01T00:00:00Z"])),
        "last_result": {},
        "active": draw(st.sampled_from([None, ("sensor", 2), ("sensor", 2), ("sensor", 2),
                                         ("sensor", 1), ("sensor", 3), ("other", 2)])),
        "refused": draw(st.dictionaries(st.sampled_from(
            [f"sensor/2/{registered}"] * 4 + [f"sensor/2/{other}"] * 2) | KEYS,
            st.sampled_from(["self-test-failed"] * 3) | REASONS, max_size=3)),
        "health": draw(st.none() | st.fixed_dictionaries({
            "state": st.sampled_from(["healthy", "unhealthy"]), "name": NAMES,
            "version": st.integers(1, 3), "reason": st.just(""), "at": st.just("")})),
    }
    if sent["active"]:
        sent["active"] = {"name": sent["active"][0], "version": sent["active"][1],
                          "sha256": "x"}
    if sent["active"] and draw(st.sampled_from([True, True, False])):  # on what it runs
        sent["health"] = {"state": draw(st.sampled_from(["healthy", "unhealthy"])),
                            "name": sent["active"]["name"],
                            "version": sent["active"]["version"], "reason": "", "at": ""}
    return sent


@st.composite
def mixed_claims(draw, device_id: str, registered: str) -> dict[str, Any]:
    """A report that says several honest verdicts at once (runs the build, healthy or not,
    and refused it, under one or two spellings of its key), for its own hardware or another:
    the contradictions that once counted twice."""
    hardware = draw(st.sampled_from([registered, registered, "arm" if registered == "cpu"
                                     else "cpu"]))
    sent = report(device_id, hardware, draw(st.sampled_from(["healthy", "unhealthy"])))
    assert sent is not None
    keys = draw(st.lists(st.sampled_from([f"sensor/2/{hardware}", f"sensor/02/{hardware}",
                                          f"sensor/002/{hardware}"]),
                         min_size=1, max_size=3, unique=True))
    sent["refused"] = {k: draw(st.sampled_from(["self-test-failed", "model-load-failed",
                                                "revoked"])) for k in keys}
    return sent


@st.composite
def scenarios(draw) -> dict[str, Any]:
    k = draw(st.sampled_from([1, 1, 2, 2, 3]))
    # below the thresholds mostly; the property holds (and is checked) above them too
    below = draw(st.booleans() | st.just(True))
    low = k + 1 if below else 1
    policy = Policy(stages=(5, 25, 50, 100), min_healthy=draw(st.integers(low, k + 3)),
                    min_failures=draw(st.integers(low, k + 3)), soak_seconds=0,
                    max_failure_share=draw(st.sampled_from([0.0, 0.2, 0.5])),
                    on_failure=draw(st.sampled_from(["halt", "revoke"])),
                    max_report_age=3600)
    stage = draw(st.sampled_from([5, 25, 50]))
    honest_ids = [f"h{i}" for i in range(draw(st.integers(0, 10)))]
    hardware = {d: draw(st.sampled_from(HARDWARE)) for d in honest_ids}
    votes = {d: draw(st.sampled_from(COVERED_VOTES if covered(d, hardware[d], stage)
                                     else UNCOVERED_VOTES)) for d in honest_ids}
    # attackers the stage covers, mostly: what an uncovered one says should count for nothing
    attackers = [_covered_ids(stage, 1, inside=draw(st.sampled_from([True, True, False])),
                              prefix=f"a{i}-")[0] for i in range(k)]
    hardware |= {a: draw(st.sampled_from(HARDWARE)) for a in attackers}
    lies = {a: draw(any_report(a, hardware[a]) | mixed_claims(a, hardware[a]))
            for a in attackers}
    return {"policy": policy, "stage": stage, "hardware": hardware, "votes": votes,
            "lies": lies}


def honest_reports(s: dict[str, Any], votes: dict[str, str]) -> dict[str, dict]:
    found = {d: report(d, s["hardware"][d], v) for d, v in votes.items()}
    return {d: r for d, r in found.items() if r is not None}


def check(s: dict[str, Any]) -> None:
    registry = {d: Identity(h, "stable") for d, h in s["hardware"].items()}
    honest = honest_reports(s, s["votes"])
    lies = {}
    for device_id, lie in s["lies"].items():
        assert report_problem(lie, device_id) is None  # the reader would accept it
        trim(lie)
        lies[device_id] = lie
    attacked = outcome(honest | lies, registry, s["stage"], s["policy"])
    # every way the attackers could have reported honestly, one verdict each
    choices = [COVERED_VOTES if covered(a, s["hardware"][a], s["stage"]) else UNCOVERED_VOTES
               for a in s["lies"]]
    possible = {outcome(honest | honest_reports(s, dict(zip(s["lies"], votes, strict=True))),
                        registry, s["stage"], s["policy"])
                for votes in itertools.product(*choices)}
    assert attacked in possible, (attacked, possible)
    if len(possible) == 1:  # the honest devices determine the decision: nobody moves it
        assert attacked == next(iter(possible))


def _covered_ids(stage: int, n: int, inside: bool = True, prefix: str = "h") -> list[str]:
    """``n`` device ids that v2's rollout at ``stage`` % covers (or, not ``inside``, not)."""
    return list(_ids(stage, inside, prefix)[:n])


@functools.cache
def _ids(stage: int, inside: bool, prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(400)
                 if rollout_covers(stage, f"{prefix}{i}", "sensor", 2) == inside)


# The attacks, as cases of the property (hypothesis runs them first, every time).
def _attack_double() -> dict[str, Any]:
    honest = _covered_ids(25, 5)
    a = honest.pop()
    lie = report(a, "cpu", "unhealthy") | {"refused": {"sensor/2/cpu": "self-test-failed"}}
    return {"policy": Policy(stages=(5, 25, 50, 100), min_healthy=3, min_failures=2,
                             soak_seconds=0, on_failure="revoke"),
            "stage": 25, "hardware": {d: "cpu" for d in [*honest, a]},
            "votes": {d: "healthy" for d in honest}, "lies": {a: lie}}


def _attack_uncovered() -> dict[str, Any]:
    waiting = _covered_ids(25, 4)
    a = _covered_ids(25, 1, inside=False)[0]
    return {"policy": Policy(stages=(5, 25, 50, 100), min_healthy=1, min_failures=2,
                             soak_seconds=0),
            "stage": 25, "hardware": {d: "cpu" for d in [*waiting, a]},
            "votes": {d: "v1" for d in waiting}, "lies": {a: report(a, "cpu", "healthy")}}


def _attack_hardware() -> dict[str, Any]:
    ids = _covered_ids(25, 4)
    a = ids.pop()
    return {"policy": Policy(stages=(5, 25, 50, 100), min_healthy=2, min_failures=2,
                             soak_seconds=0),
            "stage": 25, "hardware": {d: "cpu" for d in [*ids, a]},
            "votes": {d: "v1" for d in ids},
            "lies": {a: report(a, "arm", "healthy")}}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
@example(_attack_double())
@example(_attack_uncovered())
@example(_attack_hardware())
def test_colluding_devices_below_the_thresholds_move_nothing_honest_devices_decide(s) -> None:
    check(s)


def test_one_device_unhealthy_and_refusing_counts_once() -> None:
    """Issue 18: with 4 honest devices running the build healthily, one device reporting it
    both active-and-unhealthy and refused met --min-failures 2 alone and revoked it."""
    honest = _covered_ids(25, 5)
    attacker = honest.pop()
    reports = {d: report(d, "cpu", "healthy") for d in honest}
    both = report(attacker, "cpu", "unhealthy")
    both["refused"] = {"sensor/2/cpu": "self-test-failed", "sensor/02/cpu": "model-load-failed"}
    reports[attacker] = both
    registry = {d: Identity("cpu", "stable") for d in reports}
    policy = Policy(stages=(5, 25, 50, 100), min_healthy=3, min_failures=2, soak_seconds=0,
                    on_failure="revoke")
    (decision,) = [d for d in plan(reports, registry, index(25), "stable", policy, NOW)
                   if d.hardware == "cpu"]
    assert decision.counts["failures"] == 1 and decision.counts["tried"] == 5
    assert (decision.action, decision.to) == ("advance", 50), decision.line()


def test_an_uncovered_device_claiming_the_build_is_ignored_and_named() -> None:
    """Issue 18: a device the stage does not cover, claiming the build runs healthily,
    advanced the rollout 25 % -> 50 % while the covered devices had not taken it yet."""
    waiting = _covered_ids(25, 4)
    outsider = _covered_ids(25, 1, inside=False)[0]
    reports = {d: report(d, "cpu", "v1") for d in waiting}
    reports[outsider] = report(outsider, "cpu", "healthy")
    registry = {d: Identity("cpu", "stable") for d in reports}
    policy = Policy(stages=(5, 25, 50, 100), min_healthy=1, soak_seconds=0)
    (decision,) = [d for d in plan(reports, registry, index(25), "stable", policy, NOW)
                   if d.hardware == "cpu"]
    assert decision.action == "hold" and decision.counts["healthy"] == 0
    assert decision.counts["ignored"]["uncovered"] == {"devices": 1, "ids": [outsider]}
    assert f"ignored: 1 not covered by the stage ({outsider})" in decision.line()


def test_a_device_cannot_speak_for_another_hardware() -> None:
    """Issue 18: a device could report any hardware, and so advance or stop a build no device
    of that hardware reported on. Its registered identity is what counts; a claim of another
    is ignored and shown as a mismatch."""
    arm = _covered_ids(25, 3)
    reports = {d: report(d, "arm", "refused") for d in arm}  # registered cpu, claim arm
    reports["h-real"] = report("h-real", "cpu", "v1")
    registry = {d: Identity("cpu", "stable") for d in reports}
    policy = Policy(stages=(5, 25, 50, 100), min_failures=2, soak_seconds=0)
    decisions = plan(reports, registry, index(25), "stable", policy, NOW)
    assert {d.action for d in decisions} == {"hold"}, [d.line() for d in decisions]
    (arm_build,) = [d for d in decisions if d.hardware == "arm"]
    assert arm_build.counts["ignored"]["mismatched"]["devices"] == 3
    assert "3 mismatched" in arm_build.line()


def test_unregistered_devices_count_for_nothing() -> None:
    ids = _covered_ids(25, 4)
    reports = {d: report(d, "cpu", "healthy") for d in ids}
    policy = Policy(stages=(5, 25, 50, 100), min_healthy=1, soak_seconds=0)
    registry = {ids[0]: Identity("cpu", "stable")}
    (decision,) = [d for d in plan(reports, registry, index(25), "stable", policy, NOW)
                   if d.hardware == "cpu"]
    assert decision.counts["healthy"] == 1
    assert decision.counts["ignored"]["unregistered"]["ids"] == ids[1:]
    try:
        plan(reports, {}, index(25), "stable", policy, NOW)
    except OtaError as e:
        assert "ignored 4 from unregistered devices" in str(e)
    else:
        raise AssertionError("no registered device: no data, nothing decided")


def test_devices_of_another_model_cannot_stop_this_ones_rollout() -> None:
    """Found by an outside attacker: two devices running `camera`, whose hash falls inside
    sensor v2's stage, reported sensor v2 as failing its self-test and revoked it over three
    sensor devices running it healthily. A device speaks only of the model it follows."""
    sensor = _covered_ids(25, 3)
    camera = _covered_ids(25, 5)[3:]
    reports = {d: report(d, "cpu", "healthy") for d in sensor}
    for d in camera:
        liar = report(d, "cpu", "v1")
        liar["active"] = {"name": "camera", "version": 1, "sha256": "x"}
        liar["refused"] = {"sensor/2/cpu": "self-test-failed"}
        reports[d] = liar
    registry = {d: Identity("cpu", "stable") for d in reports}
    models = index(25) | {"camera": [{"version": 1, "hardware": "cpu", "rollout": 100,
                                      "state": "active", "since": STAMP,
                                      "path": "models/camera/stable/1/cpu/model.tflite"}]}
    policy = Policy(stages=(5, 25, 50, 100), min_healthy=3, min_failures=2, soak_seconds=0,
                    on_failure="revoke")
    (decision,) = [d for d in plan(reports, registry, models, "stable", policy, NOW)
                   if (d.name, d.hardware) == ("sensor", "cpu")]
    assert decision.counts["failures"] == 0 and decision.counts["tried"] == 3
    assert (decision.action, decision.to) == ("advance", 50), decision.line()


def test_the_fleet_readers_own_topic_and_name_never_count(tmp_path) -> None:
    """Found by an outside attacker: the ACL's device pattern lets the fleet reader's password
    write edgeship/devices/fleet/state, and a registry listing 'fleet' gave it a vote."""
    import json as json_module

    from edgeship.edge_pusher.fleet.registry import read_registry
    from edgeship.edge_pusher.fleet.reports import parse

    payload = json_module.dumps(report("fleet", "cpu", "healthy")).encode()
    assert "the fleet reader's own topic" in parse("edgeship/devices/fleet/state", payload,
                                                   "edgeship")
    path = tmp_path / "devices.json"
    path.write_text(json_module.dumps({"schema_version": 1, "devices": {
        "fleet": {"hardware": "cpu", "channel": "stable"}}}))
    try:
        read_registry(path)
    except OtaError as e:
        assert "'fleet' is the fleet reader, not a device" in str(e)
    else:
        raise AssertionError("a registry naming the reader was taken")


def test_a_registry_that_is_not_a_regular_file_is_refused_at_once(tmp_path) -> None:
    import os

    from edgeship.edge_pusher.fleet.registry import read_registry

    fifo = tmp_path / "devices.json"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        try:
            read_registry(path)
        except OtaError as e:
            assert "not a regular file" in str(e)
        else:
            raise AssertionError(f"{path} was read as a registry")


def test_devices_registered_for_another_model_cannot_claim_this_ones_build() -> None:
    """Found in review: without a model in the registry a device chooses the model its report
    says it runs, so two devices of `camera` claiming to run sensor v2 unhealthily revoked it.
    Registered with their model, that claim is a mismatch and counts for nothing."""
    sensor = _covered_ids(25, 3)
    camera = _covered_ids(25, 5)[3:]
    reports = {d: report(d, "cpu", "healthy") for d in sensor}
    reports |= {d: report(d, "cpu", "unhealthy") for d in camera}  # the lie: they run camera
    registry = {d: Identity("cpu", "stable", "sensor") for d in sensor}
    registry |= {d: Identity("cpu", "stable", "camera") for d in camera}
    policy = Policy(stages=(5, 25, 50, 100), min_healthy=3, min_failures=2, soak_seconds=0,
                    on_failure="revoke")
    (decision,) = [d for d in plan(reports, registry, index(25), "stable", policy, NOW)
                   if (d.name, d.hardware) == ("sensor", "cpu")]
    assert decision.counts["failures"] == 0, decision.line()
    assert (decision.action, decision.to) == ("advance", 50), decision.line()
    assert decision.counts["ignored"]["mismatched"]["devices"] == 2
    # and a device registered for its model speaks of that model's refusals only
    from edgeship.edge_pusher.fleet.registry import vet

    liar = report(camera[0], "cpu", "v1") | {"active": None,
                                           "refused": {"sensor/2/cpu": "self-test-failed",
                                                       "camera/1/cpu": "model-load-failed"}}
    kept = vet({camera[0]: liar}, {camera[0]: Identity("cpu", "stable", "camera")})
    assert kept.reports[camera[0]]["refused"] == {"camera/1/cpu": "model-load-failed"}
