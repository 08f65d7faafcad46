"""Sensor CSV rows to examples: sort each group by time, then cut fixed windows inside label
runs, or take each label run whole.

A *recording* is one run of one label inside one group (recording, machine, session). An example
never crosses a group or a label change, so it shows one condition of one recording. Examples
from one group share the group id as their split key, so overlapping windows of a recording
cannot sit on both sides of the train/eval line.

The example shape comes from the recordings' lengths (:func:`choose_shape`), unless the user
gave a window, which is never overridden:

- most recordings (more than half) at least ``DEFAULT_WINDOW`` (128) rows long: windows of 128
  rows every 64, as always;
- otherwise, recordings of about one length (the shortest at least ``EVEN_LENGTHS`` = 80 % of
  the longest): windows of the shortest recording's length, every half of it (a recording of
  that length gives one window, a longer one a few);
- otherwise (short recordings of varying length, e.g. utterances of 7 to 29 frames): each
  recording becomes ONE example, linearly resampled to the longest recording's length (at most
  128 rows), so an utterance of 7 frames and one of 29 are both one example of the same shape.
  Resampling keeps every example free of padding, so the model needs no mask channel.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

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
    items: list[Item] = []
    position = 0
    for class_name, run_rows in recordings(order(rows)):
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


#: The window (and half of it the stride) used when the recordings are long enough for it.
DEFAULT_WINDOW = 128
#: Recordings count as "of one length" when the shortest is at least this share of the longest.
EVEN_LENGTHS = 0.8


@dataclass(frozen=True)
class Shape:
    """What one example is: ``length`` rows of a window every ``stride`` rows (``windows``), or
    a whole recording resampled to ``length`` rows (``whole``, stride 0); ``reason`` says why."""

    mode: str  # "windows" | "whole"
    length: int
    stride: int
    reason: str

    def describe(self) -> str:
        """One line for the step's summary, e.g. "window 100, stride 50 (the shortest ...)"."""
        if self.mode == "whole":
            return f"whole recordings, resampled to {self.length} rows ({self.reason})"
        return f"window {self.length}, stride {self.stride} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shape:
        return cls(str(data["mode"]), int(data["length"]), int(data["stride"]),
                   str(data["reason"]))


def order(rows: Iterable[SensorRow]) -> list[SensorRow]:
    """Rows by time; file order (source, line) breaks ties and is the order without a time."""
    return sorted(rows, key=lambda r: (r[0], r[1], r[2]))


def recordings(ordered: list[SensorRow]) -> list[tuple[str, list[SensorRow]]]:
    """The runs of one label in a group's time-ordered rows: (class name, rows) each."""
    return [(name, list(run)) for name, run in itertools.groupby(ordered, key=lambda r: r[3])]


def recording_lengths(rows: Iterable[SensorRow]) -> list[int]:
    """Rows per recording (label run) of one group."""
    return [len(run) for _, run in recordings(order(rows))]


def describe_lengths(lengths: list[int]) -> str:
    """e.g. "640 recordings (label runs per group) of 7 to 29 rows, median 15"."""
    if not lengths:
        return "no recordings"
    low, high = min(lengths), max(lengths)
    median = statistics.median(lengths)
    span = f"{low} rows" if low == high else f"{low} to {high} rows, median {median:g}"
    plural = "s" if len(lengths) != 1 else ""
    return f"{len(lengths)} recording{plural} (label runs per group) of {span}"


def choose_shape(lengths: list[int], window: int = 0, stride: int = 0) -> Shape:
    """The example shape for recordings of these lengths (the rule is the module docstring's).

    ``window`` > 0 is the user's and is kept as given (a window longer than every recording
    then fails the step, naming the lengths); ``stride`` 0 is half the window.
    """
    if window:
        return Shape("windows", window, stride or max(1, window // 2), "given")
    default = Shape("windows", DEFAULT_WINDOW, stride or DEFAULT_WINDOW // 2, "the default")
    shorter = sum(1 for n in lengths if n < DEFAULT_WINDOW)
    if not lengths or 2 * shorter <= len(lengths):
        return default
    low, high = min(lengths), max(lengths)
    why = f"default {DEFAULT_WINDOW} is longer than {shorter} of {len(lengths)} recordings"
    if low >= 2 and low >= EVEN_LENGTHS * high:
        return Shape("windows", low, stride or max(1, low // 2), f"the shortest recording; {why}")
    length = max(2, min(high, DEFAULT_WINDOW))
    return Shape(
        "whole", length, 0,
        f"recordings vary from {low} to {high} rows, so each is one example; {why}",
    )


def resample(values: list[float], length: int) -> list[float]:
    """``values`` linearly interpolated at ``length`` evenly spaced points, ends kept."""
    n = len(values)
    if n == 1:
        return values * length
    out = []
    for i in range(length):
        x = i * (n - 1) / (length - 1)
        j = min(int(x), n - 2)
        t = x - j
        out.append(values[j] * (1.0 - t) + values[j + 1] * t)
    return out


def make_examples(group: str, rows: list[SensorRow], columns: Columns, shape: Shape) -> list[Item]:
    """A group's examples in ``shape``: windows (:func:`cut_windows`) or whole recordings."""
    if shape.mode == "windows":
        return cut_windows(group, rows, columns, shape.length, shape.stride)
    items: list[Item] = []
    position = 0
    for class_name, run in recordings(order(rows)):
        features: dict[str, FeatureValue] = {
            name: resample([row[4][c] for row in run], shape.length)
            for c, name in enumerate(columns.channels)
        }
        if columns.group:
            features[columns.group] = group
            key = group
        else:
            key = f"{group}@{position}"
        items.append((key, class_name, features))
        position += len(run)
    return items
