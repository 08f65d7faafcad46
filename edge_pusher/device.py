"""The device agent: poll a signed repository, verify, self-test, switch A/B atomically.

Python API for firmware written in Python::

    agent = Agent(state_dir, repo_url, trusted_root="/etc/edgeship/root.json",
                  device_id="cam-0042", hardware="cpu", channel="stable")
    result = agent.poll_once()          # never raises for network/repository problems
    path = agent.active_model_path()    # what the application should load

State directory::

    trusted_root.json   copy of the firmware's root, the anchor of all trust
    tuf/                python-tuf metadata cache (root chain, timestamp, snapshot, targets, bins)
    cache/              the verified channel index
    slots/{a,b}/        A/B model slots (see edge_pusher.slots)
    active              the active slot pointer
    status.json         the last outcome, as shown by ``edgeship device status``
    bad_versions.json   builds that failed to load or self-test here; never retried

Imports only python-tuf, numpy and (when a model is tested) LiteRT: never TensorFlow, kfp, Beam,
the TFX libraries or boto3.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from tuf.api import exceptions as tuf_exc
from tuf.ngclient import Updater, UpdaterConfig

from edge_pusher import selftest
from edge_pusher.fetcher import fetcher_for, normalize_repo_url
from edge_pusher.naming import check_name, index_path, rollout_covers
from edge_pusher.slots import SlotStore, atomic_write

log = logging.getLogger(__name__)

# Hard caps on what a device will download for metadata (endless-data attack on metadata).
_CONFIG = dict(timestamp_max_length=16 * 1024, snapshot_max_length=1 << 20,
               targets_max_length=4 << 20, root_max_length=256 * 1024)
MAX_INDEX_BYTES = 1 << 20


class Refusal(Exception):
    """A poll outcome the device refuses; ``reason`` is a short stable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class PollResult:
    ok: bool
    action: str  # "updated", "up-to-date", "no-model", "refused", "error"
    reason: str | None = None
    message: str = ""
    version: int | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "action": self.action, "reason": self.reason,
                "message": self.message, "version": self.version}


def _now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def classify(exc: BaseException) -> tuple[str, str]:
    """Map a failure to (reason, message). Each reason names the attack or fault it stops."""
    msg = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, Refusal):
        return exc.reason, str(exc)
    # Endless data: a file longer than its signed (or capped) length is cut off, never stored.
    if isinstance(exc, tuf_exc.DownloadLengthMismatchError):
        return "length-exceeded", msg
    if isinstance(exc, tuf_exc.DownloadError):
        return "bucket-unreachable", msg
    # Freeze: metadata past its expiry is refused, so an attacker cannot pin an old repository.
    if isinstance(exc, tuf_exc.ExpiredMetadataError):
        return "expired-metadata", msg
    # Rollback: versions of timestamp/snapshot/targets/bins may never go down.
    if isinstance(exc, tuf_exc.BadVersionNumberError):
        return "rollback", msg
    # Modified or re-signed metadata: signatures must meet the threshold of trusted keys.
    if isinstance(exc, tuf_exc.UnsignedMetadataError):
        return "untrusted-signature", msg
    # Modified bytes (model or metadata): length and sha256 must match the signed values.
    if isinstance(exc, tuf_exc.LengthOrHashMismatchError):
        return "hash-mismatch", msg
    if isinstance(exc, tuf_exc.RepositoryError):
        return "invalid-metadata", msg
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "disk-full", msg
    if isinstance(exc, OSError):
        return "io-error", msg
    return "internal-error", msg


class Agent:
    """One device's view of one repository, kept in ``state_dir`` (see the module docstring).

    Safe to construct on every boot; all state lives on disk. Not safe to run two agents on one
    state directory at the same time (the firmware's service manager should ensure that)."""

    def __init__(self, state_dir: str, repo_url: str, trusted_root: str | None = None,
                 device_id: str = "", hardware: str = "cpu", channel: str = "stable",
                 model: str | None = None, fetcher=None):
        self.state_dir = os.path.abspath(state_dir)
        self.repo_url = normalize_repo_url(repo_url)
        self.device_id = device_id
        self.hardware = check_name("hardware", hardware)
        self.channel = check_name("channel", channel)
        self.model = check_name("model name", model) if model else None
        self.slots = SlotStore(self.state_dir)
        self._fetcher = fetcher if fetcher is not None else fetcher_for(self.repo_url)
        self._trusted_root_src = trusted_root
        os.makedirs(self.state_dir, exist_ok=True)

    # ------------------------------------------------------------------ paths & records

    def _path(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    def _trusted_root(self) -> bytes:
        """The firmware root, copied into the state dir on first use."""
        kept = self._path("trusted_root.json")
        if self._trusted_root_src:
            with open(self._trusted_root_src, "rb") as f:
                data = f.read()
            if not os.path.exists(kept):
                atomic_write(kept, data)
            return data
        try:
            with open(kept, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise Refusal("no-trusted-root", "no trusted root: pass the root.json shipped "
                          "with the firmware (--trusted-root)") from None

    def _read_json(self, name: str, default):
        try:
            with open(self._path(name)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return default

    def bad_versions(self) -> dict:
        return self._read_json("bad_versions.json", {})

    def _mark_bad(self, name: str, version: int, hardware: str, reason: str) -> None:
        bad = self.bad_versions()
        bad[f"{name}/{version}/{hardware}"] = {"reason": reason, "at": _now_iso()}
        try:
            atomic_write(self._path("bad_versions.json"), json.dumps(bad, indent=2).encode())
        except OSError as e:  # still refuse the build; it is simply re-tested next time
            log.error("cannot record bad version: %s", e)

    def active_model_path(self) -> str | None:
        slot = self.slots.active_slot()
        return self.slots.model_path(slot) if slot and self.slots.meta(slot) else None

    def status(self) -> dict:
        """Status JSON: the active model (from its slot), last check, last error."""
        st = self._read_json("status.json", {})
        slot = self.slots.active_slot()
        meta = self.slots.meta(slot)
        active = None
        if meta:
            active = {k: meta.get(k) for k in ("name", "version", "sha256", "hardware",
                                               "channel", "activated_at")} | {"slot": slot}
            # re-hash the file: status must not claim a model that is no longer intact
            active["verified"] = self.slots.verified(slot) is not None
        prev_slot = "b" if slot == "a" else "a"
        prev = self.slots.meta(prev_slot) if slot else None
        return {
            "device_id": st.get("device_id", self.device_id),
            "hardware": st.get("hardware", self.hardware),
            "channel": st.get("channel", self.channel),
            "active": active,
            "previous": ({"name": prev.get("name"), "version": prev.get("version"),
                          "slot": prev_slot} if prev else None),
            "last_check": st.get("last_check"),
            "last_successful_check": st.get("last_successful_check"),
            "last_result": st.get("last_result"),
            "last_error": st.get("last_error"),
            "bad_versions": sorted(self.bad_versions()),
        }

    def _record(self, result: PollResult) -> None:
        st = self._read_json("status.json", {})
        now = _now_iso()
        st.update(device_id=self.device_id, hardware=self.hardware, channel=self.channel,
                  last_check=now, last_result=result.as_dict())
        if result.ok:
            st["last_successful_check"] = now
            st["last_error"] = None
        else:
            st["last_error"] = {"reason": result.reason, "message": result.message, "at": now}
        try:
            atomic_write(self._path("status.json"), json.dumps(st, indent=2).encode())
        except OSError as e:  # a full disk must not turn a refusal into a crash
            log.error("cannot write status.json: %s", e)

    # ------------------------------------------------------------------ hooks

    def _checkpoint(self, point: str) -> None:
        """Named points ("download", "self-test", "install", "switch") where fault-injection
        tests kill or interrupt the agent. Does nothing in production."""

    # ------------------------------------------------------------------ polling

    def _updater(self) -> Updater:
        md_dir = self._path("tuf")
        os.makedirs(md_dir, exist_ok=True)
        return Updater(
            metadata_dir=md_dir,
            metadata_base_url=f"{self.repo_url}/metadata/",
            target_base_url=f"{self.repo_url}/targets/",
            target_dir=self._path("cache"),
            fetcher=self._fetcher,
            config=UpdaterConfig(**_CONFIG),
            bootstrap=self._trusted_root(),
        )

    def poll_once(self) -> PollResult:
        """One check for a new model. Never raises for repository, network or disk problems:
        the outcome is returned and written to status.json, and the active model is untouched
        unless a new one passed every check."""
        try:
            result = self._poll()
        except Exception as e:  # noqa: BLE001 - every failure keeps the current model
            reason, message = classify(e)
            log.warning("poll refused (%s): %s", reason, message)
            result = PollResult(False, "refused" if reason != "bucket-unreachable" else "error",
                                reason, message)
        self._record(result)
        return result

    def _poll(self) -> PollResult:
        self.slots.cleanup()  # finish off an interrupted download or switch
        updater = self._updater()
        updater.refresh()
        chosen = self._choose(updater)
        if isinstance(chosen, PollResult):
            return chosen
        targetinfo, custom = chosen
        self._install(updater, targetinfo, custom)
        return PollResult(True, "updated", None,
                          f"activated {custom['name']} v{custom['version']}", custom["version"])

    def _load_index(self, updater: Updater) -> dict | None:
        info = updater.get_targetinfo(index_path(self.channel))
        if info is None:
            return None
        if info.length > MAX_INDEX_BYTES:
            raise Refusal("length-exceeded", f"channel index is {info.length} bytes")
        cached = self._path("cache", f"index-{self.channel}.json")
        if updater.find_cached_target(info, cached) is None:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            updater.download_target(info, filepath=cached + ".partial")
            os.replace(cached + ".partial", cached)
        try:
            with open(cached) as f:
                index = json.load(f)
            models = index["models"]
            if not isinstance(models, dict):
                raise TypeError("models is not an object")
            for entries in models.values():
                for e in entries:
                    int(e["version"]), str(e["path"]), str(e["hardware"])
        except (ValueError, KeyError, TypeError) as e:
            raise Refusal("invalid-metadata", f"signed channel index is malformed: {e}") \
                from None
        return index

    def _choose(self, updater: Updater):
        index = self._load_index(updater)
        if index is None:
            return PollResult(True, "no-model", None, f"no models on channel {self.channel}")
        active = self.slots.verified(self.slots.active_slot())
        name = self.model or (active or {}).get("name")
        if name is None:
            names = sorted(n for n, es in index["models"].items()
                           if any(e.get("hardware") == self.hardware for e in es))
            if len(names) > 1:
                raise Refusal("ambiguous-model", f"channel {self.channel} has models "
                              f"{', '.join(names)}; choose one with --model")
            name = names[0] if names else None
        entries = [e for e in index["models"].get(name, []) if e.get("hardware") == self.hardware]
        # Versions only go up within (name, channel), and each hardware has its own builds, so
        # the active version says nothing about another channel's or hardware's numbering.
        same_model = bool(active) and (
            active.get("name"), active.get("channel"), active.get("hardware")) == (
            name, self.channel, self.hardware)
        bad = self.bad_versions()
        for entry in sorted(entries, key=lambda e: e.get("version", 0), reverse=True):
            version = int(entry["version"])
            # Rollback at the model level: never replace the active model with an older one.
            if same_model and version <= int(active["version"]):
                break
            if f"{name}/{version}/{self.hardware}" in bad:
                continue
            info = updater.get_targetinfo(str(entry["path"]))
            if info is None:
                raise Refusal("invalid-metadata", f"index names {entry['path']}, which no "
                              "signed targets metadata lists")
            custom = info.custom if isinstance(info.custom, dict) else {}
            self._check_custom(custom, name, version)
            if not rollout_covers(custom.get("rollout", 0), self.device_id, name, version):
                continue
            return info, custom
        if same_model:
            return PollResult(True, "up-to-date", None,
                              f"{active['name']} v{active['version']} is current",
                              active["version"])
        return PollResult(True, "no-model", None,
                          f"no {self.hardware} build on channel {self.channel} covers this device")

    def _check_custom(self, custom: dict, name: str, version: int) -> None:
        """The signed target metadata, not the index, decides. A build for other hardware would
        fail or silently misbehave; a build from another channel bypasses staged rollout."""
        if custom.get("hardware") != self.hardware:
            raise Refusal("wrong-hardware", f"{name} v{version} is signed for hardware "
                          f"{custom.get('hardware')!r}, this device is {self.hardware!r}")
        if custom.get("channel") != self.channel:
            raise Refusal("wrong-channel", f"{name} v{version} is signed for channel "
                          f"{custom.get('channel')!r}, this device follows {self.channel!r}")
        if custom.get("name") != name or custom.get("version") != version:
            raise Refusal("invalid-metadata", f"target metadata says {custom.get('name')} "
                          f"v{custom.get('version')}, index says {name} v{version}")
        if not isinstance(custom.get("self_test"), dict):
            raise Refusal("invalid-metadata", f"{name} v{version} carries no signed self-test")

    def _install(self, updater: Updater, info, custom: dict) -> None:
        name, version = custom["name"], custom["version"]
        slot = self.slots.inactive_slot()
        os.makedirs(self.slots.slot_dir(slot), exist_ok=True)
        staged = self.slots.partial_path(slot)
        self._checkpoint("download")
        # Verifies length (stops endless data) and sha256 (stops modified bytes) while
        # downloading, before anything is written to the slot.
        updater.download_target(info, filepath=staged)
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
            info.verify_length_and_hashes(f)  # and again on what actually reached the disk
        self._checkpoint("self-test")
        try:
            selftest.check(staged, custom["self_test"], self.hardware)
        except selftest.ModelLoadError as e:
            self._reject(name, version, "model-load-failed", str(e), staged)
        except selftest.SelfTestMismatch as e:
            self._reject(name, version, "self-test-failed", str(e), staged)
        meta = {k: custom.get(k) for k in ("name", "version", "hardware", "channel", "rollout",
                                           "pipeline_run", "input_quantization",
                                           "output_quantization")}
        meta.update(sha256=info.hashes["sha256"], length=info.length, path=info.path,
                    activated_at=_now_iso())
        self._checkpoint("install")
        self.slots.install(slot, staged, meta)
        self._checkpoint("switch")
        self.slots.activate(slot)
        log.info("activated %s v%s in slot %s", name, version, slot)

    def _reject(self, name: str, version: int, reason: str, message: str, staged: str):
        self._mark_bad(name, version, self.hardware, reason)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
        raise Refusal(reason, f"{name} v{version}: {message}")

    # ------------------------------------------------------------------ forever

    def run_forever(self, interval: float, jitter: float = 0.2, max_backoff: float = 3600.0,
                    stop: threading.Event | None = None, on_result=None) -> None:
        """Poll every ``interval`` seconds (+/- jitter, so a fleet does not stampede the bucket),
        backing off exponentially while polls fail. The active model keeps serving throughout."""
        stop = stop or threading.Event()
        failures = 0
        while not stop.is_set():
            result = self.poll_once()
            if on_result:
                on_result(result)
            failures = 0 if result.ok else failures + 1
            delay = next_delay(interval, failures, jitter, max_backoff)
            stop.wait(delay)


def next_delay(interval: float, failures: int, jitter: float = 0.2,
               max_backoff: float = 3600.0, rng=random.random) -> float:
    """Seconds until the next poll: ``interval`` doubled per consecutive failure, capped at
    ``max_backoff`` but never below ``interval``, so a failing device never polls more often
    than a healthy one."""
    cap = max(max_backoff, interval)
    base = interval if failures == 0 else min(cap, interval * (2 ** min(failures, 20)))
    return max(0.0, base * (1 + jitter * (2 * rng() - 1)))

