"""The device agent: poll a signed repository, verify, self-test, switch A/B atomically.

Python API for firmware written in Python::

    from edgeship.device import Agent

    agent = Agent(state_dir, repo_url, trusted_root="/etc/edgeship/root.json",
                  device_id="cam-0042", hardware="cpu", channel="stable")
    result = agent.poll_once()          # never raises for network/repository problems
    path = agent.active_model_path()    # what the application should load

The rollout rules (which build, where to go from a revoked one, which slot a repaired
``active`` names) are pure functions in ``edgeship.device.decide``: this module gathers what
they decide on (python-tuf's updater, the slots, the state file) and carries out their
decisions. The state folder's layout is in ``edgeship.device.state``.

Imports only python-tuf, numpy and (when a model is tested) LiteRT, through the shared
contract and LiteRT modules: never TensorFlow, kfp, Beam, the TFX libraries or boto3
(import-linter checks it).
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
from typing import Any, NoReturn, Protocol, cast

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import TargetFile  # pyright: ignore[reportPrivateImportUsage]
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from edgeship.contract import (
    MAX_INDEX_BYTES,
    channel_index,
    check_name,
    index_entry,
    index_path,
    load_json,
    target_custom,
    target_path,
)
from edgeship.device import decide, selftest
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
from edgeship.device.slots import SLOTS, SlotMeta, atomic_write, file_identity, remove
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


class Reporter(Protocol):
    """Where a device's reports go (``edgeship.device.report.MqttReporter``)."""

    def publish(self, report: dict[str, Any]) -> None: ...


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

    def as_dict(self) -> dict[str, Any]:
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
                 model: str | None = None, fetcher: FetcherInterface | None = None,
                 limits: TransferLimits | None = None, reporter: Reporter | None = None):
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
    def identity(self) -> dict[str, Any]:
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

    def bad_versions(self) -> dict[str, Any]:
        return self.state.bad_versions()

    def active_model_path(self) -> str | None:
        slot = self.slots.active_slot()
        return self.slots.model_path(slot) if slot and self.slots.meta(slot) else None

    def status(self) -> dict[str, Any]:
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
        proven: set[str] = set()
        unknown: set[str] = set()
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
        held = {slot: decide.Held.from_meta(meta) for slot in proven
                if (meta := self.slots.meta(slot)) is not None}
        repair = decide.repair_pointer(pointer if isinstance(pointer, str) else None, SLOTS,
                                       held, unknown, self.state.bad_versions(),
                                       damaged=isinstance(pointer, Damaged))
        if repair.action == "activate" and repair.slot is not None:
            self.slots.activate(repair.slot)
            self._repairs.append(f"active: {_what(pointer)}; now slot {repair.slot}")
        elif repair.action == "remove":
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
        infos: dict[tuple[str, int], TargetFile] = {}

        def signed_builds() -> Iterator[tuple[str, int, decide.Signed]]:
            for name, version, info in builds():  # lazily: the index is read only if needed
                infos[name, version] = info
                yield name, version, decide.Signed(info.length, info.hashes.get("sha256"),
                                                   info.custom)

        match = decide.matching_build(found, signed_builds()) if found else None
        if match is None:
            return None
        name, version, _ = match
        info = infos[name, version]
        custom = self._check_custom(info.custom, name, version)
        self.slots.write_meta(slot, self._slot_meta(info, custom, activated_at=None))
        return f"{name} v{version}"

    def _load_index(self, updater: Updater) -> dict[str, list[dict[str, Any]]] | None:
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

    @property
    def _who(self) -> decide.Identity:
        return decide.Identity(self.device_id, self.hardware, self.channel, self.model)

    def _held(self, slot: str | None) -> decide.Held | None:
        meta = self.slots.verified(slot)
        return decide.Held.from_meta(meta) if meta is not None else None

    def _choose(self, updater: Updater) -> PollResult | tuple[TargetFile, dict[str, Any]]:
        """Gather what ``decide.choose`` decides on (the signed index, the records of the
        candidates it reads, the slots, the refused builds), and carry out its decision."""
        models = self._load_index(updater)
        who = self._who
        active = self._held(self.slots.active_slot())
        revoked = decide.revoked_active(models, active, who) if models is not None else None
        # the other slot matters (and its file is hashed) only to go back from a revoked build
        other = self._held(self.slots.inactive_slot()) if revoked is not None else None
        slots = decide.Slots(active, other)
        refused = set(self.state.bad_versions())
        records: dict[str, decide.Signed | None] = {}
        infos: dict[str, TargetFile] = {}
        plan = decide.plan(models, slots, refused, who) if models is not None else None
        name = plan.name if plan is not None else None
        for entry in plan.candidates if plan is not None else ():
            info = updater.get_targetinfo(entry.path)  # may fetch a bin: only those it reads
            records[entry.path] = _signed(info)
            if info is not None:
                infos[entry.path] = info
            assert name is not None  # candidates are a model's
            if decide.signed_verdict(entry, records[entry.path], name, who) is not False:
                break
        decision = decide.choose(models, records, slots, refused, who)
        log.debug("decision: %s by rule %s: %s", decision.action, decision.rule,
                  decision.message)
        if decision.revoked is not None:
            gone = decision.revoked
            # the revoked build is never taken again by this device, whatever happens next
            if decide.refused_key(gone.name, gone.version, self.hardware) not in refused:
                self.state.mark_bad(gone.name, gone.version, self.hardware, "revoked")
        return self._carry_out(decision, infos)

    def _carry_out(self, decision: decide.Decision,
                   infos: dict[str, TargetFile]) -> PollResult | tuple[TargetFile, dict[str, Any]]:
        """A decision as a poll's outcome: a refusal raised, a switch back to the other slot
        made, or the build to install (its signed record and custom metadata)."""
        if decision.action == "refuse":
            raise Refusal(decision.reason or "invalid-metadata", decision.message)
        if decision.action == "revert":
            self.slots.activate(self.slots.inactive_slot())
            log.warning("%s", decision.message)
            return PollResult(True, "reverted", decision.reason, decision.message,
                              decision.version)
        if decision.action == "install" and decision.build is not None:
            info = infos[decision.build.path]
            return info, cast("dict[str, Any]", info.custom)  # checked by decide.check_signed
        return PollResult(True, decision.action, decision.reason, decision.message,
                          decision.version)

    def _check_custom(self, custom: object, name: str, version: int) -> dict[str, Any]:
        """The signed target metadata, not the index, decides (``decide.check_signed``)."""
        refusal = decide.check_signed(custom, name, version, self._who)
        if refusal is not None:
            raise Refusal(refusal.reason or "invalid-metadata", refusal.message)
        return cast("dict[str, Any]", custom)  # target_custom found an object of that shape

    def _install(self, updater: Updater, info: TargetFile, custom: dict[str, Any]) -> None:
        name, version = str(custom["name"]), int(custom["version"])
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
    def _slot_meta(info: TargetFile, custom: dict[str, Any],
                   activated_at: str | None) -> SlotMeta:
        """A slot's meta.json: the signed identity and file of the build it holds
        (``custom`` has passed ``decide.check_signed``)."""
        return SlotMeta(name=custom["name"], version=custom["version"],
                        hardware=custom["hardware"], channel=custom["channel"],
                        rollout=custom.get("rollout"), pipeline_run=custom.get("pipeline_run"),
                        input_quantization=custom.get("input_quantization"),
                        output_quantization=custom.get("output_quantization"),
                        sha256=info.hashes["sha256"], length=info.length, path=info.path,
                        activated_at=activated_at)

    def _reject(self, name: str, version: int, reason: str, message: str,
                staged: str) -> NoReturn:
        self.state.mark_bad(name, version, self.hardware, reason)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
        raise Refusal(reason, f"{name} v{version}: {message}")

    # ------------------------------------------------------------------ forever

    def run_forever(self, interval: float, jitter: float = 0.2, max_backoff: float = 3600.0,
                    stop: threading.Event | None = None,
                    on_result: Callable[[PollResult], None] | None = None) -> None:
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


def _signed(info: TargetFile | None) -> decide.Signed | None:
    """A target's signed record as ``decide`` reads it."""
    if info is None:
        return None
    return decide.Signed(info.length, info.hashes.get("sha256"), info.custom)


def _what(pointer: str | Damaged | None) -> str:
    return "missing" if pointer is None else pointer.problem if isinstance(
        pointer, Damaged) else f"slot {pointer} holds no model"


def next_delay(interval: float, failures: int, jitter: float = 0.2,
               max_backoff: float = 3600.0,
               rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next poll: ``interval`` doubled per consecutive failure, capped at
    ``max_backoff`` but never below ``interval``, so a failing device never polls more often
    than a healthy one."""
    cap = max(max_backoff, interval)
    base = interval if failures == 0 else min(cap, interval * (2 ** min(failures, 20)))
    return max(0.0, base * (1 + jitter * (2 * rng() - 1)))

