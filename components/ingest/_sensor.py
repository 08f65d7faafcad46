"""Sensor CSV rows to windows: sort each group by time, cut fixed windows inside label runs.

A window never crosses a group (recording, machine, session) or a label change, so every
window shows one condition of one recording. Windows from one group share the group id as their
split key, so overlapping windows of a recording cannot sit on both sides of the train/eval line.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from edgeship.components.ingest._csv import BadValue, Record, check_width, parse_float
from edgeship.components.ingest._rows import BadRow, Item
from edgeship.components.ingest._tfexample import FeatureValue


@dataclass(frozen=True)
class Columns:
    """Which CSV column plays which role; indexes are positions in the header."""

    header: tuple[str, ...]
    label: str
    channels: tuple[str, ...]
    group: str = ""
    time: str = ""

    def index(self, name: str) -> int:
        return self.header.index(name)


# time (sort key), source, line, class name, channel values
SensorRow = tuple[float, str, int, str, tuple[float, ...]]


def parse_time(text: str) -> float:
    """Seconds (any number) or an ISO-8601 timestamp, as a float that sorts correctly."""
    try:
        value = parse_float(text)
    except BadValue:
        value = None
        try:
            return datetime.fromisoformat(text.strip()).timestamp()
        except ValueError:
            raise BadValue(f"time '{text.strip()}' is neither a number nor ISO-8601") from None
    if value is None:
        raise BadValue("missing time")
    return value


def parse_row(record: Record, columns: Columns) -> tuple[str, SensorRow] | BadRow:
    """(group key, row) or why the row is malformed. Every channel needs a value."""
    try:
        check_width(record, len(columns.header))
        fields = record.fields
        label = fields[columns.index(columns.label)].strip()
        if not label:
            raise BadValue(f"missing label in column '{columns.label}'")
        if columns.group:
            group = fields[columns.index(columns.group)].strip()
            if not group:
                raise BadValue(f"missing group id in column '{columns.group}'")
        else:
            group = record.source  # without a group column each file is one recording
        when = parse_time(fields[columns.index(columns.time)]) if columns.time else 0.0
        values = []
        for name in columns.channels:
            try:
                value = parse_float(fields[columns.index(name)])
            except BadValue as err:
                raise BadValue(f"column '{name}': {err}") from None
            if value is None:
                raise BadValue(f"column '{name}': missing value")
            values.append(value)
    except BadValue as err:
        return BadRow(record.source, record.line, str(err))
    return group, (when, record.source, record.line, label, tuple(values))


def cut_windows(
    group: str, rows: list[SensorRow], columns: Columns, window: int, stride: int
) -> list[Item]:
    """Windows of ``window`` rows every ``stride`` rows within each run of one label.

    Rows are ordered by time (file order breaks ties, and is the order without a time column).
    Without a group column the split key falls back to the window's position in its file.
    """
    ordered = sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    items: list[Item] = []
    position = 0
    for class_name, run in itertools.groupby(ordered, key=lambda r: r[3]):
        run_rows = list(run)
        for start in range(0, len(run_rows) - window + 1, stride):
            chunk = run_rows[start : start + window]
            features: dict[str, FeatureValue] = {
                name: [row[4][c] for row in chunk] for c, name in enumerate(columns.channels)
            }
            if columns.group:
                features[columns.group] = group
                key = group
            else:
                key = f"{group}@{position + start}"
            items.append((key, class_name, features))
        position += len(run_rows)
    return items
