"""The fleet per model and version: how many devices run it, are still to take it, refused it
(by reason), or went back from it; from the devices' reports and the signed channel index.

``pending`` is computed as a device decides: the newest active build of its model for its
hardware whose rollout covers it (the stable hash of ``edgeship.contract``) and that it has not
refused, when that is not what it runs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from edgeship.contract import IndexEntry, index_entry, rollout_covers
from edgeship.errors import OtaError

#: A version as a refusal key writes it (ASCII digits: ``str.isdigit`` also takes "²").
VERSION_TEXT = re.compile(r"[0-9]{1,19}")
#: Refusal reasons that count against a build (its own fault, on this device).
BUILD_FAILURES = ("self-test-failed", "model-load-failed")


@dataclass
class BuildRow:
    """One build (channel, model, version, hardware) across the fleet."""

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
    unhealthy: int = 0
    pending: int = 0
    reverted: int = 0
    refused: Counter = field(default_factory=Counter)

    @property
    def key(self) -> tuple[str, str, int, str]:
        return self.channel, self.name, self.version, self.hardware

    @property
    def healthy(self) -> int:
        return self.running - self.unhealthy

    @property
    def failures(self) -> int:
        """Devices the build failed on: refused at its self-test or load, or running it and
        reported unhealthy by their application (devices its rollout covers, only)."""
        return sum(self.refused[r] for r in BUILD_FAILURES) + self.unhealthy

    @property
    def tried(self) -> int:
        return self.running + sum(self.refused[r] for r in BUILD_FAILURES)

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "name": self.name, "version": self.version,
                "hardware": self.hardware, "rollout": self.rollout, "state": self.state,
                "since": self.since, "covered": self.covered, "running": self.running,
                "healthy": self.healthy,
                "unhealthy": self.unhealthy, "pending": self.pending,
                "reverted": self.reverted, "refused": dict(self.refused)}


def health_applies(report: dict[str, Any]) -> dict[str, Any] | None:
    """The application's verdict, if it is about the model the device runs now."""
    health, active = report.get("health"), report.get("active")
    if health and active and (health.get("name"), health.get("version")) == (
            active.get("name"), active.get("version")):
        return health
    return None


def fleet_status(reports: dict[str, dict[str, Any]],
                 indexes: dict[str, dict[str, list[dict]]]) -> list[BuildRow]:
    """A row per build that a device runs, refused, or that a channel index lists.
    ``indexes`` is channel -> the index's ``models`` (name -> entries)."""
    rows: dict[tuple[str, str, int, str], BuildRow] = {}

    def row(channel: str, name: str, version: int, hardware: str) -> BuildRow:
        key = (channel, name, version, hardware)
        if key not in rows:
            rows[key] = BuildRow(channel, name, version, hardware)
        return rows[key]

    entries = checked_entries(indexes)
    for (channel, name), builds in entries.items():
        for entry, raw in builds:
            r = row(channel, name, entry.version, entry.hardware)
            r.rollout, r.state, r.since = entry.rollout, entry.state, raw.get("since")

    def covers(device_id: str, channel: str, name: str, version: int, hardware: str) -> bool:
        """Whether the build's rollout reaches this device: what a device says of a build
        its rollout never offered it counts against nothing (a device may lie about itself,
        never make another build fail). A build no index lists is judged by no one."""
        for entry, _ in entries.get((channel, name), []):
            if (entry.version, entry.hardware) == (version, hardware):
                return rollout_covers(entry.rollout, device_id, name, version)
        return True

    for device_id, report in reports.items():
        channel, hardware, active = report["channel"], report["hardware"], report.get("active")
        if active:
            running = row(channel, active["name"], active["version"], hardware)
            running.running += 1
            health = health_applies(report)
            if health and health["state"] == "unhealthy" and covers(
                    device_id, channel, active["name"], active["version"], hardware):
                running.unhealthy += 1
        for key, reason in report.get("refused", {}).items():
            name, _, rest = key.partition("/")
            version, _, built_for = rest.partition("/")
            if not VERSION_TEXT.fullmatch(version) or built_for != hardware or not covers(
                    device_id, channel, name, int(version), hardware):
                continue  # another hardware's build never reaches this device
            refused = row(channel, name, int(version), built_for)
            if reason == "revoked":
                if not active or (active["name"], active["version"]) != (name, int(version)):
                    refused.reverted += 1
            else:
                refused.refused[reason] += 1
        for (ch, name), builds in entries.items():
            follows = active["name"] == name if active else True
            mentions = any(key.startswith(f"{name}/") for key in report.get("refused", {}))
            if ch != channel or not (follows or mentions):
                continue  # a device following another model never takes this one
            for entry, _ in builds:
                if entry.hardware == hardware and rollout_covers(entry.rollout, device_id, name,
                                                                 entry.version):
                    row(channel, name, entry.version, hardware).covered += 1
        target = _next_build(device_id, report, entries)
        if target is not None:
            row(channel, target[0], target[1].version, hardware).pending += 1
    return sorted(rows.values(), key=lambda r: (r.channel, r.name, -r.version, r.hardware))


def checked_entries(indexes: dict[str, dict[str, list[dict]]]
                    ) -> dict[tuple[str, str], list[tuple[IndexEntry, dict]]]:
    """(channel, model) -> its well-formed index entries, each with its raw form, newest
    first; a malformed entry is left out, as devices leave it out."""
    found: dict[tuple[str, str], list[tuple[IndexEntry, dict]]] = {}
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


def _next_build(device_id: str, report: dict[str, Any],
                entries: dict[tuple[str, str], list[tuple[IndexEntry, dict]]]
                ) -> tuple[str, IndexEntry] | None:
    """The build this device is still to take, as the agent would choose it, or None."""
    channel, hardware, active = report["channel"], report["hardware"], report.get("active")
    if active:
        names = [active["name"]]
    else:
        names = sorted({name for (ch, name), builds in entries.items() if ch == channel
                        and any(e.hardware == hardware for e, _ in builds)})
        if len(names) != 1:
            return None  # no model, or the device must be told which (--model)
    name = names[0]
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
    refused = ", ".join(f"{k} {v}" for k, v in sorted(row.refused.items())) or "0"
    return (row.channel, row.name, str(row.version), row.hardware, rollout, str(row.running),
            str(row.unhealthy), str(row.pending), refused, str(row.reverted))


def format_table(rows: list[BuildRow]) -> str:
    """The status as a text table, one build a line."""
    lines = [tuple(name for name, _ in COLUMNS), *(table_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)
