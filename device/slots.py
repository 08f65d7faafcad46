"""A/B model slots with an atomic ``active`` pointer.

Layout inside the state directory::

    slots/a/model.tflite  slots/a/meta.json
    slots/b/model.tflite  slots/b/meta.json
    active                one line: "a" or "b"

A new model is written only into the *inactive* slot (temp file, fsync, rename), and the device
switches by atomically replacing ``active`` (temp file, fsync, rename, fsync of the directory).
A crash at any instant therefore leaves ``active`` naming a slot whose model was complete and
verified when it was activated; the other slot keeps the previous model for rollback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
from typing import Any, TypedDict, cast

from edgeship.contract import check_name, check_version
from edgeship.device.checked import Damaged, read_bytes, read_checked
from edgeship.errors import OtaError

SLOTS = ("a", "b")
PARTIAL_SUFFIXES = (".partial", ".tmp")
META_FILE = "meta.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _SlotMetaRecorded(TypedDict, total=False):
    """What meta.json also records of the signed build; nothing reads it back to decide."""

    rollout: Any
    pipeline_run: Any
    input_quantization: Any
    output_quantization: Any
    path: str
    activated_at: str | None


class SlotMeta(_SlotMetaRecorded):
    """A slot's meta.json, as :func:`meta_shape` checks it: the identity the build was
    signed with, and the length and sha256 of its file."""

    name: str
    version: int
    hardware: str
    channel: str
    sha256: str
    length: int


def meta_shape(value: object) -> str | None:
    """What a slot's meta.json must hold: the identity the build was signed with, and the
    length and sha256 of its file."""
    if not isinstance(value, dict):
        return "not a JSON object"
    value = cast("dict[str, Any]", value)
    try:
        for field in ("name", "hardware", "channel"):
            check_name(field, value.get(field))
        if isinstance(value.get("version"), bool):
            raise OtaError("version is not an integer")
        check_version(value.get("version"))
    except OtaError as e:
        return str(e)
    if not (isinstance(value.get("sha256"), str) and _SHA256.fullmatch(value["sha256"])):
        return "sha256 is not 64 hex digits"
    length = value.get("length")
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        return "length is not a byte count"
    return None


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def file_identity(path: str, expected_length: int | None = None,
                  max_bytes: int = 1 << 30) -> tuple[int, str] | None:
    """(length, sha256) of the regular file at ``path``; None when there is none (a symlink, a
    FIFO or a device is none: reading one could block or never end). A file whose length is
    not ``expected_length`` (when given), or larger than ``max_bytes``, is not hashed: its
    sha256 is given as ""."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        if info.st_size > max_bytes or expected_length not in (None, info.st_size):
            return info.st_size, ""
        digest = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
        return info.st_size, digest.hexdigest()


def remove(path: str) -> None:
    """Remove a file or a whole directory, if there is one."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(path)


class SlotStore:
    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.pointer = os.path.join(state_dir, "active")

    def slot_dir(self, slot: str) -> str:
        return os.path.join(self.state_dir, "slots", slot)

    def model_path(self, slot: str) -> str:
        return os.path.join(self.slot_dir(slot), "model.tflite")

    def partial_path(self, slot: str) -> str:
        return self.model_path(slot) + ".partial"

    def active_slot(self) -> str | None:
        pointer = self.read_pointer()
        return pointer if isinstance(pointer, str) and pointer in SLOTS else None

    def read_pointer(self) -> str | Damaged | None:
        """The slot ``active`` names, None when there is no pointer, or what is wrong with it."""
        try:
            data = read_bytes(self.pointer, limit=16)
        except FileNotFoundError:
            return None
        except OSError as e:
            return Damaged("active", str(e.strerror or e))
        text = (data or b"").decode("ascii", "replace").strip()
        return text if text in SLOTS else Damaged("active", f"names no slot: {text[:16]!r}")

    def inactive_slot(self) -> str:
        return "b" if self.active_slot() == "a" else "a"

    def read_meta(self, slot: str) -> SlotMeta | Damaged | None:
        """The slot's checked meta.json (see :func:`meta_shape`; a version written as decimal
        digits is given as the integer), None when there is none."""
        value: object = read_checked(os.path.join(self.slot_dir(slot), META_FILE), meta_shape,
                                     f"slots/{slot}/{META_FILE}")
        if not isinstance(value, dict):
            return cast("Damaged | None", value)
        meta = cast(SlotMeta, value)  # read_checked returns a dict only if meta_shape passed it
        meta["version"] = check_version(meta["version"])
        return meta

    def meta(self, slot: str | None) -> SlotMeta | None:
        """The slot's meta when it has the declared shape, else None."""
        meta = self.read_meta(slot) if slot else None
        return meta if isinstance(meta, dict) else None

    def verified(self, slot: str | None) -> SlotMeta | None:
        """The slot's meta if its model file still has the length and sha256 recorded at
        install. (Whether those are the *signed* ones is for the agent and
        ``device_status`` to check against the TUF metadata.)"""
        meta = self.meta(slot)
        if slot is None or not meta:
            return None
        identity = (meta["length"], meta["sha256"])
        if file_identity(self.model_path(slot), identity[0]) != identity:
            return None
        return meta

    def empty(self, slot: str) -> None:
        """Remove whatever the slot holds (meta first, so no meta ever describes a file it
        was not written for)."""
        remove(os.path.join(self.slot_dir(slot), META_FILE))
        remove(self.model_path(slot))

    def cleanup(self) -> list[str]:
        """Remove leftovers of an interrupted download or write."""
        removed: list[str] = []
        for slot in SLOTS:
            d = self.slot_dir(slot)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                if name.endswith(PARTIAL_SUFFIXES):
                    remove(os.path.join(d, name))
                    removed.append(os.path.join(d, name))
        remove(self.pointer + ".tmp")
        return removed

    def install(self, slot: str, staged: str, meta: SlotMeta) -> None:
        """Move a verified, self-tested file into ``slot`` (which must be inactive)."""
        if slot == self.active_slot():
            raise RuntimeError("refusing to overwrite the active slot")
        d = self.slot_dir(slot)
        remove(os.path.join(d, META_FILE))  # meta first: never a stale meta for a new model
        os.replace(staged, self.model_path(slot))
        self.write_meta(slot, meta)

    def write_meta(self, slot: str, meta: SlotMeta) -> None:
        atomic_write(os.path.join(self.slot_dir(slot), META_FILE),
                     json.dumps(meta, indent=2).encode())

    def activate(self, slot: str) -> None:
        atomic_write(self.pointer, f"{slot}\n".encode())
