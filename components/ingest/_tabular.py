"""Tabular CSV rows to items: one feature per column, float or string, empty cells missing.

Before the pipeline runs, :func:`profile_columns` looks at the sampled rows for columns that
cannot be features as they are, as a raw CSV "as published" has them:

- identifiers: a string column whose every sampled value is distinct, or a column of whole
  numbers that are distinct and either run in file order (a row number) or sit under an id-like
  name (``id``, ``*_id``, ``index``): a model could only memorise them. Left out.
- free text: strings of three words or more and 20 characters or more on average, at least
  one in ten sampled values distinct: comments, descriptions, notes (a published table's
  comments repeat a few stock sentences: still text, and each new one in eval would be a new
  category). Left out.
- dates read as strings (ISO 8601, ``YYYY/MM/DD``, ``MM/DD/YYYY``, ``DD.MM.YYYY``, with or
  without a time): parsed into numeric parts, ``<column>_year``, ``_month``, ``_day``,
  ``_weekday`` (0 = Monday) and ``_hour`` when the values carry a time; a value that does not
  parse is a missing part, not a bad row.

A column needs ``MIN_PROFILE_VALUES`` sampled values to be judged (a tiny table keeps its
columns), and a column named in ``column_types`` is the user's decision, never left out.
``exclude_columns`` leaves out whatever else the user names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from edgeship.components.ingest._csv import (
    BadValue,
    Record,
    check_width,
    is_missing,
    parse_float,
)
from edgeship.components.ingest._rows import BadRow, Item
from edgeship.components.ingest._tfexample import FeatureValue
from edgeship.errors import InputError

#: Fewer sampled values than this and a column is not judged an identifier or free text.
MIN_PROFILE_VALUES = 20
#: Free text: at least this many characters per value on average ...
TEXT_MIN_LENGTH = 20
#: ... and this many words ...
TEXT_MIN_WORDS = 3
#: ... and at least this share of the sampled values distinct.
TEXT_MIN_DISTINCT = 0.1
#: A column is a date when at least this share of its sampled values parse with one format.
DATE_SHARE = 0.95
#: strptime formats tried after ISO 8601 (``datetime.fromisoformat``), in this order.
DATE_FORMATS = ("%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d %H:%M",
                "%Y/%m/%d %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M",
                "%d %b %Y", "%b %d %Y", "%d-%b-%Y")
ISO = "iso"
DATE_PARTS = ("year", "month", "day", "weekday")
_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|index|key)$|^(id|index|row|rownames|unnamed: ?0)$",
                      re.IGNORECASE)


@dataclass(frozen=True)
class DateColumn:
    """A string column parsed as dates: its format and the numeric parts it becomes."""

    name: str
    fmt: str
    parts: tuple[str, ...]

    def feature_names(self) -> list[str]:
        return [f"{self.name}_{part}" for part in self.parts]


@dataclass
class ColumnPlan:
    """Which columns are features, which are left out (and why), which are dates."""

    excluded: dict[str, str] = field(default_factory=dict)
    dates: dict[str, DateColumn] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per column that is not a feature as it stands, for the summary."""
        out = [f"{name}: left out, {why}" for name, why in self.excluded.items()]
        out += [f"{d.name}: a date, read as {', '.join(d.feature_names())}"
                for d in self.dates.values()]
        return out


def parse_date(text: str, fmt: str) -> datetime | None:
    """``text`` as a datetime in ``fmt`` (``ISO`` or a strptime format), or None."""
    text = text.strip()
    try:
        if fmt == ISO:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


def _date_format(values: list[str]) -> str | None:
    """The first format that parses at least ``DATE_SHARE`` of the values (which must hold a
    date separator: ``fromisoformat`` would also take a bare ``20240101``)."""
    if not values or not all(re.search(r"\d[-/.]\d|[A-Za-z]{3}", v) for v in values[:50]):
        return None
    for fmt in (ISO, *DATE_FORMATS):
        parsed = sum(parse_date(v, fmt) is not None for v in values)
        if parsed >= DATE_SHARE * len(values):
            return fmt
    return None


def _is_whole(text: str) -> bool:
    value = parse_float(text)
    return value is not None and value.is_integer()


def profile_columns(header: list[str], types: dict[str, str], sample: list[list[str]],
                    label: str, overrides: dict[str, str], exclude: list[str],
                    source: str) -> ColumnPlan:
    """Decide, from the sampled rows (``sample``: one list of fields per row, header width),
    which columns are left out or parsed as dates. ``exclude`` names columns to leave out
    whatever they hold; naming the label or a column the file lacks is an error."""
    plan = ColumnPlan()
    for name in exclude:
        if name not in header:
            raise InputError(f"exclude_columns names column '{name}', which is not in {source}; "
                             f"columns are: {', '.join(header)}")
        if name == label:
            raise InputError(f"exclude_columns names the label column '{label}'")
        plan.excluded[name] = "named in exclude_columns"
    for index, name in enumerate(header):
        if name == label or name in plan.excluded or name in overrides:
            continue
        values = [row[index].strip() for row in sample if not is_missing(row[index])]
        why = _unusable(name, types[name], values)
        if why:
            plan.excluded[name] = why
            continue
        if types[name] == "string":
            fmt = _date_format(values)
            if fmt:
                timed = any((d := parse_date(v, fmt)) is not None and
                            (d.hour, d.minute, d.second) != (0, 0, 0) for v in values)
                column = DateColumn(name, fmt, DATE_PARTS + (("hour",) if timed else ()))
                clash = [n for n in column.feature_names() if n in header]
                if clash:
                    raise InputError(f"{source}: date column '{name}' would become feature "
                                     f"'{clash[0]}', which is already a column; rename it or "
                                     "name the date in exclude_columns")
                plan.dates[name] = column
    return plan


def _unusable(name: str, dtype: str, values: list[str]) -> str:
    """Why a column cannot be a feature ("" when it can), from its sampled non-empty values."""
    n = len(values)
    if n < MIN_PROFILE_VALUES:
        return ""
    distinct = len(set(values))
    if dtype == "string":
        length = sum(len(v) for v in values) / n
        words = sum(len(v.split()) for v in values) / n
        if (length >= TEXT_MIN_LENGTH and words >= TEXT_MIN_WORDS
                and distinct >= TEXT_MIN_DISTINCT * n):
            return (f"free text ({length:.0f} characters on average, {distinct} distinct in "
                    f"{n} sampled values)")
        if distinct == n and _date_format(values) is None:
            return f"an identifier (all {n} sampled values distinct)"
        return ""
    if distinct == n and all(_is_whole(v) for v in values):
        numbers = [parse_float(v) or 0.0 for v in values]
        steps = {b > a for a, b in zip(numbers, numbers[1:], strict=False)}
        if len(steps) == 1:
            return f"an identifier (distinct whole numbers in file order, {n} sampled)"
        if _ID_NAME.search(name):
            return f"an identifier (distinct whole numbers under an id-like name, {n} sampled)"
    return ""


def parse_row(
    record: Record, header: list[str], types: dict[str, str], label: str,
    plan: ColumnPlan | None = None,
) -> Item | BadRow:
    """The row as (split key, class, features), or why it is malformed.

    The split key is the row's content, so duplicated rows always land in the same split and
    cannot inflate eval accuracy by being memorised from train. Columns the ``plan`` leaves out
    are neither read nor checked; its date columns become their numeric parts.
    """
    plan = plan or ColumnPlan()
    try:
        check_width(record, len(header))
        features: dict[str, FeatureValue] = {}
        class_name = ""
        for name, text in zip(header, record.fields, strict=True):
            if name == label:
                class_name = text.strip()
                if not class_name:
                    raise BadValue(f"missing label in column '{label}'")
            elif name in plan.excluded:
                continue
            elif name in plan.dates:
                features.update(date_parts(plan.dates[name], text))
            elif types[name] == "float":
                try:
                    value = parse_float(text)
                except BadValue as err:
                    raise BadValue(f"column '{name}': {err}") from None
                features[name] = None if value is None else [value]
            else:
                features[name] = None if is_missing(text) else text.strip()
    except BadValue as err:
        return BadRow(record.source, record.line, str(err))
    return "\x1f".join(record.fields), class_name, features


def date_parts(column: DateColumn, text: str) -> dict[str, FeatureValue]:
    """The date's numeric parts as features; all missing when the cell is empty or no date."""
    when = None if is_missing(text) else parse_date(text, column.fmt)
    if when is None:
        return dict.fromkeys(column.feature_names())
    values = {"year": when.year, "month": when.month, "day": when.day,
              "weekday": when.weekday(), "hour": when.hour + when.minute / 60}
    return {f"{column.name}_{part}": [float(values[part])] for part in column.parts}
