"""The device agent: poll a signed repository, verify, self-test, switch A/B atomically.

Python API for firmware written in Python::

    from edgeship.device import Agent

    agent = Agent(state_dir, repo_url, trusted_root="/etc/edgeship/root.json",
                  device_id="cam-0042", hardware="cpu", channel="stable")
    result = agent.poll_once()          # never raises for network/repository problems
    path = agent.active_model_path()    # what the application should load

The state folder's layout is in ``edgeship.device.state``. Imports only python-tuf, numpy and
(when a model is tested) LiteRT, through the shared contract and LiteRT modules: never
TensorFlow, kfp, Beam, the TFX libraries or boto3 (import-linter checks it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import TargetFile  # pyright: ignore[reportPrivateImportUsage]
from tuf.ngclient import Updater, UpdaterConfig

from edgeship.contract import (
    MAX_INDEX_BYTES,
    IndexEntry,
    channel_index,
    check_name,
    index_entry,
    index_path,
    load_json,
    model_entries,
    rollout_covers,
    target_custom,
    target_path,
)
from edgeship.device import selftest
from edgeship.device.checked import (
    ROOT_MAX_BYTES,
    SNAPSHOT_MAX_BYTES,
    TARGETS_MAX_BYTES,
    TIMESTAMP_MAX_BYTES,
    Damaged,
    kind_of,
    read_bytes,
)
from edgeship.device.fetcher import (
    DeadlineFetcher,
    TransferLimits,
    UnsafeFile,
    fetcher_for,
    normalize_repo_url,
)
from edgeship.device.slots import SLOTS, atomic_write, file_identity, remove
from edgeship.device.state import TRUSTED_ROOT_FILE, StateDir, device_status, now_iso
from edgeship.device.trust import CappedUpdater, SignedCache, Unverifiable
from edgeship.errors import EdgeshipError, ModelCheckError, OtaError

log = logging.getLogger(__name__)

# Hard caps on what a device will download for metadata (endless-data attack on metadata).
# The same caps bound what is read back from the device's own cache (CappedUpdater).
_CONFIG = UpdaterConfig(timestamp_max_length=TIMESTAMP_MAX_BYTES,
                        snapshot_max_length=SNAPSHOT_MAX_BYTES,
                        targets_max_length=TARGETS_MAX_BYTES, root_max_length=ROOT_MAX_BYTES)
#: A slot's file larger than this is not hashed to find which signed build it is.
MAX_MODEL_BYTES = 1 << 30
#: Reasons that are faults of the way to the repository, not something the device refused.
FAULTS = frozenset({"bucket-unreachable", "not-found"})


class Refusal(EdgeshipError):
    """A poll outcome the device refuses; ``reason`` is a short stable code (``docs/ota.md``
    lists them all)."""

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


#: What python-tuf's errors that carry no message mean.
_SILENT = {
    "SerializationError": "cannot be re-encoded as canonical JSON to check its signatures "
                          "(a number where TUF allows only integers, e.g. NaN)",
    "DeserializationError": "not valid TUF metadata",
}


def classify(exc: BaseException, url: str | None = None) -> tuple[str, str]:
    """Map a failure to (reason, message). Each reason names the attack or fault it stops.
    ``url`` is the file the poll requested last, named in the message of python-tuf's
    refusals (which often name no file, or say nothing at all)."""
    detail = str(exc) or str(exc.__cause__ or exc.__context__ or "") or _SILENT.get(
        type(exc).__name__, "no detail")
    msg = f"{type(exc).__name__}: {detail}"
    if url and url not in msg and not isinstance(exc, Refusal | OSError):
        msg += f" (reading {url})"
    if isinstance(exc, Refusal):
        return exc.reason, str(exc)
    # A FIFO, device, socket or link out of a file:// bucket: it could block or never end.
    if isinstance(exc, UnsafeFile):
        return "unsafe-file", msg
    # Endless data: a file longer than its signed (or capped) length is cut off, never stored.
    if isinstance(exc, tuf_exc.DownloadLengthMismatchError):
        return "length-exceeded", msg
    # Slow retrieval: a file, or the whole poll, past its deadline or below the minimum rate.
    if isinstance(exc, tuf_exc.SlowRetrievalError):
        return "slow-retrieval", msg
    if isinstance(exc, tuf_exc.DownloadHTTPError) and exc.status_code in (403, 404, 410):
        return "not-found", msg
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
    """One device's view of one repository, kept in ``state_dir`` (``edgeship.device.state``).

    Safe to construct on every boot; all state lives on disk. Not safe to run two agents on one
    state directory at the same time (the firmware's service manager should ensure that).
    ``fetcher`` replaces how files are downloaded (any python-tuf ``FetcherInterface``, e.g. a
    :class:`~edgeship.device.fetcher.CountingFetcher` to meter a cellular link); whichever it
    is, ``limits`` bound how long its downloads may take (``TransferLimits``' defaults suit a
    slow cellular link)."""

    def __init__(self, state_dir: str, repo_url: str, trusted_root: str | None = None,
                 device_id: str = "", hardware: str = "cpu", channel: str = "stable",
                 model: str | None = None, fetcher=None, limits: TransferLimits | None = None,
                 reporter=None):
        self.state = StateDir(state_dir)
        self.state_dir = self.state.path
        self.slots = self.state.slots
        self.repo_url = normalize_repo_url(repo_url)
        # the id names the device's report topic and its rollout bucket: one path segment
        self.device_id = check_name("device id", device_id) if device_id else ""
        self.hardware = check_name("hardware", hardware)
        self.channel = check_name("channel", channel)
        self.model = check_name("model name", model) if model else None
        self.limits = limits or TransferLimits()
        self._fetcher = DeadlineFetcher(
            fetcher if fetcher is not None else fetcher_for(self.repo_url, self.limits),
            self.limits)
        self._trusted_root_src = trusted_root
        self._repairs: list[str] = []  # what the current poll repaired in the state folder
        #: Where reports go after each poll (an ``edgeship.device.report.MqttReporter``, or
        #: anything with ``publish(report)``); None: the device does not report.
        self.reporter = reporter
        os.makedirs(self.state_dir, exist_ok=True)

    @property
    def identity(self) -> dict:
        return {"device_id": self.device_id, "hardware": self.hardware, "channel": self.channel}

    def _trusted_root(self) -> bytes:
        """The firmware root, kept in the state folder (and rewritten whenever it differs from
        the firmware's, which is the authority) for polls and `device status` without it."""
        kept = self.state.file(TRUSTED_ROOT_FILE)
        if self._trusted_root_src:
            try:
                with open(self._trusted_root_src, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raise Refusal("no-trusted-root", f"{self._trusted_root_src}: no such file; "
                              "pass the root.json shipped with the firmware") from None
            with contextlib.suppress(OSError):  # the firmware's copy is the authority
                if read_bytes(kept) == data:
                    return data
            atomic_write(kept, data)
            return data
        try:
            kept_data = read_bytes(kept)
            if kept_data is None:
                raise OSError(f"{kept} is larger than any root")
            return kept_data
        except FileNotFoundError:
            raise Refusal("no-trusted-root", "no trusted root: pass the root.json shipped "
                          "with the firmware (--trusted-root)") from None

    def bad_versions(self) -> dict:
        return self.state.bad_versions()

    def active_model_path(self) -> str | None:
        slot = self.slots.active_slot()
        return self.slots.model_path(slot) if slot and self.slots.meta(slot) else None

    def status(self) -> dict:
        """Status JSON: the active model (from its slot), last check, last error."""
        return device_status(self.state_dir, self.identity)

    # ------------------------------------------------------------------ polling

    def _updater(self) -> Updater:
        md_dir = self.state.file("tuf")
        os.makedirs(md_dir, exist_ok=True)
        return CappedUpdater(
            metadata_dir=md_dir,
            metadata_base_url=f"{self.repo_url}/metadata/",
            target_base_url=f"{self.repo_url}/targets/",
            target_dir=self.state.file("cache"),
            fetcher=self._fetcher,
            config=_CONFIG,
            bootstrap=self._trusted_root(),
        )

    def poll_once(self) -> PollResult:
        """One check for a new model. Never raises for repository, network or disk problems:
        the outcome is returned and written to status.json, and the active model is untouched
        unless a new one passed every check."""
        self._repairs = []
        try:
            result = self._poll()
        except Exception as e:  # noqa: BLE001 - every failure keeps the current model
            reason, message = classify(e, self._fetcher.last_url)
            log.warning("poll refused (%s): %s", reason, message)
            if reason == "internal-error":  # a bug: its traceback for whoever debugs it
                log.debug("internal error during a poll", exc_info=True)
            result = PollResult(False, "error" if reason in FAULTS else "refused", reason,
                                message)
        for repair in self._repairs:
            log.warning("state repaired: %s", repair)
        self.state.record(self.identity, result.as_dict(), self._repairs)
        self.report()
        return result

    def report(self) -> None:
        """Send the device's report to ``reporter``; never raises (reporting must not fail a
        poll or the application that calls it)."""
        if self.reporter is None:
            return
        from edgeship.device.report import build_report

        try:
            self.reporter.publish(build_report(self.state_dir, self.identity))
        except Exception as e:  # noqa: BLE001 - a report is never worth a failed poll
            log.warning("report not sent: %s", e)

    def _poll(self) -> PollResult:
        self._repairs += [f"{d}: removed" for d in self.state.repair_layout()]
        self._repairs += self.state.repair_records()
        self.slots.cleanup()  # finish off an interrupted download or switch
        self._fetcher.start_poll()
        try:
            updater = self._updater()
            updater.refresh()
        except Exception:
            self._repair_offline()  # the repository is out of reach: what the cache proves
            raise
        self._drop_unusable_roots()
        self._repair_slots(updater.get_targetinfo, lambda: self._index_builds(updater))
        chosen = self._choose(updater)
        if isinstance(chosen, PollResult):
            return chosen
        targetinfo, custom = chosen
        self._install(updater, targetinfo, custom)
        return PollResult(True, "updated", None,
                          f"activated {custom['name']} v{custom['version']}", custom["version"])

    # ------------------------------------------------------------------ damaged state

    def _repair_slots(self, signed: Callable[[str], TargetFile | None],
                      builds: Callable[[], Iterable[tuple[str, int, TargetFile]]]) -> None:
        """Leave every slot holding a build whose file matches its signed length and sha256,
        or nothing, and ``active`` naming a slot that holds one: what is damaged is rebuilt
        from the signed metadata when the file is still a signed build, else removed (the
        next steps of the poll then install a verified build). Each repair is reported.

        ``signed(path)`` is a target's signed record, None when the signed metadata does not
        list it, :class:`Unverifiable` when it cannot tell (the TUF cache, offline, may not
        hold that bin: such a slot is kept but never made active); ``builds()`` the signed
        builds this device may run, as (name, version, record)."""
        proven, unknown = set(), set()
        for slot in SLOTS:
            problem, known = self._slot_problem(signed, slot)
            if problem is None:
                (proven if known else unknown).add(slot)
                continue
            rebuilt = self._rebuild_meta(builds, slot)
            if rebuilt is None:
                self.slots.empty(slot)
            else:
                proven.add(slot)
            self._repairs.append(f"{problem}; " + (
                f"meta.json rebuilt from the signed metadata of {rebuilt}" if rebuilt
                else "slot emptied"))
        unknown = {s for s in unknown if self.slots.meta(s)}  # empty slots are not "unknown"
        pointer = self.slots.read_pointer()
        if pointer in proven or pointer in unknown or (pointer is None and not proven):
            return
        if proven:  # only a slot proven against the signed metadata may become active
            best = max(proven, key=lambda s: self.slots.meta(s)["version"])  # type: ignore
            self.slots.activate(best)
            self._repairs.append(f"active: {_what(pointer)}; now slot {best}")
        else:
            remove(self.slots.pointer)
            self._repairs.append(f"active: {_what(pointer)}; removed (no slot holds a "
                                 "signed model)")

    def _drop_unusable_roots(self) -> None:
        """A cached root that does not verify (a power cut mid-write) was never trusted by
        python-tuf, which fetched what it needed; left in place it would keep `device
        status` from verifying anything offline."""
        try:
            cache = SignedCache(self.state.file("tuf"), self.state.file(TRUSTED_ROOT_FILE))
        except Unverifiable:
            return
        for path, why in zip(cache.skipped_paths, cache.skipped, strict=True):
            remove(path)
            self._repairs.append(f"{why}: removed")

    def _repair_offline(self) -> None:
        """Repair the slots from the TUF cache when no refresh was possible, so that a device
        offline keeps (or regains) a model it can prove; nothing when the cache proves
        nothing, since then a good slot cannot be told from a bad one."""
        try:
            cache = SignedCache(self.state.file("tuf"), self.state.file(TRUSTED_ROOT_FILE))
            self._repair_slots(cache.target, lambda: self._cached_builds(cache))
        except Exception as e:  # noqa: BLE001 - best effort; the poll's failure is reported
            log.info("no offline repair: %s", e if isinstance(e, Unverifiable) else repr(e))

    def _cached_builds(self, cache: SignedCache) -> Iterator[tuple[str, int, TargetFile]]:
        for info in cache.cached_targets():
            try:
                custom = target_custom(info.custom)
            except OtaError:
                continue
            if (custom.hardware, custom.channel) == (self.hardware, self.channel):
                yield custom.name, custom.version, info

    def _index_builds(self, updater: Updater) -> Iterator[tuple[str, int, TargetFile]]:
        for name, entries in (self._load_index(updater) or {}).items():
            for entry in entries:
                if entry.get("hardware") != self.hardware:
                    continue
                try:
                    checked = index_entry(name, entry)
                except OtaError:
                    continue
                info = updater.get_targetinfo(checked.path)
                if info is not None:
                    yield name, checked.version, info

    def _slot_problem(self, signed: Callable[[str], TargetFile | None],
                      slot: str) -> tuple[str | None, bool]:
        """(what is wrong with a slot, whether it is proven to hold a signed build): (None,
        True) for a signed build, (None, False) for an empty slot or one that cannot be
        checked now."""
        meta = self.slots.read_meta(slot)
        model = self.slots.model_path(slot)
        if isinstance(meta, Damaged):
            return str(meta), False
        if meta is None:
            empty = kind_of(model) is None
            return (None if empty else f"slots/{slot}: a model without meta.json"), False
        what = f"{meta['name']} v{meta['version']}"
        try:
            info = signed(target_path(meta["name"], meta["channel"], meta["version"],
                                      meta["hardware"]))
        except Unverifiable:
            return None, False
        if info is None:  # the publisher never removes a target: unlisted means never signed
            return f"slots/{slot}: {what} is not in the signed metadata", False
        identity = (info.length, info.hashes.get("sha256"))
        if file_identity(model, info.length) != identity:
            return f"slots/{slot}/model.tflite is not the signed {what}", False
        if (meta["length"], meta["sha256"]) != identity:
            return f"slots/{slot}/meta.json does not match the signed {what}", False
        return None, True

    def _rebuild_meta(self, builds: Callable[[], Iterable[tuple[str, int, TargetFile]]],
                      slot: str) -> str | None:
        """Find the slot's file among the signed builds (by length and sha256) and write its
        meta.json from their signed metadata; return the build found, or None."""
        found = file_identity(self.slots.model_path(slot), max_bytes=MAX_MODEL_BYTES)
        for name, version, info in builds() if found else ():
            if (info.length, info.hashes.get("sha256")) != found:
                continue
            custom = self._check_custom(info.custom, name, version)
            self.slots.write_meta(slot, self._slot_meta(info, custom, activated_at=None))
            return f"{name} v{version}"
        return None

    def _load_index(self, updater: Updater) -> dict | None:
        """The signed channel index's models (name -> entries), None if the channel has none."""
        info = updater.get_targetinfo(index_path(self.channel))
        if info is None:
            return None
        if info.length > MAX_INDEX_BYTES:
            raise Refusal("length-exceeded", f"channel index is {info.length} bytes")
        cached = self.state.file("cache", f"index-{self.channel}.json")
        if updater.find_cached_target(info, cached) is None:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            updater.download_target(info, filepath=cached + ".partial")
            os.replace(cached + ".partial", cached)
        try:
            with open(cached, "rb") as f:
                return channel_index(load_json(f.read()))
        except (ValueError, RecursionError, OtaError) as e:
            raise Refusal("invalid-metadata", f"signed channel index is malformed: {e}") \
                from None

    def _choose(self, updater: Updater):
        models = self._load_index(updater)
        if models is None:
            return PollResult(True, "no-model", None, f"no models on channel {self.channel}")
        kept_revoked = self._leave_revoked(models)
        active = self.slots.verified(self.slots.active_slot())
        name = self.model or (active or {}).get("name")
        if name is None:
            names = sorted(n for n, es in models.items()
                           if any(e.get("hardware") == self.hardware for e in es))
            if len(names) > 1:
                raise Refusal("ambiguous-model", f"channel {self.channel} has models "
                              f"{', '.join(names)}; choose one with --model")
            name = names[0] if names else None
        nothing = PollResult(True, "no-model", None,
                             f"no {self.hardware} build on channel {self.channel} covers this "
                             "device")
        if name is None:
            return nothing
        entries = self._entries(models.get(name, []), name)
        # Versions only go up within (name, channel), and each hardware has its own builds, so
        # the active version says nothing about another channel's or hardware's numbering.
        active_version = int(active["version"]) if active is not None else None
        same_model = active is not None and (
            active.get("name"), active.get("channel"), active.get("hardware")) == (
            name, self.channel, self.hardware)
        bad = self.state.bad_versions()
        for entry in entries:
            version = entry.version
            # Rollback at the model level: never replace the active model with an older one,
            # unless the signed index revoked the active one: then what the index offers this
            # device replaces it, as it would for a device without a model.
            if same_model and version <= (active_version or 0) and not kept_revoked:
                break
            # Halted and revoked builds reach no further device; the signed index, not the
            # build, carries the rollout, so an operator changes it without a new build.
            if entry.state != "active" or f"{name}/{version}/{self.hardware}" in bad:
                continue
            info = updater.get_targetinfo(entry.path)
            if info is None:
                raise Refusal("invalid-metadata", f"index names {entry.path}, which no "
                              "signed targets metadata lists")
            custom = self._check_custom(info.custom, name, version)
            if not rollout_covers(entry.rollout, self.device_id, name, version):
                continue
            if kept_revoked:
                return self._revert_in_place(info, custom, kept_revoked) or (info, custom)
            return info, custom
        if kept_revoked:
            return PollResult(True, "kept-revoked", "revoked-no-fallback",
                              f"{kept_revoked} is revoked, and the index offers no other build "
                              "to go back to: kept", active_version)
        if same_model:
            return PollResult(True, "up-to-date", None, f"{name} v{active_version} is current",
                              active_version)
        return nothing

    def _entries(self, entries: list[dict], name: str) -> list[IndexEntry]:
        """This model's builds for this hardware, newest first. Each entry is checked: a
        version beyond 2**63 - 1 would leave the model stuck forever, and a build listed twice
        (revoked and active) could be installed."""
        try:
            return model_entries(name, entries, self.hardware)
        except OtaError as e:
            raise Refusal("invalid-metadata", f"signed channel index: {name}: {e}") from None

    def _revoked(self, models: dict, name: str, version: int) -> bool:
        """The signed index revokes this build for this device's hardware."""
        for entry in models.get(name, []):
            with contextlib.suppress(OtaError):
                checked = index_entry(name, entry)
                if (checked.version, checked.hardware, checked.state) == (
                        version, self.hardware, "revoked"):
                    return True
        return False

    def _leave_revoked(self, models: dict) -> str | None:
        """If the signed index revoked the active build, record it in bad_versions.json (it is
        never taken again) and return it as "<name> v<version>"; None otherwise. The poll then
        takes what the index would give a device without a model (the newest active build of
        this model and hardware that covers it and that it has not refused), older ones
        included, from the other slot when that holds it and else by download (``_choose``)."""
        active = self.slots.verified(self.slots.active_slot())
        if not active or (active.get("channel"), active.get("hardware")) != (
                self.channel, self.hardware):
            return None
        name, version = active["name"], int(active["version"])
        if not self._revoked(models, name, version):
            return None
        if f"{name}/{version}/{self.hardware}" not in self.state.bad_versions():
            self.state.mark_bad(name, version, self.hardware, "revoked")
        return f"{name} v{version}"

    def _revert_in_place(self, info, custom: dict, revoked: str) -> PollResult | None:
        """When the build chosen to replace a revoked one is already in the other slot (the
        previous model), switch to it without downloading it again."""
        other = self.slots.inactive_slot()
        held = self.slots.verified(other)
        if not held or (held.get("name"), held.get("version"), held.get("hardware"),
                        held.get("channel"), held.get("length"), held.get("sha256")) != (
                custom["name"], custom["version"], self.hardware, self.channel, info.length,
                info.hashes.get("sha256")):
            return None
        self.slots.activate(other)
        log.warning("%s is revoked: back to %s v%s", revoked, held["name"], held["version"])
        return PollResult(True, "reverted", "revoked",
                          f"{revoked} is revoked; back to {held['name']} v{held['version']}",
                          int(held["version"]))

    def _check_custom(self, custom: object, name: str, version: int) -> dict:
        """The signed target metadata, not the index, decides. A build for other hardware would
        fail or silently misbehave; a build from another channel bypasses staged rollout."""
        try:
            checked = target_custom(custom)
        except OtaError as e:
            raise Refusal("invalid-metadata", f"{name} v{version}: {e}") from None
        if checked.hardware != self.hardware:
            raise Refusal("wrong-hardware", f"{name} v{version} is signed for hardware "
                          f"{checked.hardware!r}, this device is {self.hardware!r}")
        if checked.channel != self.channel:
            raise Refusal("wrong-channel", f"{name} v{version} is signed for channel "
                          f"{checked.channel!r}, this device follows {self.channel!r}")
        if (checked.name, checked.version) != (name, version):
            raise Refusal("invalid-metadata", f"target metadata says {checked.name} "
                          f"v{checked.version}, index says {name} v{version}")
        return custom  # type: ignore[return-value]

    def _install(self, updater: Updater, info, custom: dict) -> None:
        name, version = custom["name"], custom["version"]
        slot = self.slots.inactive_slot()
        os.makedirs(self.slots.slot_dir(slot), exist_ok=True)
        staged = self.slots.partial_path(slot)
        # Verifies length (stops endless data) and sha256 (stops modified bytes) while
        # downloading, before anything is written to the slot.
        updater.download_target(info, filepath=staged)
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
            info.verify_length_and_hashes(f)  # and again on what actually reached the disk
        try:
            selftest.check(staged, custom["self_test"], self.hardware)
        except ModelCheckError as e:
            self._reject(name, version, e.reason, str(e), staged)
        self.slots.install(slot, staged, self._slot_meta(info, custom, now_iso()))
        self.slots.activate(slot)
        log.info("activated %s v%s in slot %s", name, version, slot)

    @staticmethod
    def _slot_meta(info, custom: dict, activated_at: str | None) -> dict:
        """A slot's meta.json: the signed identity and file of the build it holds."""
        meta = {k: custom.get(k) for k in ("name", "version", "hardware", "channel", "rollout",
                                           "pipeline_run", "input_quantization",
                                           "output_quantization")}
        meta.update(sha256=info.hashes["sha256"], length=info.length, path=info.path,
                    activated_at=activated_at)
        return meta

    def _reject(self, name: str, version: int, reason: str, message: str, staged: str):
        self.state.mark_bad(name, version, self.hardware, reason)
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


def _what(pointer: str | Damaged | None) -> str:
    return "missing" if pointer is None else pointer.problem if isinstance(
        pointer, Damaged) else f"slot {pointer} holds no model"


def next_delay(interval: float, failures: int, jitter: float = 0.2,
               max_backoff: float = 3600.0, rng=random.random) -> float:
    """Seconds until the next poll: ``interval`` doubled per consecutive failure, capped at
    ``max_backoff`` but never below ``interval``, so a failing device never polls more often
    than a healthy one."""
    cap = max(max_backoff, interval)
    base = interval if failures == 0 else min(cap, interval * (2 ** min(failures, 20)))
    return max(0.0, base * (1 + jitter * (2 * rng() - 1)))

