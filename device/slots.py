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

SLOTS = ("a", "b")
PARTIAL_SUFFIXES = (".partial", ".tmp")


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


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


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
        try:
            with open(self.pointer) as f:
                slot = f.read().strip()
        except FileNotFoundError:
            return None
        return slot if slot in SLOTS else None

    def inactive_slot(self) -> str:
        return "b" if self.active_slot() == "a" else "a"

    def meta(self, slot: str | None) -> dict | None:
        if slot is None:
            return None
        try:
            with open(os.path.join(self.slot_dir(slot), "meta.json")) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def verified(self, slot: str | None) -> dict | None:
        """The slot's meta if its model file still has the sha256 recorded at install."""
        meta = self.meta(slot)
        if meta is None:
            return None
        try:
            if sha256_file(self.model_path(slot)) != meta.get("sha256"):
                return None
        except FileNotFoundError:
            return None
        return meta

    def cleanup(self) -> list[str]:
        """Remove leftovers of an interrupted download or write."""
        removed = []
        for slot in SLOTS:
            d = self.slot_dir(slot)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                if name.endswith(PARTIAL_SUFFIXES):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(d, name))
                        removed.append(os.path.join(d, name))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pointer + ".tmp")
        return removed

    def install(self, slot: str, staged: str, meta: dict) -> None:
        """Move a verified, self-tested file into ``slot`` (which must be inactive)."""
        if slot == self.active_slot():
            raise RuntimeError("refusing to overwrite the active slot")
        d = self.slot_dir(slot)
        with contextlib.suppress(FileNotFoundError):  # meta first: never a stale meta/new model
            os.unlink(os.path.join(d, "meta.json"))
        os.replace(staged, self.model_path(slot))
        atomic_write(os.path.join(d, "meta.json"), json.dumps(meta, indent=2).encode())

    def activate(self, slot: str) -> None:
        atomic_write(self.pointer, f"{slot}\n".encode())
