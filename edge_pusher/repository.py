"""The signed OTA repository in a bucket (python-tuf Metadata API, consistent snapshots).

Bucket layout::

    metadata/N.root.json, metadata/root.json      the root chain (devices walk N+1, N+2, ...)
    metadata/timestamp.json                       the only mutable TUF file; written last
    metadata/N.snapshot.json, N.targets.json, N.bins-XX.json   write-once, version-named
    targets/<dir>/<sha256>.<file>                 write-once, content-named target files
    locks/publish.json                            the publish lock (not part of TUF)

Top-level targets delegates every path to 2**bits hashed bins (``SuccinctRoles``), so the
metadata a device downloads stays bounded as targets grow: a lookup touches one bin. Because
bins cannot be listed cheaply by a device, each channel has a signed *index* target
(``index/<channel>.json``) naming the candidate builds; the device then reads each candidate's
own signed target metadata, which is authoritative.

A publish runs under :class:`~edgeship.edge_pusher.lock.PublishLock` and writes, in order:
target files, changed bins and targets metadata, snapshot, and finally ``timestamp.json`` with
a conditional write on the ETag read at the start. Every versioned metadata file is created with
create-if-absent, so nothing published is ever overwritten; a reader that sees the old
timestamp sees the complete old repository, and one that sees the new timestamp sees the
complete new one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import cast

from securesystemslib.signer import Signer  # pyright: ignore[reportPrivateImportUsage]
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (  # documented names, re-exported without __all__
    Delegations,  # pyright: ignore[reportPrivateImportUsage]
    Metadata,  # pyright: ignore[reportPrivateImportUsage]
    MetaFile,  # pyright: ignore[reportPrivateImportUsage]
    Root,  # pyright: ignore[reportPrivateImportUsage]
    Snapshot,  # pyright: ignore[reportPrivateImportUsage]
    SuccinctRoles,  # pyright: ignore[reportPrivateImportUsage]
    TargetFile,  # pyright: ignore[reportPrivateImportUsage]
    Targets,  # pyright: ignore[reportPrivateImportUsage]
    Timestamp,  # pyright: ignore[reportPrivateImportUsage]
)

from edgeship.contract import (
    ENTRY_STATES,
    INDEX_SCHEMA_VERSION,
    MAX_INDEX_BYTES,
    ChannelIndex,
    IndexEntryDoc,
    canonical_safe,
    channel_index,
    check_name,
    check_rollout,
    check_version,
    index_path,
    load_json,
    model_entries,
    target_path,
    utc_stamp,
)
from edgeship.edge_pusher import keys as keyring
from edgeship.edge_pusher.buckets import Bucket
from edgeship.edge_pusher.lock import DEFAULT_LOCK_WAIT, PublishLock
from edgeship.errors import NotFound, OtaError, PreconditionFailed

log = logging.getLogger(__name__)

DEFAULT_TIMESTAMP_EXPIRY = timedelta(days=1)
DEFAULT_METADATA_EXPIRY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
DEFAULT_BIN_BITS = 6
BIN_PREFIX = "bins"


@dataclass
class Release:
    """One model build to publish. ``custom`` holds everything beyond the identifying fields:
    quantization parameters, metrics, the self-test, the pipeline run id."""

    data: bytes
    name: str
    version: int
    hardware: str = "cpu"
    channel: str = "stable"
    rollout: int = 100
    custom: dict[str, object] = field(default_factory=dict[str, object])

    def __post_init__(self) -> None:
        check_name("model name", self.name)
        check_name("hardware", self.hardware)
        check_name("channel", self.channel)
        # 0 means "the next version": resolved inside the publish transaction, under the lock
        self.version = 0 if self.version in (0, None) else check_version(self.version)
        self.rollout = check_rollout(self.rollout)
        if not self.data:
            raise OtaError(f"model {self.name} v{self.version} ({self.hardware}) is empty")

    @property
    def path(self) -> str:
        return target_path(self.name, self.channel, self.version, self.hardware)


#: Metadata of any of the roles the publisher signs.
AnyMetadata = Metadata[Root] | Metadata[Timestamp] | Metadata[Snapshot] | Metadata[Targets]


@dataclass
class PublishResult:
    paths: list[str]
    timestamp_version: int
    snapshot_version: int


@dataclass
class _State:
    root: Metadata[Root]
    bucket_root_version: int  # before this transaction; newer roots are uploaded at commit
    timestamp: Metadata[Timestamp]
    timestamp_etag: str | None
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]
    bins: dict[str, Metadata[Targets]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    published: list[str] = field(default_factory=list)
    created: bool = False  # the bucket held no repository: this transaction creates one


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def content_key(path: str, sha256: str) -> str:
    """Where a target's bytes live: consistent-snapshot naming, as ngclient requests them."""
    dirname, _, basename = path.rpartition("/")
    return f"targets/{dirname}/{sha256}.{basename}" if dirname else f"targets/{sha256}.{basename}"


class Repository:
    """Publisher-side view of the repository in ``bucket``, signing with keys from ``keys_dir``."""

    def __init__(self, bucket: Bucket, keys_dir: str,
                 timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
                 metadata_expiry: timedelta = DEFAULT_METADATA_EXPIRY,
                 bin_bits: int = DEFAULT_BIN_BITS,
                 lock_wait: float = DEFAULT_LOCK_WAIT, lock_lease: float = 300.0,
                 clock: Callable[[], datetime] = _utcnow):
        if bucket.read_only:
            raise OtaError(f"{bucket.url} is read-only; publish to its s3:// or file:// URL")
        if timestamp_expiry <= timedelta(0):
            raise OtaError("timestamp expiry must be positive")
        self.bucket = bucket
        self.keys_dir = keys_dir
        self.timestamp_expiry = timestamp_expiry
        self.metadata_expiry = metadata_expiry
        self.bin_bits = bin_bits
        self.lock_wait = lock_wait
        self.lock_lease = lock_lease
        self._clock = clock
        self._signers: dict[str, list[Signer]] = {}

    # ------------------------------------------------------------------ public API

    def publish(self, releases: list[Release], *, create: bool = True) -> PublishResult:
        """Sign and publish ``releases`` in one repository version (all or nothing).

        With ``create=False`` a bucket that holds no repository is refused, as
        :meth:`refresh` refuses it: ``edgeship publish`` asks for that, so a mistyped URL
        is an error rather than a new repository no device trusts. A pipeline's push step
        creates its repository on first use."""
        if not releases:
            raise OtaError("nothing to publish")
        paths = [r.path for r in releases]
        if len(set(paths)) != len(paths):
            raise OtaError("the same model/version/hardware/channel appears twice in one publish")

        def change(st: _State) -> None:
            if st.created and not create:
                raise OtaError(self._no_repository("publish there with --create"))
            by_channel: dict[str, list[Release]] = {}
            for rel in releases:
                by_channel.setdefault(rel.channel, []).append(rel)
            for channel, rels in by_channel.items():
                index = self._read_index(st, channel)
                for rel in rels:
                    if rel.version == 0:
                        known = [e["version"] for e in index["models"].get(rel.name, [])]
                        rel.version = _next_version(rel.name, channel, max(known, default=0))
                for rel in rels:
                    self._check_newer(index, rel)
                since = utc_stamp(self._clock())
                for rel in rels:
                    self._add_target(st, rel)
                    _index_add(index, rel, since)
                self._write_index(st, channel, index)

        return self._transaction(change)

    def refresh(self) -> PublishResult:
        """Re-sign timestamp (and anything expiring within 30 days) without publishing. A
        bucket that holds no repository is refused: a mistyped URL must not become a new,
        empty repository (see :meth:`create`)."""

        def change(st: _State) -> None:
            if st.created:
                raise OtaError(self._no_repository())
            horizon = self._clock() + RENEW_BEFORE
            if st.snapshot.signed.expires < horizon:
                st.dirty.add("snapshot")
            if st.targets.signed.expires < horizon:
                st.dirty.add("targets")
            for name in self._bin_names(st):
                if self._bin(st, name).signed.expires < horizon:
                    st.dirty.add(name)

        return self._transaction(change)

    def _no_repository(self, alternative: str = "") -> str:
        """The one line for a bucket that holds no repository (most often a mistyped URL)."""
        also = f", or {alternative}" if alternative else ""
        return (f"{self.bucket.url} holds no repository (no metadata/timestamp.json); check the "
                f"URL, or create one there with 'edgeship repo create'{also}")

    def create(self) -> PublishResult:
        """Create an empty repository (no models yet) in a bucket that holds none."""

        def change(st: _State) -> None:
            if not st.created:
                raise OtaError(f"{self.bucket.url} already holds a repository")

        return self._transaction(change)

    def change_rollout(self, name: str, version: int, channel: str = "stable",
                       hardware: str | None = None, *, percent: int | None = None,
                       state: str = "active") -> list[IndexEntryDoc]:
        """Widen, narrow, halt or revoke a published build in the signed channel index, so
        devices act on it at their next poll with no new build. Returns the changed entries.

        ``percent`` (set) resumes a halted build; ``state="halted"`` keeps the percentage and
        stops it reaching more devices; ``state="revoked"`` is final (a version revoked stays
        revoked: publish a new version instead). ``hardware`` limits the change to one build
        of the version. Because the index is a signed target, an attacker who replays an older
        index, or older metadata, is refused by every device (hash and version checks)."""
        check_name("model name", name)
        check_version(version)
        check_name("channel", channel)
        if hardware is not None:
            check_name("hardware", hardware)
        if percent is not None:
            check_rollout(percent)
        if state not in ENTRY_STATES:
            raise OtaError(f"unknown rollout state {state!r}")
        changed: list[IndexEntryDoc] = []

        def change(st: _State) -> None:
            index = self._read_index(st, channel)
            entries = [e for e in index["models"].get(name, []) if e["version"] == version
                       and hardware in (None, e["hardware"])]
            if not entries:
                listed = sorted({e["version"] for e in index["models"].get(name, [])})
                raise OtaError(
                    f"{name} v{version}{f' ({hardware})' if hardware else ''} is not in channel "
                    f"{channel}'s index (it lists "
                    f"{', '.join(f'v{v}' for v in listed) or 'no version of it'})")
            for entry in entries:
                if entry.get("state", "active") == "revoked" and state != "revoked":
                    raise OtaError(f"{name} v{version} ({entry['hardware']}) is revoked, and "
                                   "stays revoked: publish a new version instead")
                entry["state"] = state
                if percent is not None:
                    entry["rollout"] = percent
                entry["since"] = utc_stamp(self._clock())
            changed.extend(e.copy() for e in entries)
            self._write_index(st, channel, index)

        self._transaction(change)
        return changed

    def read_index(self, channel: str) -> ChannelIndex:
        st = self._load()
        return self._read_index(st, check_name("channel", channel))

    def target(self, path: str) -> TargetFile | None:
        st = self._load()
        return self._bin(st, self._bin_for(st, path)).signed.targets.get(path)

    # ------------------------------------------------------------------ transaction

    def _transaction(self, change: Callable[[_State], None]) -> PublishResult:
        self._signers = {}  # keys may have been rotated since the last transaction
        with PublishLock(self.bucket, lease_seconds=self.lock_lease, wait_seconds=self.lock_wait):
            st = self._load()
            change(st)
            return self._commit(st)

    def _signers_for(self, role: str, root: Root) -> list[Signer]:
        if role not in self._signers:
            self._signers[role] = keyring.load_signers(self.keys_dir, role, root)
        return self._signers[role]

    def _root_versions(self, root_md: Metadata[Root]) -> tuple[int, list[Root]]:
        """(root version the bucket has, older roots whose keys may still sign its metadata).

        Metadata signed only by a rotated-away key is accepted (and re-signed) solely in the
        first publish after the rotation. Later, a file signed by a retired key is an attack
        (a stolen old key), not a leftover, and the publisher refuses to build on it. Whether
        that window is still open is decided by the newer of the bucket's root and the version
        recorded in the keys directory after the last commit: the bucket alone could reopen it
        by serving an old root."""
        current = root_md.signed.version
        history = keyring.root_history(self.keys_dir)
        history.setdefault(current, root_md.to_bytes())
        try:
            have = Metadata[Root].from_bytes(self.bucket.get("metadata/root.json")).signed.version
        except NotFound:
            have = 0
        if have and 1 in history and self._first_root() not in (None, history[1]):
            raise OtaError(f"{self.keys_dir} belongs to another repository than "
                           f"{self.bucket.url} (their first roots differ); use the keys this "
                           "repository was created with")
        if have > current:
            raise OtaError(
                f"the bucket has root v{have} but {self.keys_dir} only v{current}:"
                " this keys directory is stale; fetch the current root and keys")
        for version in range(max(have, 1), current + 1):
            if version not in history:
                raise OtaError(f"root v{version} is missing from {self.keys_dir}/root_history")
        applied = max(have, keyring.applied_root(self.keys_dir, self.bucket.url))
        older = [Metadata[Root].from_bytes(history[v]).signed
                 for v in sorted(history, reverse=True) if applied <= v < current]
        return have, older

    def _first_root(self) -> bytes | None:
        try:
            return self.bucket.get("metadata/1.root.json")
        except NotFound:
            return None

    def _upload_roots(self, st: _State) -> None:
        """Give the bucket every root version it lacks, before the timestamp that needs them."""
        history = keyring.root_history(self.keys_dir)
        current = st.root.signed.version
        history.setdefault(current, st.root.to_bytes())
        for version in range(st.bucket_root_version + 1, current + 1):
            try:
                self.bucket.put_if_absent(f"metadata/{version}.root.json", history[version])
            except PreconditionFailed:
                pass
        if st.bucket_root_version < current:
            self.bucket.put("metadata/root.json", st.root.to_bytes())

    def _verify_top(self, st_root: Root, older: list[Root], role: str,
                    md: AnyMetadata) -> bool:
        """True if ``md`` is signed by the current key; False if only by a rotated-away key
        (so it must be re-signed); raises if signed by neither."""
        if _verifies(st_root, role, md):
            return True
        if any(_verifies(old, role, md) for old in older):
            return False
        raise OtaError(f"{role} metadata in {self.bucket.url} is not signed by any key the "
                       f"current root trusts for {role}; refusing to publish on top of it")

    def _load(self) -> _State:
        """Read and verify the repository's current state."""
        root_md = keyring.load_root(self.keys_dir)
        have, older = self._root_versions(root_md)
        root = root_md.signed
        try:
            ts_bytes, ts_etag = self.bucket.get_with_etag("metadata/timestamp.json")
        except NotFound:
            return self._empty_state(root_md, have)
        try:
            ts = Metadata[Timestamp].from_bytes(ts_bytes)
            stale: set[str] = set()
            if not self._verify_top(root, older, "timestamp", ts):
                stale.add("timestamp")
            sv = ts.signed.snapshot_meta.version
            snap = Metadata[Snapshot].from_bytes(self.bucket.get(f"metadata/{sv}.snapshot.json"))
            if not self._verify_top(root, older, "snapshot", snap):
                stale.add("snapshot")
            tv = snap.signed.meta["targets.json"].version
            targets = Metadata[Targets].from_bytes(
                self.bucket.get(f"metadata/{tv}.targets.json"))
            if (snap.signed.version, targets.signed.version) != (sv, tv):
                raise OtaError(f"metadata versions in {self.bucket.url} do not match their file "
                               "names; refusing to publish on top of a damaged repository")
            if not self._verify_top(root, older, "targets", targets):
                stale.add("targets")
        except OtaError:
            raise
        except Exception as e:  # noqa: BLE001 - any malformed state is the same problem
            raise OtaError(f"the repository in {self.bucket.url} is unreadable: {e}") from None
        st = _State(root_md, have, ts, ts_etag, snap, targets, dirty=stale)
        if "targets" in stale:  # targets key rotated: point the bins at the new key, re-sign all
            for name in self._bin_names(st):
                self._bin(st, name, trusted_roots=[root, *older])
            self._rekey_bins(st)
            st.dirty.update(st.bins)
        return st

    def _empty_state(self, root_md: Metadata[Root], have: int) -> _State:
        now = self._clock()
        targets = Targets(expires=now + self.metadata_expiry)
        st = _State(root_md, have, Metadata(Timestamp(expires=now)), None,
                    Metadata(Snapshot(expires=now)), Metadata(targets), created=True)
        targets.delegations = Delegations(keys={}, succinct_roles=SuccinctRoles(
            [], 1, self.bin_bits, BIN_PREFIX))
        self._rekey_bins(st)
        for name in self._bin_names(st):
            st.bins[name] = Metadata(Targets(expires=now + self.metadata_expiry))
            st.dirty.add(name)
        st.dirty.add("targets")
        # versions start at 1 after _commit's increment
        for md in (st.timestamp, st.snapshot, st.targets, *st.bins.values()):
            md.signed.version = 0
        return st

    def _rekey_bins(self, st: _State) -> None:
        root = st.root.signed
        keys = {k: root.keys[k] for k in root.roles["targets"].keyids}
        delegations, succinct = _succinct(st)
        delegations.keys = keys
        succinct.keyids = list(keys)
        succinct.threshold = root.roles["targets"].threshold
        st.dirty.add("targets")

    def _bin_names(self, st: _State) -> list[str]:
        return list(_succinct(st)[1].get_roles())

    def _bin_for(self, st: _State, path: str) -> str:
        return _succinct(st)[1].get_role_for_target(path)

    def _bin(self, st: _State, name: str, trusted_roots: list[Root] | None = None
             ) -> Metadata[Targets]:
        """Read and verify bin ``name``. With ``trusted_roots`` it must be signed by a targets
        key one of those roots names: a targets.json signed only by a retired key cannot vouch
        for the bin keys it delegates to."""
        if name not in st.bins:
            meta = st.snapshot.signed.meta.get(f"{name}.json")
            if meta is None:
                raise OtaError(f"snapshot does not list {name}; the repository is damaged")
            md = Metadata[Targets].from_bytes(
                self.bucket.get(f"metadata/{meta.version}.{name}.json"))
            if md.signed.version != meta.version:
                raise OtaError(f"{meta.version}.{name}.json holds version {md.signed.version}; "
                               "refusing to publish on top of a damaged repository")
            if trusted_roots:
                signed = any(_verifies(r, "targets", md) for r in trusted_roots)
            else:
                signed = _verifies(st.targets.signed, name, md)
            if not signed:
                raise OtaError(f"{name} metadata in {self.bucket.url} has no valid signature; "
                               "refusing to publish on top of it")
            st.bins[name] = md
        return st.bins[name]

    # ------------------------------------------------------------------ targets and index

    def _put_target(self, st: _State, path: str, data: bytes,
                    custom: dict[str, object]) -> TargetFile:
        tf = TargetFile.from_data(path, data, ["sha256"])
        tf.unrecognized_fields["custom"] = canonical_safe(custom)
        key = content_key(path, tf.hashes["sha256"])
        if not self.bucket.exists(key):
            self.bucket.put(key, data)
        name = self._bin_for(st, path)
        self._bin(st, name).signed.targets[path] = tf
        st.dirty.add(name)
        st.published.append(path)
        return tf

    def _add_target(self, st: _State, rel: Release) -> None:
        custom = dict(rel.custom)
        custom.update(name=rel.name, version=rel.version, hardware=rel.hardware,
                      channel=rel.channel, rollout=rel.rollout)
        self._put_target(st, rel.path, rel.data, custom)

    def _read_index(self, st: _State, channel: str) -> ChannelIndex:
        path = index_path(channel)
        tf = self._bin(st, self._bin_for(st, path)).signed.targets.get(path)
        if tf is None:
            return {"channel": channel, "models": {}}
        data = self.bucket.get(content_key(path, tf.hashes["sha256"]))
        tf.verify_length_and_hashes(data)
        try:
            index = load_json(data)
            _check_index(index)
        except (ValueError, RecursionError, OtaError) as e:
            raise OtaError(f"channel {channel}'s signed index in {self.bucket.url} is malformed "
                           f"({e}); refusing to publish on top of it") from None
        return cast(ChannelIndex, index)  # _check_index checked its shape

    def _write_index(self, st: _State, channel: str, index: ChannelIndex) -> None:
        index["schema_version"] = INDEX_SCHEMA_VERSION
        for name, entries in index["models"].items():
            for entry in entries:
                entry.setdefault("state", "active")
            index["models"][name] = _prune(entries)
        _check_index(index)  # never sign an index devices would refuse
        data = _canonical(index)
        if len(data) > MAX_INDEX_BYTES:  # devices would refuse it: length-exceeded
            raise OtaError(f"channel {channel}'s index would be {len(data)} bytes, over the "
                           f"{MAX_INDEX_BYTES} devices read; use another channel for new models")
        self._put_target(st, index_path(channel), data, {"kind": "index"})

    @staticmethod
    def _check_newer(index: ChannelIndex, rel: Release) -> None:
        entries = index["models"].get(rel.name, [])
        if not entries:
            return
        newest = max(e["version"] for e in entries)
        same = {e["hardware"] for e in entries if e["version"] == newest}
        if rel.version > newest or (rel.version == newest and rel.hardware not in same):
            return
        raise OtaError(
            f"{rel.name} v{rel.version} ({rel.hardware}) is not newer than v{newest} already "
            f"published on channel {rel.channel}; versions only go up")

    # ------------------------------------------------------------------ commit

    def _create_versioned(self, st: _State, role: str, md: AnyMetadata,
                          first: int) -> tuple[int, bytes]:
        """Sign ``md`` as the first free version >= ``first`` and create it (never overwrite).

        A version can already exist only as an orphan of a publisher that died before writing
        timestamp.json; nothing references it, so we step over it."""
        is_bin = role.startswith(BIN_PREFIX)
        signers = self._signers_for("targets" if is_bin else role, st.root.signed)
        delegator = st.targets.signed if is_bin else st.root.signed
        version = first
        for _ in range(1000):
            md.signed.version = version
            md.signatures.clear()
            for s in signers:
                md.sign(s, append=True)
            # never upload what a device would reject
            delegator.verify_delegate(role, md.signed_bytes, md.signatures)
            data = md.to_bytes()
            try:
                self.bucket.put_if_absent(f"metadata/{version}.{role}.json", data)
                return version, data
            except PreconditionFailed:
                version += 1
        raise OtaError(f"could not find a free version for {role} metadata")

    def _record_applied_root(self, version: int) -> None:
        """Close the rotation window for this bucket (see :meth:`_root_versions`)."""
        try:
            keyring.record_applied_root(self.keys_dir, self.bucket.url, version)
        except OSError as e:  # e.g. keys mounted read-only: the bucket's root.json decides
            log.warning("could not record root v%d for %s in %s: %s", version, self.bucket.url,
                        self.keys_dir, e.strerror)

    def _commit(self, st: _State) -> PublishResult:
        now = self._clock()
        snap = st.snapshot.signed
        for name in sorted(n for n in st.dirty if n.startswith(BIN_PREFIX)):
            md = st.bins[name]
            md.signed.expires = now + self.metadata_expiry
            version, data = self._create_versioned(st, name, md, md.signed.version + 1)
            snap.meta[f"{name}.json"] = MetaFile(version=version, length=len(data))
        if "targets" in st.dirty:
            st.targets.signed.expires = now + self.metadata_expiry
            version, data = self._create_versioned(st, "targets", st.targets,
                                                   st.targets.signed.version + 1)
            snap.meta["targets.json"] = MetaFile(version=version, length=len(data))
        self._upload_roots(st)  # devices fetch the root chain before the timestamp
        ts = st.timestamp.signed
        if st.dirty - {"timestamp"}:
            snap.expires = now + self.metadata_expiry
            snap_version, snap_data = self._create_versioned(st, "snapshot", st.snapshot,
                                                             snap.version + 1)
            ts.snapshot_meta = MetaFile(version=snap_version, length=len(snap_data))
        snap_version = ts.snapshot_meta.version
        ts.expires = now + self.timestamp_expiry
        ts.version += 1
        st.timestamp.signatures.clear()
        for s in self._signers_for("timestamp", st.root.signed):
            st.timestamp.sign(s, append=True)
        st.root.signed.verify_delegate("timestamp", st.timestamp.signed_bytes,
                                       st.timestamp.signatures)
        data = st.timestamp.to_bytes()
        try:
            if st.timestamp_etag is None:
                self.bucket.put_if_absent("metadata/timestamp.json", data)
            else:
                self.bucket.put_if_match("metadata/timestamp.json", data, st.timestamp_etag)
        except PreconditionFailed:
            raise OtaError(
                f"another publisher changed {self.bucket.url} while this one held an expired "
                "lock; nothing was published, try again") from None
        self._record_applied_root(st.root.signed.version)
        paths = [p for p in st.published if not p.startswith("index/")]
        log.info("published timestamp v%d (snapshot v%d) to %s", ts.version, snap_version,
                 self.bucket.url)
        return PublishResult(paths=paths, timestamp_version=ts.version,
                             snapshot_version=snap_version)


def _succinct(st: _State) -> tuple[Delegations, SuccinctRoles]:
    """Top-level targets' delegations, which are hashed bins in every repository edgeship
    writes; anything else is a repository it did not write."""
    delegations = st.targets.signed.delegations
    if delegations is None or delegations.succinct_roles is None:
        raise OtaError("targets metadata delegates to no hashed bins: not a repository "
                       "edgeship wrote; refusing to publish on top of it")
    return delegations, delegations.succinct_roles


def _verifies(delegator: Root | Targets, role: str, md: AnyMetadata) -> bool:
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
        return True
    except UnsignedMetadataError:
        return False


def _next_version(name: str, channel: str, newest: int) -> int:
    """The version after ``newest``: refused past 2**63 - 1, which no device would take."""
    try:
        return check_version(newest + 1)
    except OtaError:
        raise OtaError(f"{name} on channel {channel} is at v{newest}: no version can follow "
                       "it; publish under another name") from None


def _check_index(index: object) -> None:
    """Check a channel index as devices do (shape, entries, no build listed twice)."""
    for name, entries in channel_index(index).items():
        model_entries(check_name("model name", name), entries)


def _index_add(index: ChannelIndex, rel: Release, since: str) -> None:
    index["models"].setdefault(rel.name, []).append(
        {"version": rel.version, "hardware": rel.hardware, "rollout": rel.rollout,
         "path": rel.path, "state": "active", "since": since})


#: Active full (100%) rollouts kept per hardware: the newest, which every device can take,
#: and the one before it, which devices that have no model yet take if the newest is halted
#: or revoked.
KEPT_FULL_ROLLOUTS = 2


def _prune(entries: list[IndexEntryDoc]) -> list[IndexEntryDoc]:
    """Keep, per hardware, every entry down to and including the second newest active full
    (100%) rollout, and every revoked entry.

    Builds older than that can never be chosen again while the newer full rollouts stand, so the
    index stays as small as the live rollouts. A revocation is never dropped: it is what keeps
    devices from taking that build again."""
    keep: list[IndexEntryDoc] = []
    for hw in sorted({e["hardware"] for e in entries}):
        newest_first = sorted((e for e in entries if e["hardware"] == hw),
                              key=lambda e: e["version"], reverse=True)
        full = 0
        for e in newest_first:
            if full < KEPT_FULL_ROLLOUTS or e.get("state") == "revoked":
                keep.append(e)
            full += e["rollout"] >= 100 and e.get("state", "active") == "active"
    return sorted(keep, key=lambda e: (e["version"], e["hardware"]))

