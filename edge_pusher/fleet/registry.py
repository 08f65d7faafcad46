"""The device registry: which hardware and channel each device may speak for.

A report is one device's word about itself, and the broker's ACL already keeps a device to its
own topic; but the ``hardware`` and ``channel`` in a report are the device's to choose, so
without a registry one device could speak for another hardware's build (and revoke or advance
it) that no device of that hardware reported on. ``edgeship fleet add-device ID --hardware H
--channel C`` records the identity here, in ``devices.json`` in the broker folder (beside the
password file): written by the operator, atomically, never by a device (devices have no way to
write files on the fleet side; they only publish to their own topic).

The watcher needs the registry (``rollout watch`` without one is an error); ``fleet status``
without one still shows the reports, flagged as unchecked. A report from a device the registry
does not list is ignored and flagged as *unregistered*; one that claims another hardware or
channel than its registered identity is ignored and flagged as a *mismatch*.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship.contract import check_name, load_json
from edgeship.errors import OtaError

#: The registry's file name in the broker folder.
REGISTRY_FILE = "devices.json"
REGISTRY_SCHEMA_VERSION = 1
#: The fleet reader's MQTT user: never a device (the ACL's device pattern would let its
#: password write a report of its own, and a registry entry would give that report a vote).
FLEET_READER = "fleet"
#: The largest registry read: about 100 bytes a device, so a million devices fit.
MAX_REGISTRY_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class Identity:
    """What a registered device may speak for."""

    hardware: str
    channel: str


@dataclass
class Vetted:
    """Reports split by the registry: the ones that count, and the ignored ones, by why."""

    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Device ids the registry does not list.
    unregistered: list[str] = field(default_factory=list)
    #: Device id -> what it claimed that its identity does not allow.
    mismatched: dict[str, str] = field(default_factory=dict)
    #: False when there was no registry: every report was taken unchecked (``fleet status``).
    checked: bool = True


def registry_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / REGISTRY_FILE


def default_registry(password_file: str) -> str:
    """Where the watcher looks without ``--registry``: beside the fleet reader's password
    (``broker-config`` writes both into the broker folder)."""
    return os.path.join(os.path.dirname(os.path.abspath(password_file)), REGISTRY_FILE)


def read_registry(path: str | os.PathLike) -> dict[str, Identity]:
    """Device id -> identity. A missing or malformed registry is an :class:`OtaError` naming
    the file: counting devices nobody registered would let any login speak for any build."""
    try:
        data = load_json(_read_regular(path))
    except FileNotFoundError:
        raise OtaError(f"{path}: no device registry; register each device with 'edgeship "
                       "fleet add-device ID --hardware H --channel C --dir BROKER_DIR' (the "
                       "watcher counts registered devices only)") from None
    except OSError as e:
        raise OtaError(f"{path}: cannot read the device registry ({e.strerror})") from None
    except ValueError:
        raise OtaError(f"{path}: the device registry is not JSON") from None
    devices = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(devices, dict) or data.get("schema_version") != REGISTRY_SCHEMA_VERSION:
        raise OtaError(f"{path}: not a device registry (schema_version "
                       f"{REGISTRY_SCHEMA_VERSION} with 'devices')")
    found = {}
    for device_id, identity in devices.items():
        try:
            check_name("device id", device_id)
            if device_id == FLEET_READER:
                raise OtaError(f"{FLEET_READER!r} is the fleet reader, not a device")
            if not isinstance(identity, dict):
                raise OtaError(f"device {device_id}: not an object")
            found[device_id] = Identity(check_name("hardware", identity.get("hardware")),
                                        check_name("channel", identity.get("channel")))
        except OtaError as e:
            raise OtaError(f"{path}: {e}") from None
    return found


def _read_regular(path: str | os.PathLike) -> bytes:
    """The registry's bytes, if it is a regular file of at most :data:`MAX_REGISTRY_BYTES`:
    a FIFO or ``/dev/zero`` put in its place must not hang or exhaust the watcher."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OtaError(f"{path}: the device registry is not a regular file")
        if info.st_size > MAX_REGISTRY_BYTES:
            raise OtaError(f"{path}: the device registry is {info.st_size} bytes, over "
                           f"{MAX_REGISTRY_BYTES}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_REGISTRY_BYTES + 1)
    finally:
        os.close(fd)


def register(folder: str | os.PathLike, device_ids: list[str], hardware: str,
             channel: str) -> Path:
    """Record (or change) the identity of ``device_ids``; the file is replaced atomically, so
    a watcher reading it at the same time sees the old registry or the new, never half."""
    check_name("hardware", hardware)
    check_name("channel", channel)
    for device_id in device_ids:
        check_name("device id", device_id)
    path = registry_path(folder)
    devices: dict[str, dict[str, str]] = {}
    if path.exists():
        devices = {d: {"hardware": i.hardware, "channel": i.channel}
                   for d, i in read_registry(path).items()}
    for device_id in device_ids:
        devices[device_id] = {"hardware": hardware, "channel": channel}
    text = json.dumps({"schema_version": REGISTRY_SCHEMA_VERSION,
                       "devices": dict(sorted(devices.items()))}, indent=1) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def vet(reports: dict[str, dict[str, Any]], registry: dict[str, Identity] | None) -> Vetted:
    """Keep the reports of registered devices that claim their own hardware and channel.
    ``registry`` None (no registry: ``fleet status`` only) keeps every report, unchecked."""
    if registry is None:
        return Vetted(dict(reports), checked=False)
    vetted = Vetted()
    for device_id, report in sorted(reports.items()):
        identity = registry.get(device_id)
        if identity is None:
            vetted.unregistered.append(device_id)
            continue
        claimed = (report.get("hardware"), report.get("channel"))
        if claimed != (identity.hardware, identity.channel):
            vetted.mismatched[device_id] = (
                f"claims {claimed[0]!r} on {claimed[1]!r}, registered as "
                f"{identity.hardware} on {identity.channel}")
            continue
        vetted.reports[device_id] = report
    return vetted
