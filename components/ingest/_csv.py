"""Reading CSV input: the files, their header, typed values and line numbers for errors.

Everything here is plain Python so that Beam workers and the step's driver share it: the driver
checks headers and infers column types from a sample before the pipeline starts, so that a
wrong label name fails in a second rather than after a full pass over the data.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgeship.errors import InputError

SAMPLE_ROWS = 1000  # rows read to infer column types, as the issue specifies
NUMERIC_SHARE = 0.95  # share of sampled values that must be numbers for a numeric column
DTYPES = ("float", "string")


@dataclass(frozen=True)
class Record:
    """One CSV record with where it came from, for error messages and stable split keys."""

    source: str
    line: int
    fields: list[str]


class BadValue(ValueError):
    """A value that does not fit its column; the caller turns it into a counted bad row."""


def csv_files(data_path: str | os.PathLike) -> list[Path]:
    """The CSV file itself, or every ``*.csv`` directly inside a folder (sorted)."""
    path = Path(data_path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.glob("*.csv") if p.is_file())
        if not files:
            raise InputError(f"{path}: folder has no *.csv files")
        return files
    return [path]


def _open(path: Path):
    # utf-8-sig drops the byte-order mark that spreadsheet exports put before the first column.
    return open(path, newline="", encoding="utf-8-sig")


def iter_records(path: Path, source: str | None = None) -> Iterator[Record]:
    """Data records after the header, skipping blank lines; ``line`` is the file's line number."""
    source = source or str(path)
    try:
        with _open(path) as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for fields in reader:
                if fields:
                    yield Record(source, reader.line_num, fields)
    except UnicodeDecodeError as err:
        raise InputError(f"{source}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise InputError(f"{source}: unreadable CSV ({err})") from None


def read_header(path: Path) -> list[str]:
    """The column names of one file, checked for the mistakes that would break later steps."""
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        with _open(path) as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not header or not any(h.strip() for h in header):
        raise InputError(f"{path}: empty file (no header line)")
    names = [h.strip() for h in header]
    for index, name in enumerate(names, start=1):
        if not name:
            raise InputError(f"{path} line 1: column {index} has no name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{path} line 1: duplicate column name(s) {', '.join(duplicates)}")
    return names


def read_headers(files: list[Path]) -> list[str]:
    """The shared header of all files; every file must have the same columns in the same order."""
    header = read_header(files[0])
    for path in files[1:]:
        other = read_header(path)
        if other != header:
            raise InputError(
                f"{path} line 1: columns {other} differ from {files[0].name}'s {header}"
            )
    return header


def require_column(name: str, header: list[str], what: str, source: str) -> None:
    if name not in header:
        raise InputError(
            f"{source}: {what} column '{name}' not found; columns are: {', '.join(header)}"
        )


#: Cells that spell "missing" in the exports of R (``write.csv``: ``NA``) and of databases
#: (``NULL``): missing, in numeric and string columns alike, not a bad value or a category.
MISSING_WORDS = frozenset({"NA", "NULL", "null"})


def is_missing(text: str) -> bool:
    """An empty cell, or one of ``MISSING_WORDS``."""
    text = text.strip()
    return not text or text in MISSING_WORDS


def parse_float(text: str) -> float | None:
    """A number, or None for an empty cell (or NaN, the usual spelling of a missing number, or
    one of ``MISSING_WORDS``).

    Features are stored as float32, so a larger number is a bad value here rather than a crash
    without file or line when the example is written.
    """
    text = text.strip()
    if not text or text in MISSING_WORDS:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadValue(f"'{text}' is not a number") from None
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise BadValue(f"'{text}' is not a finite number")
    try:
        struct.pack("<f", value)  # exactly the check of the tf.Example writer, on the worker
    except OverflowError:
        raise BadValue(f"'{text}' is outside the float32 range (about ±3.4e38)") from None
    return value


def _is_number(text: str) -> bool:
    try:
        parse_float(text)
    except BadValue:
        return False
    return True


def infer_types(
    files: list[Path], header: list[str], overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """``float`` for a column whose non-empty values in the first rows are (nearly) all numbers.

    A few non-numbers in a column that is otherwise numeric ("n/a", a typo) are bad values, not
    a sign of a string column: at least ``NUMERIC_SHARE`` of the sampled values decide. Columns
    with no value at all in the sample are ``string`` (any later value fits a string).
    ``overrides`` (column -> float|string) win over inference.
    """
    overrides = dict(overrides or {})
    for name, dtype in overrides.items():
        if name not in header:
            raise InputError(
                f"column_types names column '{name}', which is not in {files[0]}; "
                f"columns are: {', '.join(header)}"
            )
        if dtype not in DTYPES:
            raise InputError(f"column_types['{name}'] is '{dtype}'; use one of {DTYPES}")
    seen = {name: 0 for name in header}
    numbers = {name: 0 for name in header}
    records = itertools.chain.from_iterable(iter_records(p) for p in files)
    sampled = 0
    for record in itertools.islice(records, SAMPLE_ROWS):
        sampled += 1
        if len(record.fields) != len(header):
            continue  # a malformed row; reported as a bad row when the pipeline reads it
        for name, text in zip(header, record.fields, strict=True):
            if not is_missing(text):
                seen[name] += 1
                numbers[name] += _is_number(text)
    if not sampled:
        where = files[0] if len(files) == 1 else files[0].parent
        raise InputError(f"{where}: no data rows after the header")
    types = {
        n: "float" if seen[n] and numbers[n] >= NUMERIC_SHARE * seen[n] else "string"
        for n in header
    }
    types.update(overrides)
    return types


def sample_rows(files: list[Path], header: list[str]) -> list[list[str]]:
    """The fields of the first ``SAMPLE_ROWS`` well-formed rows: what column types and the
    tabular column profile are judged on."""
    records = itertools.chain.from_iterable(iter_records(p) for p in files)
    return [r.fields for r in itertools.islice(records, SAMPLE_ROWS)
            if len(r.fields) == len(header)]


def check_width(record: Record, width: int) -> None:
    if len(record.fields) != width:
        raise BadValue(f"expected {width} fields, found {len(record.fields)}")
