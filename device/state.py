"""The device's state folder: what the agent records between polls, and the status it reports.

    trusted_root.json   copy of the firmware's root, the anchor of all trust
    tuf/                python-tuf metadata cache (root chain, timestamp, snapshot, targets, bins)
    cache/              the verified channel index
    slots/{a,b}/        A/B model slots (see ``edgeship.device.slots``)
    active              the active slot pointer
    status.json         the last outcome, as shown by ``edgeship device status``
    bad_versions.json   builds that failed to load or self-test here, or were revoked; never retried
    health.json         what the application said of the model it runs (``report-health``)

Reading the status needs no repository and no network: ``edgeship device status`` and the
firmware's health checks use :func:`device_status` on the folder alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, cast

from edgeship.contract import MAX_INDEX_BYTES, target_path
from edgeship.device.checked import (
    Damaged,
    Shape,
    kind_of,
    object_shape,
    read_checked,
    tuf_cache_cap,
)
from edgeship.device.slots import SLOTS, SlotStore, atomic_write, file_identity, remove
from edgeship.device.trust import SignedCache, Unverifiable

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
BAD_VERSIONS_FILE = "bad_versions.json"
TRUSTED_ROOT_FILE = "trusted_root.json"
HEALTH_FILE = "health.json"
HEALTH_STATES = ("healthy", "unhealthy")
MAX_HEALTH_REASON = 200
#: What the agent creates, and whether each is a "dir" or a "file" (parents first).
LAYOUT: tuple[tuple[tuple[str, ...], str], ...] = (
    (("tuf",), "dir"), (("cache",), "dir"), (("slots",), "dir"),
    *((("slots", s), "dir") for s in SLOTS),
    *((("slots", s, name), "file") for s in SLOTS for name in ("meta.json", "model.tflite")),
    (("active",), "file"), (("status.json",), "file"), (("bad_versions.json",), "file"),
    (("trusted_root.json",), "file"), (("health.json",), "file"),
)
#: Folders whose every entry is a file, except python-tuf's root_history folder.
CACHES = (("tuf",), ("tuf", "root_history"), ("cache",))
#: Repairs kept in status.json, newest last.
KEPT_REPAIRS = 20


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ declared shapes
# Each returns what is wrong with a parsed value, or None when it has the declared shape.


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _object(value: object) -> dict[str, Any] | None:
    """A parsed JSON object (whose keys are text), None for anything else."""
    return cast("dict[str, Any]", value) if isinstance(value, dict) else None


def _status_shape(found: object) -> str | None:
    value = _object(found)
    if value is None:
        return "not a JSON object"
    for key in ("device_id", "hardware", "channel", "last_check", "last_successful_check"):
        if not _text_or_none(value.get(key)):
            return f"{key} is not text"
    result, found_result = _object(value.get("last_result")), value.get("last_result")
    if found_result is not None and not (result is not None
                                         and isinstance(result.get("ok"), bool)
                                         and isinstance(result.get("action"), str)):
        return "last_result is not a poll result"
    error, found_error = _object(value.get("last_error")), value.get("last_error")
    if found_error is not None and not (error is not None
                                        and all(isinstance(error.get(k), str) for k in
                                                ("reason", "message", "at"))):
        return "last_error is not a reason, message and time"
    repairs: object = value.get("repairs", [])
    if not (isinstance(repairs, list)
            and all(isinstance(r, str) for r in cast("list[object]", repairs))):
        return "repairs is not a list of text"
    return None


def _bad_entry_shape(key: object, found: object) -> str | None:
    if not (isinstance(key, str) and key.count("/") == 2):
        return f"{key!r} is not name/version/hardware"
    value = _object(found)
    if not (value is not None and isinstance(value.get("reason"), str)):
        return f"{key}: no reason"
    return None


def _health_shape(found: object) -> str | None:
    value = _object(found)
    if value is None or value.get("state") not in HEALTH_STATES:
        return f"state is not one of {', '.join(HEALTH_STATES)}"
    if not all(isinstance(value.get(k), str) for k in ("reason", "at", "name")):
        return "reason, at or name is not text"
    if not isinstance(value.get("version"), int) or isinstance(value.get("version"), bool):
        return "version is not an integer"
    return None


class StateDir:
    """Typed access to one device's state folder. Every file is read through
    :meth:`read_json`, which checks it against its declared shape: state is never trusted
    as it is found, since a power cut, a full disk or a person may have left anything there."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.slots = SlotStore(self.path)

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def repair_layout(self) -> list[Damaged]:
        """Remove a file where the layout has a directory, or a directory where it has a
        file; return what was removed. Nothing of value is lost: every such path holds
        either state the next poll rewrites or a copy of something verifiable."""
        expected = list(LAYOUT)
        for folder in CACHES:  # python-tuf's cache and the index cache: files, one folder
            with contextlib.suppress(OSError):
                expected += [((*folder, name), "dir" if name == "root_history" else "file")
                             for name in os.listdir(self.file(*folder))]
        removed: list[Damaged] = []
        for parts, kind in expected:
            path = self.file(*parts)
            found = kind_of(path)
            if found == "other" and parts == ("tuf", "root.json") and _points_inside(path):
                continue  # python-tuf's own link to the newest root
            if found is not None and found != kind:
                remove(path)
                removed.append(Damaged("/".join(parts), _what_is_there(found)))
            elif found == "file" and (too_large := _too_large(parts, path)):
                remove(path)
                removed.append(Damaged("/".join(parts), too_large))
            if kind == "file" and kind_of(path + ".tmp") is not None:
                remove(path + ".tmp")  # an interrupted write's leftover blocks the next one
                removed.append(Damaged("/".join(parts) + ".tmp", "left by an interrupted write"))
        return removed

    def read_json(self, name: str, shape: Shape) -> dict[str, Any] | Damaged | None:
        """The parsed file when it has its ``shape`` (a JSON object, for every state file);
        None when it does not exist; a :class:`Damaged` for anything else (unreadable, a
        directory, not JSON, wrong shape)."""
        value: object = read_checked(self.file(name), shape, name)
        if isinstance(value, Damaged) or value is None:
            return value
        found = _object(value)
        return found if found is not None else Damaged(name, "not a JSON object")

    def _write_json(self, name: str, data: Any) -> None:
        atomic_write(self.file(name), json.dumps(data, indent=2).encode())

    def repair_records(self) -> list[str]:
        """Rewrite a damaged status.json or bad_versions.json with what of it still has its
        shape; return what was done."""
        done: list[str] = []
        status = self.read_json(STATUS_FILE, _status_shape)
        if isinstance(status, Damaged):
            self._rewrite(STATUS_FILE, {})
            done.append(f"{status}; started afresh")
        bad = self.read_json(BAD_VERSIONS_FILE, object_shape)
        kept = self.bad_versions()
        if isinstance(bad, Damaged) or (isinstance(bad, dict) and len(kept) != len(bad)):
            self._rewrite(BAD_VERSIONS_FILE, kept)
            problem = bad if isinstance(bad, Damaged) else f"{BAD_VERSIONS_FILE}: " \
                f"{len(bad) - len(kept)} malformed entries"
            done.append(f"{problem}; {len(kept)} well-formed entries kept")
        health = self.read_json(HEALTH_FILE, _health_shape)
        if isinstance(health, Damaged):
            remove(self.file(HEALTH_FILE))
            done.append(f"{health}; removed (the application reports again)")
        return done

    def _rewrite(self, name: str, data: Any) -> None:
        try:
            self._write_json(name, data)
        except OSError as e:  # the next poll tries again
            log.error("cannot rewrite %s: %s", name, e)

    def health(self) -> dict[str, Any] | None:
        """What the application last said of the model (``report-health``), or None. A
        damaged file counts as nothing said."""
        data = self.read_json(HEALTH_FILE, _health_shape)
        return data if isinstance(data, dict) else None

    def set_health(self, state: str, reason: str = "") -> dict[str, Any]:
        """Record the application's verdict on the **active** model: it applies to that
        name and version only, so a report never carries it over to the next model."""
        if state not in HEALTH_STATES:
            raise ValueError(f"health must be one of {', '.join(HEALTH_STATES)}, not {state!r}")
        active = self.slots.meta(self.slots.active_slot())
        if not active:
            raise FileNotFoundError(f"{self.path}: no active model to report the health of")
        health = {"state": state, "reason": " ".join(reason.split())[:MAX_HEALTH_REASON],
                  "name": active["name"], "version": int(active["version"]), "at": now_iso()}
        self._write_json(HEALTH_FILE, health)
        return health

    def bad_versions(self) -> dict[str, Any]:
        """Builds refused here. Entries of the wrong shape are dropped (the build is simply
        tested again, and refused again, should it be offered)."""
        data = self.read_json(BAD_VERSIONS_FILE, object_shape)
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if _bad_entry_shape(k, v) is None}

    def mark_bad(self, name: str, version: int, hardware: str, reason: str) -> None:
        """Remember a build that failed here so that it is never downloaded again."""
        bad = self.bad_versions()
        bad[f"{name}/{version}/{hardware}"] = {"reason": reason, "at": now_iso()}
        try:
            self._write_json(BAD_VERSIONS_FILE, bad)
        except OSError as e:  # still refuse the build; it is simply re-tested next time
            log.error("cannot record bad version: %s", e)

    def last_status(self) -> dict[str, Any]:
        data = self.read_json(STATUS_FILE, _status_shape)
        return data if isinstance(data, dict) else {}

    def record(self, identity: dict[str, Any], result: dict[str, Any],
               repairs: Sequence[str] = ()) -> None:
        """Write the outcome of a poll (``result``: ok, action, reason, message, version), and
        the repairs it made to the state folder."""
        st = self.last_status()
        now = now_iso()
        st.update(identity, last_check=now, last_result=result)
        if result["ok"]:
            st["last_successful_check"] = now
            st["last_error"] = None
        else:
            st["last_error"] = {"reason": result["reason"], "message": result["message"],
                                "at": now}
        if repairs:
            st["repairs"] = [*st.get("repairs", []), *(f"{now} {r}" for r in repairs)][
                -KEPT_REPAIRS:]
        try:
            self._write_json(STATUS_FILE, st)
        except OSError as e:  # a full disk must not turn a refusal into a crash
            log.error("cannot write %s: %s", STATUS_FILE, e)


def _what_is_there(found: str) -> str:
    return {"dir": "a directory where a file belongs", "file": "a file where a directory "
            "belongs"}.get(found, "a link, FIFO or device where the agent keeps a file")


def _cache_cap(parts: tuple[str, ...]) -> int | None:
    """The most the agent (or python-tuf for it) reads of a cached file, None elsewhere."""
    head, rest = parts[0], parts[1:]
    if head == "tuf" and rest:
        return tuf_cache_cap("/".join(rest))
    return MAX_INDEX_BYTES if head == "cache" and len(rest) == 1 else None


def _too_large(parts: tuple[str, ...], path: str) -> str | None:
    """Why a cached file is too large to be read (python-tuf reads its cache whole: a 3 GiB
    sparse file there ended every poll in MemoryError), or None."""
    cap = _cache_cap(parts)
    try:
        size = os.lstat(path).st_size
    except OSError:
        return None
    if cap is None or size <= cap:
        return None
    return f"{size} bytes, more than the {cap} any such file may have"


def _points_inside(link: str) -> bool:
    """Whether ``link`` resolves to a regular file inside its own folder."""
    target, base = os.path.realpath(link), os.path.realpath(os.path.dirname(link))
    return os.path.isfile(target) and os.path.commonpath([target, base]) == base


def check_signed(state: StateDir, slot: str, cache: SignedCache | Unverifiable) -> str | None:
    """Why the model in ``slot`` is not the one signed for the identity its meta.json
    records, or None when its length and sha256 match the signed target metadata in the
    device's TUF cache (``cache``, read offline: see ``edgeship.device.trust``; or why the
    cache proves nothing)."""
    meta = state.slots.read_meta(slot)
    if not isinstance(meta, dict):
        return str(meta) if meta else f"slots/{slot} holds no model"
    try:
        if isinstance(cache, Unverifiable):
            raise cache
        signed = cache.target(target_path(meta["name"], meta["channel"], meta["version"],
                                          meta["hardware"]))
    except Unverifiable as e:
        return f"the TUF cache cannot be verified: {e}"
    if signed is None:
        return (f"{meta['name']} v{meta['version']} ({meta['hardware']}, {meta['channel']}) "
                "is not in the signed metadata this device holds")
    found = file_identity(state.slots.model_path(slot), signed.length)
    if found != (signed.length, signed.hashes.get("sha256")):
        return "the model file does not match its signed length and sha256"
    return None


def _signed_cache(state: StateDir, trusted_root: str | None) -> SignedCache | Unverifiable:
    try:
        return SignedCache(state.file("tuf"), trusted_root or state.file(TRUSTED_ROOT_FILE))
    except Unverifiable as e:
        return e


def device_status(state_dir: str, identity: dict[str, Any] | None = None,
                  trusted_root: str | None = None) -> dict[str, Any]:
    """The device's status: the active model and whether it is the signed one (checked
    against the TUF cache, not against the slot's own meta.json, which is as easy to change
    as the model), the previous one, the last check and error, the builds refused here, and
    whatever in the state folder is damaged. Never fails, whatever the folder holds.

    ``identity`` (device_id, hardware, channel) fills in what no poll has recorded yet.
    ``trusted_root`` anchors the check on the firmware's root.json instead of the copy the
    agent keeps in the state folder (which whoever can write the folder can replace).
    """
    state = StateDir(state_dir)
    raw = state.read_json(STATUS_FILE, _status_shape)
    st = raw if isinstance(raw, dict) else {}
    damaged = [raw] if isinstance(raw, Damaged) else []
    bad = state.read_json(BAD_VERSIONS_FILE, object_shape)
    if isinstance(bad, Damaged):
        damaged.append(bad)
    slots = state.slots
    pointer = slots.read_pointer()
    if isinstance(pointer, Damaged):
        damaged.append(pointer)
    metas = {slot: slots.read_meta(slot) for slot in SLOTS}
    damaged += [m for m in metas.values() if isinstance(m, Damaged)]
    slot = pointer if isinstance(pointer, str) else None
    active = None
    meta = metas[slot] if slot else None
    if slot and isinstance(meta, dict):
        active = {k: meta.get(k) for k in ("name", "version", "sha256", "hardware",
                                           "channel", "activated_at")} | {"slot": slot}
        cache = _signed_cache(state, trusted_root)
        if isinstance(cache, SignedCache):
            damaged += [Damaged("tuf/root_history", why) for why in cache.skipped]
        problem = check_signed(state, slot, cache)
        active["verified"] = problem is None
        if problem:
            active["not_verified"] = problem
    prev_slot = "b" if slot == "a" else "a"
    prev = metas[prev_slot] if slot else None
    identity = identity or {}
    return {
        "device_id": st.get("device_id", identity.get("device_id")),
        "hardware": st.get("hardware", identity.get("hardware")),
        "channel": st.get("channel", identity.get("channel")),
        "active": active,
        "previous": ({"name": prev["name"], "version": prev["version"], "slot": prev_slot}
                     if isinstance(prev, dict) else None),
        "last_check": st.get("last_check"),
        "last_successful_check": st.get("last_successful_check"),
        "last_result": st.get("last_result"),
        "last_error": st.get("last_error"),
        "bad_versions": sorted(state.bad_versions()),
        "health": state.health(),
        "damaged": [str(d) for d in damaged],
        "repairs": st.get("repairs", []),
    }
