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

import fcntl
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgeship.contract import DeviceReport, check_name, is_object, load_json
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
    """What a registered device may speak for: builds of its hardware on its channel, and, when
    it was registered with a model, of that model only (without one, a device's word counts for
    the model its report says it runs, which a lying device chooses)."""

    hardware: str
    channel: str
    model: str | None = None


@dataclass
class Vetted:
    """Reports split by the registry: the ones that count, and the ignored ones, by why."""

    reports: dict[str, DeviceReport] = field(default_factory=dict)
    #: Device ids the registry does not list.
    unregistered: list[str] = field(default_factory=list)
    #: Device id -> what it claimed that its identity does not allow.
    mismatched: dict[str, str] = field(default_factory=dict)
    #: False when there was no registry: every report was taken unchecked (``fleet status``).
    checked: bool = True


def registry_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / REGISTRY_FILE


def default_registry(password_file: str) -> str:
    """Where the watcher looks without ``--registry``: beside the fleet reader's password
    (``broker-config`` writes both into the broker folder)."""
    return os.path.join(os.path.dirname(os.path.abspath(password_file)), REGISTRY_FILE)


def read_registry(path: str | os.PathLike[str]) -> dict[str, Identity]:
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
    devices = data.get("devices") if is_object(data) else None
    if not is_object(data) or not is_object(devices) or data.get(
            "schema_version") != REGISTRY_SCHEMA_VERSION:
        raise OtaError(f"{path}: not a device registry (schema_version "
                       f"{REGISTRY_SCHEMA_VERSION} with 'devices')")
    found: dict[str, Identity] = {}
    for device_id, identity in devices.items():
        try:
            check_name("device id", device_id)
            if device_id == FLEET_READER:
                raise OtaError(f"{FLEET_READER!r} is the fleet reader, not a device")
            if not is_object(identity):
                raise OtaError(f"device {device_id}: not an object")
            model = identity.get("model")
            found[device_id] = Identity(
                check_name("hardware", identity.get("hardware")),
                check_name("channel", identity.get("channel")),
                None if model is None else check_name("model name", model))
        except OtaError as e:
            raise OtaError(f"{path}: {e}") from None
    return found


def _read_regular(path: str | os.PathLike[str]) -> bytes:
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


def register(folder: str | os.PathLike[str], device_ids: list[str], hardware: str,
             channel: str, model: str | None = None) -> Path:
    """Record (or change) the identity of ``device_ids``; the file is replaced atomically, so
    a watcher reading it at the same time sees the old registry or the new, never half. Two
    registrations at once (a provisioning script) take turns under a lock, so neither is
    lost, and each writes its own temporary file."""
    check_name("hardware", hardware)
    check_name("channel", channel)
    if model is not None:
        check_name("model name", model)
    for device_id in device_ids:
        check_name("device id", device_id)
    path = registry_path(folder)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        devices: dict[str, dict[str, str]] = {}
        if path.exists():
            devices = {d: _entry(i) for d, i in read_registry(path).items()}
        for device_id in device_ids:
            devices[device_id] = _entry(Identity(hardware, channel, model))
        text = json.dumps({"schema_version": REGISTRY_SCHEMA_VERSION,
                           "devices": dict(sorted(devices.items()))}, indent=1) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def _entry(identity: Identity) -> dict[str, str]:
    entry = {"hardware": identity.hardware, "channel": identity.channel}
    return entry | ({"model": identity.model} if identity.model else {})


def vet(reports: dict[str, DeviceReport], registry: dict[str, Identity] | None) -> Vetted:
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
        if identity.model:
            active = report.get("active") or {}
            if active and active.get("name") != identity.model:
                vetted.mismatched[device_id] = (
                    f"claims to run {active.get('name')!r}, registered for model "
                    f"{identity.model}")
                continue
            refused = report.get("refused") or {}  # its word on other models' builds: none
            report = report.copy()
            report["refused"] = {k: v for k, v in refused.items()
                                 if k.startswith(f"{identity.model}/")}
        vetted.reports[device_id] = report
    return vetted
