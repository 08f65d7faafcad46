"""The device's state folder: what the agent records between polls, and the status it reports.

    trusted_root.json   copy of the firmware's root, the anchor of all trust
    tuf/                python-tuf metadata cache (root chain, timestamp, snapshot, targets, bins)
    cache/              the verified channel index
    slots/{a,b}/        A/B model slots (see ``edgeship.device.slots``)
    active              the active slot pointer
    status.json         the last outcome, as shown by ``edgeship device status``
    bad_versions.json   builds that failed to load or self-test here; never retried

Reading the status needs no repository and no network: ``edgeship device status`` and the
firmware's health checks use :func:`device_status` on the folder alone.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from typing import Any

from edgeship.device.slots import SlotStore, atomic_write

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
BAD_VERSIONS_FILE = "bad_versions.json"
TRUSTED_ROOT_FILE = "trusted_root.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class StateDir:
    """Typed access to one device's state folder."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.slots = SlotStore(self.path)

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def _read_json(self, name: str, default: dict[str, Any]) -> dict[str, Any]:
        """The file's JSON object, or ``default`` when it is missing, unreadable or not an
        object: state the agent wrote is rewritten whole on the next poll, never trusted."""
        try:
            with open(self.file(name)) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return default
        return data if isinstance(data, dict) else default

    def _write_json(self, name: str, data: Any) -> None:
        atomic_write(self.file(name), json.dumps(data, indent=2).encode())

    def bad_versions(self) -> dict[str, Any]:
        return self._read_json(BAD_VERSIONS_FILE, {})

    def mark_bad(self, name: str, version: int, hardware: str, reason: str) -> None:
        """Remember a build that failed here so that it is never downloaded again."""
        bad = self.bad_versions()
        bad[f"{name}/{version}/{hardware}"] = {"reason": reason, "at": now_iso()}
        try:
            self._write_json(BAD_VERSIONS_FILE, bad)
        except OSError as e:  # still refuse the build; it is simply re-tested next time
            log.error("cannot record bad version: %s", e)

    def last_status(self) -> dict[str, Any]:
        return self._read_json(STATUS_FILE, {})

    def record(self, identity: dict[str, Any], result: dict[str, Any]) -> None:
        """Write the outcome of a poll (``result``: ok, action, reason, message, version)."""
        st = self.last_status()
        now = now_iso()
        st.update(identity, last_check=now, last_result=result)
        if result["ok"]:
            st["last_successful_check"] = now
            st["last_error"] = None
        else:
            st["last_error"] = {"reason": result["reason"], "message": result["message"],
                                "at": now}
        try:
            self._write_json(STATUS_FILE, st)
        except OSError as e:  # a full disk must not turn a refusal into a crash
            log.error("cannot write %s: %s", STATUS_FILE, e)


def device_status(state_dir: str, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """The device's status: the active model (re-hashed, so a damaged file is not claimed as
    verified), the previous one, the last check and error, and the builds refused here.

    ``identity`` (device_id, hardware, channel) fills in what no poll has recorded yet.
    """
    state = StateDir(state_dir)
    st = state.last_status()
    slots = state.slots
    slot = slots.active_slot()
    meta = slots.meta(slot)
    active = None
    if meta:
        active = {k: meta.get(k) for k in ("name", "version", "sha256", "hardware",
                                           "channel", "activated_at")} | {"slot": slot}
        active["verified"] = slots.verified(slot) is not None
    prev_slot = "b" if slot == "a" else "a"
    prev = slots.meta(prev_slot) if slot else None
    identity = identity or {}
    return {
        "device_id": st.get("device_id", identity.get("device_id")),
        "hardware": st.get("hardware", identity.get("hardware")),
        "channel": st.get("channel", identity.get("channel")),
        "active": active,
        "previous": ({"name": prev.get("name"), "version": prev.get("version"),
                      "slot": prev_slot} if prev else None),
        "last_check": st.get("last_check"),
        "last_successful_check": st.get("last_successful_check"),
        "last_result": st.get("last_result"),
        "last_error": st.get("last_error"),
        "bad_versions": sorted(state.bad_versions()),
    }
