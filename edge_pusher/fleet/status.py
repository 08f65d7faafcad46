"""The fleet per model and version: how many devices run it, are still to take it, refused it
(by reason), or went back from it; from the devices' reports and the signed channel index.

``pending`` is computed as a device decides: the newest active build of its model for its
hardware whose rollout covers it (the stable hash of ``edgeship.contract``) and that it has not
refused, when that is not what it runs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeship.contract import (
    DeviceReport,
    IndexEntry,
    ReportedHealth,
    index_entry,
    rollout_covers,
    shown,
)
from edgeship.errors import OtaError

#: A version as a refusal key writes it (ASCII digits: ``str.isdigit`` also takes "²").
VERSION_TEXT = re.compile(r"[0-9]{1,19}")
#: Refusal reasons that count against a build (its own fault, on this device).
BUILD_FAILURES = ("self-test-failed", "model-load-failed")

#: A channel index's ``models`` as read from it: name -> entries (each checked where used).
IndexModels = Mapping[str, Sequence[Mapping[str, object]]]
#: (channel, model) -> its well-formed entries, each with its raw form, newest first.
Builds = dict[tuple[str, str], list[tuple[IndexEntry, Mapping[str, object]]]]
@dataclass
class BuildRow:
    """One build (channel, model, version, hardware) across the fleet.

    Every count is of distinct devices, each counted once per build whatever its report
    repeats. ``running`` is every reporting device that says it runs the build (what the
    fleet looks like); the counts the rollout policy decides on (``healthy``, ``failures``,
    ``tried``) take only devices the build's rollout covers. A device that says both that it
    runs the build and that it refused it is one device: a failure, counted once (a report
    that contradicts itself is not evidence that the build is fine)."""

    channel: str
    name: str
    version: int
    hardware: str
    rollout: int | None = None  # None: not (or no longer) in the channel index
    state: str | None = None
    since: str | None = None
    #: Reporting devices of its channel and hardware its rollout covers (those that follow its
    #: model, have none yet, or refused a build of it), whatever they run.
    covered: int = 0
    running: int = 0
    #: Covered devices running it whose application reported it unhealthy.
    unhealthy: int = 0
    pending: int = 0
    reverted: int = 0
    #: Covered devices that refused it, by reason (one reason per device).
    refused: Counter[str] = field(default_factory=Counter[str])
    #: Covered devices running it with no failure.
    healthy: int = 0
    #: Covered devices it failed on: refused at its self-test or load, or running it and
    #: reported unhealthy by their application.
    failures: int = 0
    #: Covered devices that run it or failed it.
    tried: int = 0
    #: Devices its rollout does not cover that claim to run or to have refused it: ignored by
    #: every count above except ``running`` (sorted ids).
    uncovered: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, int, str]:
        return self.channel, self.name, self.version, self.hardware

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "name": self.name, "version": self.version,
                "hardware": self.hardware, "rollout": self.rollout, "state": self.state,
                "since": self.since, "covered": self.covered, "running": self.running,
                "healthy": self.healthy, "failures": self.failures, "tried": self.tried,
                "unhealthy": self.unhealthy, "pending": self.pending,
                "reverted": self.reverted, "refused": dict(self.refused),
                "uncovered": len(self.uncovered)}


@dataclass
class _Seen:
    """Who said what of one build: device id sets, so that a device counts once."""

    covered: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    unhealthy: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)  # device -> its one reason
    reverted: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    uncovered: set[str] = field(default_factory=set)
    counted_running: set[str] = field(default_factory=set)  # running, and covered


def _stronger(reason: str, than: str | None) -> bool:
    """Whether ``reason`` replaces ``than`` as a device's one refusal of a build: a build
    failure beats any other reason, then the first in order (the same whatever the order of
    the report's keys)."""
    return than is None or (reason not in BUILD_FAILURES, reason) < (
        than not in BUILD_FAILURES, than)


def health_applies(report: DeviceReport) -> ReportedHealth | None:
    """The application's verdict, if it is about the model the device runs now."""
    health, active = report.get("health"), report.get("active")
    if health and active and (health.get("name"), health.get("version")) == (
            active.get("name"), active.get("version")):
        return health
    return None


def refusal_key(key: str) -> tuple[str, int, str] | None:
    """(name, version, hardware) of a refusal key ``name/version/hardware``, or None."""
    name, _, rest = key.partition("/")
    version, _, built_for = rest.partition("/")
    if not VERSION_TEXT.fullmatch(version):
        return None
    return name, int(version), built_for


def fleet_status(reports: Mapping[str, DeviceReport],
                 indexes: Mapping[str, IndexModels]) -> list[BuildRow]:
    """A row per build that a device runs, refused, or that a channel index lists.
    ``indexes`` is channel -> the index's ``models`` (name -> entries). Give it the reports
    :func:`~edgeship.edge_pusher.fleet.registry.vet` kept: a report's hardware and channel
    are then its registered identity's."""
    rows: dict[tuple[str, str, int, str], BuildRow] = {}
    seen: dict[tuple[str, str, int, str], _Seen] = {}

    def row(channel: str, name: str, version: int, hardware: str) -> _Seen:
        key = (channel, name, version, hardware)
        if key not in rows:
            rows[key] = BuildRow(channel, name, version, hardware)
            seen[key] = _Seen()
        return seen[key]

    entries = checked_entries(indexes)
    for (channel, name), builds in entries.items():
        for entry, raw in builds:
            row(channel, name, entry.version, entry.hardware)
            r = rows[(channel, name, entry.version, entry.hardware)]
            since = raw.get("since")  # index_entry checked it is a UTC time, if present
            r.rollout, r.state = entry.rollout, entry.state
            r.since = since if isinstance(since, str) else None

    def covers(device_id: str, channel: str, name: str, version: int, hardware: str) -> bool:
        """Whether the build's rollout reaches this device: what a device says of a build
        its rollout never offered it counts toward nothing (a device may lie about itself,
        never make another build fail or advance). A build no index lists is judged by no
        one."""
        for entry, _ in entries.get((channel, name), []):
            if (entry.version, entry.hardware) == (version, hardware):
                return rollout_covers(entry.rollout, device_id, name, version)
        return True

    for device_id, report in reports.items():
        channel, hardware, active = report["channel"], report["hardware"], report.get("active")
        follows = followed_model(report, entries)
        if active:
            running = row(channel, active["name"], active["version"], hardware)
            running.running.add(device_id)
            if covers(device_id, channel, active["name"], active["version"], hardware):
                running.counted_running.add(device_id)
                health = health_applies(report)
                if health and health["state"] == "unhealthy":
                    running.unhealthy.add(device_id)
            else:
                running.uncovered.add(device_id)
        for key, reason in report.get("refused", {}).items():
            parsed = refusal_key(key)
            if parsed is None or parsed[2] != hardware:
                continue  # another hardware's build never reaches this device
            name, version, _ = parsed
            if name != follows:
                continue  # a device speaks only of builds of the model it follows
            refused = row(channel, name, version, hardware)
            if not covers(device_id, channel, name, version, hardware):
                refused.uncovered.add(device_id)
                continue
            if reason == "revoked":
                if not active or (active["name"], active["version"]) != (name, version):
                    refused.reverted.add(device_id)
            elif _stronger(reason, refused.refused.get(device_id)):
                refused.refused[device_id] = reason
        for (ch, name), builds in entries.items():
            if ch != channel or name != follows:
                continue  # a device following another model never takes this one
            for entry, _ in builds:
                if entry.hardware == hardware and rollout_covers(entry.rollout, device_id, name,
                                                                 entry.version):
                    row(channel, name, entry.version, hardware).covered.add(device_id)
        target = _next_build(device_id, report, entries)
        if target is not None:
            row(channel, target[0], target[1].version, hardware).pending.add(device_id)

    for key, r in rows.items():
        s = seen[key]
        failed = s.unhealthy | {d for d, why in s.refused.items() if why in BUILD_FAILURES}
        r.covered, r.running, r.unhealthy = len(s.covered), len(s.running), len(s.unhealthy)
        r.pending, r.reverted = len(s.pending), len(s.reverted)
        r.refused = Counter(s.refused.values())
        r.failures = len(failed)
        r.tried = len(s.counted_running | failed)
        r.healthy = len(s.counted_running - failed)
        r.uncovered = sorted(s.uncovered)
    return sorted(rows.values(), key=lambda r: (r.channel, r.name, -r.version, r.hardware))


def checked_entries(indexes: Mapping[str, IndexModels]) -> Builds:
    """(channel, model) -> its well-formed index entries, each with its raw form, newest
    first; a malformed entry is left out, as devices leave it out."""
    found: Builds = {}
    for channel, models in indexes.items():
        for name, raw_entries in models.items():
            for raw in raw_entries:
                try:
                    entry = index_entry(name, raw)
                except OtaError:
                    continue
                found.setdefault((channel, name), []).append((entry, raw))
    for builds in found.values():
        builds.sort(key=lambda b: b[0].version, reverse=True)
    return found


def followed_model(report: DeviceReport, entries: Builds) -> str | None:
    """The model a device follows, as the agent picks it: the one it runs, or, with none yet,
    the channel's only model for its hardware; None when the channel offers several (the
    device was told which with ``--model``, which its report does not say). What a device
    says of another model's builds counts for nothing: it never takes them, so its word on
    them is no evidence (and would let devices of one model stop another's rollout)."""
    channel, hardware, active = report["channel"], report["hardware"], report.get("active")
    if active:
        return str(active["name"])
    names = {name for (ch, name), builds in entries.items() if ch == channel
             and any(e.hardware == hardware for e, _ in builds)}
    return names.pop() if len(names) == 1 else None


def _next_build(device_id: str, report: DeviceReport, entries: Builds
                ) -> tuple[str, IndexEntry] | None:
    """The build this device is still to take, as the agent would choose it, or None."""
    channel, hardware, active = report["channel"], report["hardware"], report.get("active")
    name = followed_model(report, entries)
    if name is None:
        return None  # no model, or the device must be told which (--model)
    refused = report.get("refused", {})
    for entry, _ in entries.get((channel, name), []):
        if entry.hardware != hardware:
            continue
        if active and entry.version <= active["version"]:
            return None
        if entry.state != "active" or f"{name}/{entry.version}/{hardware}" in refused:
            continue
        if rollout_covers(entry.rollout, device_id, name, entry.version):
            return name, entry
    return None


#: The status table's columns, and whether each holds text (left-aligned in the HTML page).
COLUMNS = (("channel", True), ("model", True), ("version", False), ("hardware", True),
           ("rollout", True), ("running", False), ("unhealthy", False), ("pending", False),
           ("refused", True), ("reverted", False))


def table_cells(row: BuildRow) -> tuple[str, ...]:
    """One build's cells of the status table, as ``fleet status`` and the HTML page show it."""
    rollout = "-" if row.rollout is None else f"{row.rollout}% {row.state}"
    refused = ", ".join(f"{shown(k, 64)} {v}" for k, v in sorted(row.refused.items())) or "0"
    return (shown(row.channel), shown(row.name), str(row.version), shown(row.hardware), rollout,
            str(row.running), str(row.unhealthy), str(row.pending), refused, str(row.reverted))


def format_table(rows: list[BuildRow]) -> str:
    """The status as a text table, one build a line."""
    lines = [tuple(name for name, _ in COLUMNS), *(table_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)
