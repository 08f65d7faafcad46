"""The OTA contract: what the publisher writes and the device reads, defined once for both.

- names and versions (what may appear in a path, what "newer" means);
- where things live in the repository (target paths, the per-channel index);
- who a rollout covers (a stable per-device hash);
- the signed custom metadata of a target, with its ``schema_version``;
- the signed self-test and its array encoding;
- canonical JSON (TUF's signed metadata has no floats);
- where a device reports its state (its MQTT topic) and the layout of that report.

Both sides must compute exactly the same strings, hashes and checks, so they live here and only
here. Imports numpy and ``edgeship.errors`` only: the device carries this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import stat
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, TypedDict, TypeGuard, runtime_checkable

import numpy as np
import numpy.typing as npt

from edgeship.errors import OtaError

#: Version of the layout of a target's signed custom metadata. A device refuses a layout newer
#: than it knows rather than guess at its meaning.
SCHEMA_VERSION = 1
#: Version of the channel index's layout. 2 gave each entry its own rollout and state (halted,
#: revoked): a device that knows only 1 refuses a 2 index and keeps its model rather than take a
#: build it cannot see is revoked. Devices read both.
INDEX_SCHEMA_VERSION = 2
#: The largest channel index a device reads (and the publisher writes).
MAX_INDEX_BYTES = 1 << 20
#: An index entry's state: ``active`` builds roll out to their percentage; ``halted`` ones reach
#: no further device (devices on them stay); ``revoked`` ones are left by every device that has
#: a verified build to go back to, and are never taken again.
ENTRY_STATES = ("active", "halted", "revoked")
#: Versions are 1 .. 2**63 - 1: what a signed 64-bit integer holds, so a C client on a device
#: can compare them, and a huge version cannot block every later release.
MAX_VERSION = 2**63 - 1
MAX_SELF_TEST_VALUES = 1 << 16  # keeps signed metadata small

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# ---------------------------------------------------------------------- parsed JSON


def is_object(value: object) -> TypeGuard[dict[str, object]]:
    """``value`` is a JSON object. Parsed JSON is checked with this (not a bare ``isinstance``)
    so that its fields are ``object`` to the type checker until each is checked in turn; a JSON
    object's keys are always strings."""
    return isinstance(value, dict)


def is_array(value: object) -> TypeGuard[list[object]]:
    """``value`` is a JSON array, whose items are each still to be checked."""
    return isinstance(value, list)


# ---------------------------------------------------------------------- names and versions


def check_name(kind: str, value: object) -> str:
    """``value`` if it is a name; reject names that could escape a path segment or collide
    after URL quoting (and anything that is not a string: a parsed document's field)."""
    if isinstance(value, str) and _NAME_RE.fullmatch(value) and value not in (".", ".."):
        return value
    raise OtaError(
        f"invalid {kind} {value!r}: use 1-64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )


def check_version(value: object) -> int:
    """A version is an integer 1 .. 2**63 - 1, so that "newer" has one meaning everywhere."""
    return _bounded_int(value, "version", 1, MAX_VERSION, f"an integer from 1 to {MAX_VERSION}")


def check_rollout(value: object) -> int:
    """A rollout is the integer percentage 0..100 of devices a build may reach."""
    return _bounded_int(value, "rollout", 0, 100, "an integer 0..100")


_DECIMAL_RE = re.compile(r"0|[1-9][0-9]{0,18}")


def _bounded_int(value: object, what: str, low: int, high: int, expected: str) -> int:
    """``value`` as an int within low..high: an int, or the decimal digits of one. A bool, a
    float, a padded string ("5\n", full-width spaces) or one with a leading zero is refused,
    so that one text has one meaning for every reader."""
    wrong = OtaError(f"invalid {what} {value!r}: must be {expected}")
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
        number = int(value)
    else:
        raise wrong
    if not low <= number <= high:
        raise wrong
    return number


# ---------------------------------------------------------------------- repository paths


def target_path(name: str, channel: str, version: int, hardware: str) -> str:
    """The TUF target path of one model build.

    Name, channel, version and hardware are all in the path, so two builds can never share a
    path, and a path says what it is even before its signed custom metadata is read.
    """
    return f"models/{name}/{channel}/{version}/{hardware}/model.tflite"


def index_path(channel: str) -> str:
    """The signed per-channel index that lets a device find candidates without listing bins."""
    return f"index/{channel}.json"


# ---------------------------------------------------------------------- rollout coverage


def rollout_bucket(device_id: str, name: str, version: int) -> int:
    """A stable 0..99 bucket for (device, model, version).

    Hashing the version too means a device that is in the first 10% for one release is not
    always the guinea pig for every release.
    """
    digest = hashlib.sha256(f"{device_id}\0{name}\0{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def rollout_covers(rollout: int, device_id: str, name: str, version: int) -> bool:
    return rollout_bucket(device_id, name, version) < int(rollout)


# ---------------------------------------------------------------------- signed metadata


@dataclass(frozen=True)
class TargetCustom:
    """The identifying part of a target's signed custom metadata, checked.

    The whole custom object also carries ``input_quantization``, ``output_quantization``,
    ``metrics``, ``pipeline_run`` and ``variant``, which devices record but do not act on.
    """

    name: str
    version: int
    hardware: str
    channel: str
    rollout: int
    self_test: dict[str, Any]


def target_custom(custom: object) -> TargetCustom:
    """Check a target's signed custom metadata; raise :class:`OtaError` naming the field.

    Signatures prove who wrote it, not that it is well formed: a device still refuses a field
    of the wrong type or out of range instead of acting on it. Targets published before
    ``schema_version`` existed have the version 1 layout.
    """
    if not is_object(custom):
        raise OtaError("target custom metadata is not an object")
    schema = custom.get("schema_version", 1)
    if schema != SCHEMA_VERSION:
        raise OtaError(f"target custom metadata has schema_version {schema!r}; this "
                       f"edgeship reads {SCHEMA_VERSION}")
    for field in ("version", "rollout"):  # JSON numbers, not strings that read as numbers
        if not isinstance(custom.get(field), int) or isinstance(custom.get(field), bool):
            raise OtaError(f"target custom metadata: {field} {custom.get(field)!r} is not an "
                           "integer")
    try:
        name = check_name("model name", custom.get("name"))
        version = check_version(custom.get("version"))
        hardware = check_name("hardware", custom.get("hardware"))
        channel = check_name("channel", custom.get("channel"))
        rollout = check_rollout(custom.get("rollout"))
    except OtaError as err:
        raise OtaError(f"target custom metadata: {err}") from None
    self_test = custom.get("self_test")
    if not is_object(self_test):
        raise OtaError(f"{name} v{version} carries no signed self-test")
    return TargetCustom(name=name, version=version, hardware=hardware, channel=channel,
                        rollout=rollout, self_test=self_test)


@dataclass(frozen=True)
class IndexEntry:
    """One build in a channel index, checked. ``rollout`` and ``state`` are the index's, not
    the target's: they change (``edgeship rollout set|halt|revoke``) without a new build."""

    version: int
    hardware: str
    path: str
    rollout: int
    state: str


class _IndexEntryCore(TypedDict):
    version: int
    hardware: str
    path: str
    rollout: int


class IndexEntryDoc(_IndexEntryCore, total=False):
    """One entry of a channel index as the publisher writes it (:class:`IndexEntry` is one
    read and checked); ``state`` is ``active`` when absent (a version 1 index)."""

    state: str
    since: str  # a UTC time, see utc_stamp


class _ChannelIndexCore(TypedDict):
    channel: str
    models: dict[str, list[IndexEntryDoc]]


class ChannelIndex(_ChannelIndexCore, total=False):
    """A channel index document as the publisher writes it, or reads it back once every entry
    is checked (:func:`channel_index`, then :func:`model_entries` for each model). An empty
    channel's, before the publisher first writes it, has no ``schema_version`` yet."""

    schema_version: int


def channel_index(index: object) -> dict[str, list[dict[str, object]]]:
    """Check a channel index's shape; return its ``models``: name -> [entry]. Raise
    :class:`OtaError` naming what is malformed. Entries are checked one model at a time with
    :func:`model_entries` where they are used, so one bad entry of another model cannot lock a
    device out of the whole channel.

    Nothing in an index nests deeper than its schema (an object of models, each a list of flat
    entries): a signed index built to nest deeper is refused here, as malformed metadata, before
    anything walks it."""
    models = index.get("models") if is_object(index) else None
    if not is_object(index) or not is_object(models):
        raise OtaError("channel index has no 'models' object")
    schema = index.get("schema_version", 1)
    if type(schema) is not int or schema not in (1, INDEX_SCHEMA_VERSION):
        raise OtaError(f"channel index has schema_version {schema!r}; this edgeship reads "
                       f"1 and {INDEX_SCHEMA_VERSION}")
    for key, value in index.items():
        if key != "models" and not _is_scalar(value):
            raise OtaError(f"channel index field {key!r} nests deeper than the index's schema")
    checked: dict[str, list[dict[str, object]]] = {}
    for name, entries in models.items():
        objects = [e for e in entries if is_object(e)] if is_array(entries) else None
        if objects is None or is_array(entries) and len(objects) != len(entries):
            raise OtaError(f"channel index entry {name!r} is not a list of objects")
        for entry in objects:
            deep = sorted(k for k, v in entry.items() if not _is_scalar(v))
            if deep:
                raise OtaError(f"channel index entry of {name!r}: field {deep[0]!r} nests deeper "
                               "than the index's schema")
        checked[name] = objects
    return checked


_UTC_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def utc_stamp(moment: datetime) -> str:
    """How the channel index writes a moment (a stage's start): UTC, to the second."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_utc_time(value: object) -> bool:
    """A rollout stage's start as the publisher writes it: second precision, UTC, ``Z``."""
    if not isinstance(value, str) or not _UTC_TIME_RE.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def load_json(data: bytes | bytearray | str) -> object:
    """Parse signed JSON (a channel index) or a device's report, refusing duplicate keys: a
    document whose keys repeat reads one way to Python (the last wins) and another to a
    reader that keeps the first, so it has no one meaning. Raises ``ValueError`` (also for
    nesting deep enough to exhaust the parser's recursion). The result is ``object``: the
    caller checks its shape (:func:`is_object`) before reading it."""

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        found: dict[str, object] = {}
        for key, value in pairs:
            if key in found:
                raise ValueError(f"key {key!r} appears twice in one object")
            found[key] = value
        return found

    try:
        parsed: object = json.loads(data, object_pairs_hook=unique)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return parsed


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float)


def index_entry(name: str, entry: Mapping[str, object]) -> IndexEntry:
    """One channel index entry, checked; OtaError otherwise. An entry without a ``state`` (a
    version 1 index) is active. Version and rollout are JSON integers: a string that reads as
    one ("2") is refused, so an index means the same to every reader."""
    path = entry.get("path")
    if not isinstance(path, str):
        raise OtaError(f"channel index entry of {name!r} has no path")
    for field in ("version", "rollout"):
        value = entry.get(field)
        if not isinstance(value, int) or isinstance(value, bool):
            raise OtaError(f"channel index entry of {name!r}: {field} {value!r} is not an "
                           "integer")
    state = entry.get("state", "active")
    if not isinstance(state, str) or state not in ENTRY_STATES:
        raise OtaError(f"channel index entry of {name!r}: state {state!r} is not one of "
                       f"{', '.join(ENTRY_STATES)}")
    if "since" in entry and not _is_utc_time(entry["since"]):
        raise OtaError(f"channel index entry of {name!r}: since {entry['since']!r} is not a "
                       "UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    return IndexEntry(check_version(entry["version"]),
                      check_name("hardware", entry.get("hardware")), path,
                      check_rollout(entry["rollout"]), state)


def model_entries(name: str, entries: Sequence[Mapping[str, object]],
                  hardware: str | None = None) -> list[IndexEntry]:
    """One model's entries in a channel index (only ``hardware``'s, if given), each checked,
    newest first. Two entries for the same (version, hardware) are refused: with one revoked
    and one active, a reader that took the first it met could install a revoked build."""
    checked = [index_entry(name, entry) for entry in entries
               if hardware is None or entry.get("hardware") == hardware]
    seen: set[tuple[int, str]] = set()
    for entry in checked:
        key = (entry.version, entry.hardware)
        if key in seen:
            raise OtaError(f"channel index lists {name} v{entry.version} ({entry.hardware}) "
                           "twice")
        seen.add(key)
    return sorted(checked, key=lambda e: e.version, reverse=True)


def _is_dict(value: object) -> TypeGuard[dict[object, object]]:
    return isinstance(value, dict)


def _is_list_or_tuple(value: object) -> TypeGuard[list[object] | tuple[object, ...]]:
    return isinstance(value, list | tuple)


@runtime_checkable
class _Scalar(Protocol):
    """A numpy scalar (anything with ``item()``)."""

    def item(self) -> object: ...


@runtime_checkable
class _Array(Protocol):
    """A numpy array (anything with ``tolist()``)."""

    def tolist(self) -> object: ...


def canonical_safe(obj: object) -> object:
    """Make ``obj`` encodable as TUF canonical JSON, which has no floats.

    Floats become their shortest round-trip decimal string ("0.0078125"); readers turn them back
    with ``float()``. Tuples become lists, numpy scalars plain numbers.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return repr(obj)
    if _is_dict(obj):
        return {str(k): canonical_safe(v) for k, v in obj.items()}
    if _is_list_or_tuple(obj):
        return [canonical_safe(v) for v in obj]
    if isinstance(obj, _Scalar):  # numpy scalar
        return canonical_safe(obj.item())
    if isinstance(obj, _Array):  # numpy array
        return canonical_safe(obj.tolist())
    raise TypeError(f"cannot put {type(obj).__name__} into signed metadata")


# ---------------------------------------------------------------------- the self-test


@dataclass(frozen=True)
class SelfTest:
    """One real-valued input and the real-valued output the publisher's LiteRT computed for it.

    Real (dequantized) numbers, so one self-test serves every build of a model: each runtime
    quantizes the input with the model's own input parameters and dequantizes its output. The
    device passes if ``|output - expected| <= atol + rtol * |expected|`` everywhere.

    In signed metadata::

        {"input": ARRAY, "expected_output": ARRAY, "atol": "0.0039", "rtol": "0.0"}

    where ARRAY is ``{"dtype": "float32", "shape": [...], "b64": base64(little-endian bytes)}``
    and the tolerances are decimal strings (canonical JSON has no floats).
    """

    input: npt.NDArray[np.float32]
    expected_output: npt.NDArray[np.float32]
    atol: float
    rtol: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"input": encode_array(self.input),
                "expected_output": encode_array(self.expected_output),
                "atol": float(self.atol), "rtol": float(self.rtol)}

    @classmethod
    def from_dict(cls, obj: object) -> SelfTest:
        """Decode a signed self-test; raise :class:`OtaError` if any part is malformed."""
        if not is_object(obj):
            raise OtaError("self-test is not an object")
        try:
            atol, rtol = _number(obj.get("atol", 0.0)), _number(obj.get("rtol", 0.0))
        except (TypeError, ValueError, OverflowError):
            raise OtaError("self-test tolerances are not numbers") from None
        if not (math.isfinite(atol) and math.isfinite(rtol) and atol >= 0 and rtol >= 0):
            raise OtaError(f"self-test tolerances must be finite and >= 0, got {atol}, {rtol}")
        return cls(decode_array(obj.get("input"), "input"),
                   decode_array(obj.get("expected_output"), "expected_output"), atol, rtol)

    def differs(self, output: npt.ArrayLike) -> str:
        """Why ``output`` fails this self-test, or "" if it passes."""
        values = np.asarray(output, dtype=np.float32)
        if values.size != self.expected_output.size:
            return f"output has {values.size} values, expected {self.expected_output.size}"
        values = values.reshape(self.expected_output.shape)
        if np.allclose(values, self.expected_output, atol=self.atol, rtol=self.rtol):
            return ""
        worst = float(np.max(np.abs(values - self.expected_output)))
        return (f"output differs from the expected output by up to {worst:.6g} "
                f"(atol {self.atol:.6g}, rtol {self.rtol:.6g})")


def _number(value: object) -> float:
    """``float(value)`` for what a JSON document can hold; TypeError for anything else."""
    if not isinstance(value, str | int | float):
        raise TypeError(f"{type(value).__name__} is not a number")
    return float(value)


def encode_array(values: npt.ArrayLike) -> dict[str, Any]:
    arr = np.ascontiguousarray(np.asarray(values, dtype="<f4"))
    if arr.size > MAX_SELF_TEST_VALUES:
        raise OtaError(f"self-test array has {arr.size} values; at most "
                       f"{MAX_SELF_TEST_VALUES} fit in signed metadata")
    return {"dtype": "float32", "shape": list(arr.shape),
            "b64": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(obj: object, what: str = "array") -> npt.NDArray[np.float32]:
    """Decode an ARRAY; raise :class:`OtaError` naming ``what`` if it is malformed."""
    if not is_object(obj) or obj.get("dtype") != "float32":
        raise OtaError(f"self-test {what} must be {{'dtype': 'float32', 'shape', 'b64'}}")
    shape = obj.get("shape")
    dims = [d for d in shape if isinstance(d, int) and not isinstance(d, bool)
            and 0 <= d <= MAX_SELF_TEST_VALUES] if is_array(shape) else []
    if not is_array(shape) or len(dims) != len(shape):
        raise OtaError(f"self-test {what} has a malformed shape {shape!r}")
    try:
        encoded = obj.get("b64", "")
        if not isinstance(encoded, str | bytes):
            raise TypeError(f"{type(encoded).__name__} is not base64 text")
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise OtaError(f"self-test {what} is not valid base64") from None
    if len(raw) % 4:
        raise OtaError(f"self-test {what} holds {len(raw)} bytes, not whole float32s")
    arr = np.frombuffer(raw, dtype="<f4")
    if arr.size != math.prod(dims) or arr.size > MAX_SELF_TEST_VALUES:
        raise OtaError(f"self-test {what} has {arr.size} values, its shape says {dims}")
    return arr.reshape(dims).astype(np.float32)


def self_test_tolerance(output_scale: float | None) -> tuple[float, float]:
    """(atol, rtol) for a self-test of a model whose output has quantization step
    ``output_scale`` (None or 0 for a float output).

    Integer kernels round differently across CPUs and delegates, so a quantized output may land
    one step off: one and a half steps of slack. A float output differs by kernel-order noise.
    """
    if output_scale:
        return 1.5 * float(output_scale), 0.0
    return 1e-3, 1e-3


# ---------------------------------------------------------------------- device reports

#: Layout of a device's report (``edgeship.device.report``); the fleet side skips a report of a
#: layout it does not read rather than guess at it.
REPORT_SCHEMA_VERSION = 1
#: Topics are ``<prefix>/devices/<device-id>/state``; the broker's ACL lets a device write only
#: its own (its MQTT user name is its device id).
DEFAULT_TOPIC_PREFIX = "edgeship"


class ReportedModel(TypedDict):
    """A report's ``active``: the model a device runs (it also says ``sha256``, ``verified``)."""

    name: str
    version: int


class _ReportedHealthCore(TypedDict):
    state: str  # "healthy" or "unhealthy"
    version: int


class ReportedHealth(_ReportedHealthCore, total=False):
    """A report's ``health``: the application's verdict on a model version."""

    name: object
    reason: object
    at: object


class _DeviceReportCore(TypedDict):
    schema_version: int
    device_id: str
    hardware: str
    channel: str


class DeviceReport(_DeviceReportCore, total=False):
    """A device's report as the fleet side reads it, once its shape is checked
    (``edgeship.edge_pusher.fleet.reports.report_problem``): the fields typed here are the
    checked ones; the others are only shown."""

    active: ReportedModel | None
    refused: dict[str, str]
    health: ReportedHealth | None
    last_result: dict[str, object]
    agent_version: object
    time: object
    previous: object
    last_check: object
    self_test: object


def device_topic(device_id: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The retained topic a device reports on: its twin. A device id is a name (no ``/``, ``+``
    or ``#``), so it is one topic level and cannot reach another device's topic."""
    return f"{prefix}/devices/{check_name('device id', device_id)}/state"


def devices_filter(prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The subscription that reads every device's report."""
    return f"{prefix}/devices/+/state"


def topic_device_id(topic: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str | None:
    """The device id a report topic names, or None for any other topic."""
    head, _, rest = topic.partition(f"{prefix}/devices/")
    device_id, _, tail = rest.partition("/")
    return device_id if not head and tail == "state" and _NAME_RE.fullmatch(device_id) else None


# ---------------------------------------------------------------------- text shown to people

#: The most characters of one device-supplied string the table, the page or a log shows.
MAX_SHOWN = 80


def shown(text: object, limit: int = MAX_SHOWN) -> str:
    """Text from a device or a data file as it may be shown to a person: control and format
    characters (newlines, ANSI escapes, bidirectional overrides, line separators) escaped
    as ``\\xNN``/``\\uNNNN``, so that a report (or a CSV's label) can neither draw a fake
    table row nor drive the terminal, nor break a one-line verdict; cut to ``limit``
    characters, saying how much was cut."""
    text = text if isinstance(text, str) else repr(text)
    out: list[str] = []
    for ch in text[:limit]:
        if ch == "\\" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append("\\\\" if ch == "\\" else ascii(ch)[1:-1])
        else:
            out.append(ch)
    cut = len(text) - limit
    return "".join(out) + (f"...({cut} more)" if cut > 0 else "")


_FILE_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"),
               (stat.S_ISREG, "a regular file"))


def file_kind(mode: int) -> str:
    """What a file's ``st_mode`` says it is, as a refusal names it ("a FIFO")."""
    return next((what for test, what in _FILE_KINDS if test(mode)), "not a regular file")
