"""The automatic rollout policy (``edgeship rollout watch``): hawkBit-style stages driven by the
devices' reports.

Each cycle reads every retained report, and for the newest active build of each model and
hardware on the channel decides one of:

- ``halt`` or ``revoke`` (the policy's ``on_failure``) when the share of failures among the
  devices that tried the build is above ``max_failure_share`` and there are at least
  ``min_failures`` of them (fewer hold the build where it is). A failure is a device the
  build's rollout covers that refused it at its self-test or load, or runs it and its
  application reported it ``unhealthy``; "tried" is those plus every covered device running
  it;
- ``advance`` to the next stage when the build has been at its stage for ``soak_seconds`` and at
  least ``min_healthy`` covered devices run it without a failure (or every reporting device
  the stage covers, when it covers fewer);
- ``hold`` otherwise (and ``done`` at 100 %).

Every count is of distinct devices, one verdict per device and build (a device that says it
both runs a build and refused it is one failure), and only of devices that may speak for the
build: registered (``registry.py``) with the build's hardware and channel, and covered by its
rollout. Everything else a report claims is ignored and named in the decision's evidence: one
device's login buys one vote on the builds offered to it, and nothing more.

The policy keeps no state of its own: a build's stage and when it began (``since``) are in the
signed channel index, so a watcher can restart, or run as a CronJob, and decide the same. Every
decision is logged with the counts that drove it. Reports older than ``max_report_age`` are
left out; with the broker out of reach, or no fresh report at all, nothing is decided (no data
is not good data).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TypedDict

from edgeship.contract import ChannelIndex, DeviceReport, check_rollout, shown
from edgeship.edge_pusher.fleet.registry import Identity, Vetted, vet
from edgeship.edge_pusher.fleet.status import (
    BuildRow,
    IndexModels,
    checked_entries,
    fleet_status,
)
from edgeship.errors import OtaError

ON_FAILURE = ("halt", "revoke")
#: How far ahead of the watcher a device's clock may be before its report counts as stale.
MAX_CLOCK_SKEW = 300.0
#: Device ids named per kind of ignored device in a decision's evidence (the rest counted).
MAX_NAMED = 20


@dataclass(frozen=True)
class Policy:
    stages: tuple[int, ...] = (5, 25, 100)
    min_healthy: int = 3
    soak_seconds: float = 3600.0
    max_failure_share: float = 0.2
    on_failure: str = "halt"
    #: Failures needed (besides the share) to stop a build: one device's word alone never
    #: stops a rollout. Fewer failures above the share hold the build where it is.
    min_failures: int = 2
    #: Reports older than this are stale (a device gone dark is no longer healthy evidence).
    max_report_age: float = 3600.0

    def __post_init__(self) -> None:
        stages = tuple(check_rollout(s) for s in self.stages)
        if not stages or any(b <= a for a, b in zip(stages, stages[1:], strict=False)) \
                or stages[0] < 1:
            raise OtaError(f"stages {list(self.stages)}: give increasing percentages from 1 to "
                           "100, e.g. 5,25,100")
        if self.min_healthy < 1 or self.min_failures < 1:
            raise OtaError("min_healthy and min_failures must be >= 1")
        if self.soak_seconds < 0 or self.max_report_age <= 0:
            raise OtaError("soak_seconds must be >= 0 and max_report_age > 0")
        if not 0 <= self.max_failure_share < 1:
            raise OtaError(f"max_failure_share {self.max_failure_share}: must be in [0, 1)")
        if self.on_failure not in ON_FAILURE:
            raise OtaError(f"on_failure {self.on_failure!r}: one of {', '.join(ON_FAILURE)}")

    def next_stage(self, rollout: int) -> int | None:
        return next((s for s in self.stages if s > rollout), None)


class Named(TypedDict):
    """Ignored devices as evidence: how many, and the first :data:`MAX_NAMED` ids."""

    devices: int
    ids: list[str]


class Counts(TypedDict, total=False):
    """A decision's evidence, in numbers (``plan`` adds the stale and ignored reports)."""

    covered: int
    running: int
    healthy: int
    unhealthy: int
    failures: int
    tried: int
    pending: int
    refused: dict[str, int]
    #: kind (uncovered, unregistered, mismatched) -> those devices
    ignored: dict[str, Named]
    stale_reports: int


@dataclass
class Decision:
    channel: str
    name: str
    version: int
    hardware: str
    action: str  # advance, halt, revoke, hold, done
    rollout: int
    to: int | None
    why: str
    counts: Counts = field(default_factory=lambda: Counts())
    time: str = ""

    def line(self) -> str:
        """The decision and its evidence, in one line (device-supplied text escaped)."""
        to = f" -> {self.to}%" if self.to is not None else ""
        ignored: list[str] = []
        for kind, what in (("uncovered", "not covered by the stage"),
                           ("unregistered", "unregistered"), ("mismatched", "mismatched")):
            found: Named = self.counts.get("ignored", {}).get(kind) or {"devices": 0, "ids": []}
            if found["devices"]:
                named = ", ".join(shown(d, 64) for d in found["ids"][:5])
                more = found["devices"] - min(5, len(found["ids"]))
                ignored.append(f"{found['devices']} {what} ({named}"
                               f"{f', {more} more' if more > 0 else ''})")
        return (f"{shown(self.name)} v{self.version} ({shown(self.hardware)}) on "
                f"{shown(self.channel)}: {self.action} at {self.rollout}%{to}: {self.why}"
                + (f"; ignored: {', '.join(ignored)}" if ignored else ""))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _named(ids: list[str]) -> Named:
    """Ignored devices as evidence: how many, and the first :data:`MAX_NAMED` ids."""
    return {"devices": len(ids), "ids": sorted(ids)[:MAX_NAMED]}


class RolloutControl(Protocol):
    """What the watcher needs of the signed repository
    (:class:`edgeship.edge_pusher.repository.Repository`): the channel's index, and changes
    to it."""

    def read_index(self, channel: str) -> ChannelIndex: ...

    def change_rollout(self, name: str, version: int, channel: str = ...,
                       hardware: str | None = None, *, percent: int | None = None,
                       state: str = ...) -> object: ...


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def decide(row: BuildRow, policy: Policy, now: datetime) -> Decision:
    """What the policy does with one build, and why, in numbers."""
    counts: Counts = {
        "covered": row.covered, "running": row.running, "healthy": row.healthy,
        "unhealthy": row.unhealthy, "failures": row.failures, "tried": row.tried,
        "pending": row.pending, "refused": dict(row.refused),
        "ignored": {"uncovered": _named(row.uncovered)}}
    rollout = row.rollout or 0

    def made(action: str, why: str, to: int | None = None) -> Decision:
        return Decision(row.channel, row.name, row.version, row.hardware, action, rollout, to,
                        why, counts)

    share = row.failures / row.tried if row.tried else 0.0
    if share > policy.max_failure_share and row.failures >= policy.min_failures:
        return made(policy.on_failure, f"{row.failures} of {row.tried} devices that tried it "
                    f"failed ({share:.0%} > {policy.max_failure_share:.0%})")
    if share > policy.max_failure_share:  # too few to stop it on their word: it goes no further
        return made("hold", f"{row.failures} of {row.tried} devices that tried it failed, "
                    f"fewer than the {policy.min_failures} needed to stop it: not widened; "
                    "halt or revoke it by hand, or widen it to learn more")
    target = policy.next_stage(rollout)
    if target is None:
        return made("done", f"at its last stage; {row.healthy} healthy, {row.failures} failed")
    if rollout < policy.stages[0]:
        return made("hold", f"below the first stage ({policy.stages[0]}%): not started")
    since = _parse_time(row.since)
    soaked = (now - since).total_seconds() if since else 0.0
    if soaked < policy.soak_seconds:
        return made("hold", f"{soaked:.0f} s of {policy.soak_seconds:.0f} s soak at this stage; "
                    f"{row.healthy} healthy")
    # A stage that covers fewer reporting devices than min_healthy needs all it covers (as a
    # hawkBit group of that size would); one that covers none has no evidence, and holds.
    if row.covered == 0:
        return made("hold", "the stage covers none of the reporting devices of its hardware; "
                    "widen it by hand (rollout set) or choose a larger first stage")
    needed = min(policy.min_healthy, row.covered)
    if row.healthy < needed:
        return made("hold", f"{row.healthy} healthy devices, {needed} needed (the stage covers "
                    f"{row.covered})")
    return made("advance", f"{row.healthy} healthy of {row.covered} covered ({needed} needed), "
                f"{row.failures} of {row.tried} failed, {soaked:.0f} s at {rollout}%", target)


def watched(models: IndexModels) -> set[tuple[str, int, str]]:
    """(name, version, hardware) of the newest active build of each model and hardware."""
    newest: dict[tuple[str, str], int] = {}
    for (_, name), builds in checked_entries({"": models}).items():
        for entry, _ in builds:
            if entry.state == "active":
                key = (name, entry.hardware)
                newest[key] = max(newest.get(key, 0), entry.version)
    return {(name, version, hardware) for (name, hardware), version in newest.items()}


def fresh_reports(reports: Mapping[str, DeviceReport], max_age: float, now: datetime
                  ) -> dict[str, DeviceReport]:
    """The reports at most ``max_age`` seconds old by their own ``time`` (a device's clock
    is its own word, like the rest of its report)."""
    fresh: dict[str, DeviceReport] = {}
    for device_id, report in reports.items():
        stamp = report.get("time")
        sent = _parse_time(stamp if isinstance(stamp, str) else None)
        age = (now - sent).total_seconds() if sent is not None and sent.tzinfo else None
        if age is not None and -MAX_CLOCK_SKEW <= age <= max_age:
            fresh[device_id] = report  # from the future is stale too: a clock set to 2099
    return fresh


def plan(reports: dict[str, DeviceReport], registry: dict[str, Identity],
         models: IndexModels, channel: str, policy: Policy, now: datetime
         ) -> list[Decision]:
    """What the policy decides for every watched build of ``channel`` (whose index lists
    ``models``), from ``reports`` (device id -> report) and nothing else: pure, so that a test
    can ask what any set of reports would make it do. Only registered devices' fresh reports
    that claim their own hardware and channel count; no such report at all is no data, an
    :class:`OtaError`: an empty or restarted broker decides nothing."""
    vetted: Vetted = vet(reports, registry)
    fresh = fresh_reports(vetted.reports, policy.max_report_age, now)
    stale = len(vetted.reports) - len(fresh)
    if not fresh:
        ignored = len(vetted.unregistered) + len(vetted.mismatched)
        raise OtaError(f"no device report newer than {policy.max_report_age:.0f} s "
                       f"({stale} stale)" + (
                           f"; ignored {len(vetted.unregistered)} from unregistered devices "
                           f"and {len(vetted.mismatched)} claiming another hardware or channel "
                           "than their registered one" if ignored else ""))
    keep = watched(models)
    decisions: list[Decision] = []
    for row in fleet_status(fresh, {channel: models}):
        if (row.name, row.version, row.hardware) not in keep or row.channel != channel:
            continue
        decision = decide(row, policy, now)
        decision.time = now.isoformat().replace("+00:00", "Z")
        decision.counts["stale_reports"] = stale
        ignored = decision.counts.setdefault("ignored", {})  # decide() always sets it
        ignored["unregistered"] = _named(vetted.unregistered)
        ignored["mismatched"] = _named(sorted(vetted.mismatched))
        decisions.append(decision)
    return decisions


def watch_once(repo: RolloutControl, reports: dict[str, DeviceReport], channel: str, policy: Policy,
               now: datetime | None = None, *, registry: dict[str, Identity]
               ) -> list[Decision]:
    """One cycle on ``reports`` (device id -> report, from ``read_reports``): :func:`plan`
    on the channel's signed index, and carry out what is decided as a signed index change."""
    now = now or datetime.now(timezone.utc)
    decisions = plan(reports, registry, repo.read_index(channel)["models"], channel, policy,
                     now)
    for decision in decisions:
        if decision.action == "advance":
            repo.change_rollout(decision.name, decision.version, channel, decision.hardware,
                                percent=decision.to)
        elif decision.action in ON_FAILURE:
            repo.change_rollout(decision.name, decision.version, channel, decision.hardware,
                                state="halted" if decision.action == "halt" else "revoked")
    return decisions


def append_jsonl(path: str | None, records: list[dict[str, Any]]) -> None:
    """Append records to a JSON-lines log (the decision log, the fleet history)."""
    if not path or not records:
        return
    with open(path, "a") as f:
        for record in records:
            f.write(json.dumps(record, sort_keys=True) + "\n")
