"""What the device's own TUF cache proves, read without a network.

``edgeship device status`` must say whether the active model is the one that was signed, on a
device that may have been offline for weeks. python-tuf's updater cannot answer offline (it
refreshes first, and refuses expired metadata), so :class:`SignedCache` walks the cached files
itself with python-tuf's Metadata API: the root chain from the firmware root, then timestamp,
snapshot, targets and the hashed bins, each verified by the keys of the role that delegates
it. Expiry is not checked: the question here is *what* was signed, not whether it is still
current (a poll answers that). Versions may lag the snapshot (a bin the device has not needed
since is kept at its older version) but never exceed it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, TypeVar, cast
from urllib import parse

from tuf.api.metadata import (  # documented names, re-exported without __all__
    Metadata,  # pyright: ignore[reportPrivateImportUsage]
    Root,  # pyright: ignore[reportPrivateImportUsage]
    Snapshot,  # pyright: ignore[reportPrivateImportUsage]
    SuccinctRoles,  # pyright: ignore[reportPrivateImportUsage]
    TargetFile,  # pyright: ignore[reportPrivateImportUsage]
    Targets,  # pyright: ignore[reportPrivateImportUsage]
    Timestamp,  # pyright: ignore[reportPrivateImportUsage]
)
from tuf.ngclient import Updater

from edgeship.device.checked import read_bytes, tuf_cache_cap
from edgeship.errors import OtaError

#: The kinds of metadata the walk loads (python-tuf's own ``T``, which it does not export).
_Role = TypeVar("_Role", Root, Timestamp, Snapshot, Targets)

#: How many newer roots the walk follows from the firmware root, as ngclient's default.
MAX_ROOT_ROTATIONS = 256
#: Cached files larger than this are not read (the agent's caps are smaller).
MAX_FILE_BYTES = 8 << 20


class Unverifiable(OtaError):
    """The cache cannot prove anything: a file missing, damaged, or not signed as it must be."""


class SignedCache:
    """The verified contents of a state folder's ``tuf/`` cache, anchored at ``root_file``."""

    def __init__(self, tuf_dir: str, root_file: str):
        self.dir = tuf_dir
        root = self._load(root_file, Root, "the trusted root")
        #: Cached roots the walk could not use, and why (python-tuf never trusted them).
        self.skipped: list[str] = []
        self.skipped_paths: list[str] = []
        first = root.signed.version + 1
        for version in range(first, first + MAX_ROOT_ROTATIONS):
            path = os.path.join(tuf_dir, "root_history", f"{version}.root.json")
            if not os.path.lexists(path):
                break
            try:  # as python-tuf does: the chain ends at the first root that does not verify
                newer = self._load(path, Root)
                self._verify(root, Root.type, newer, path)
                self._verify(newer, Root.type, newer, path)
                if newer.signed.version != version:
                    raise Unverifiable(f"{path} holds root version {newer.signed.version}")
            except Unverifiable as e:
                self.skipped.append(str(e))
                self.skipped_paths.append(path)
                break
            root = newer
        self.root = root
        timestamp = self._load(self._path(Timestamp.type), Timestamp)
        self._verify(root, Timestamp.type, timestamp, self._path(Timestamp.type))
        snapshot = self._load(self._path(Snapshot.type), Snapshot)
        self._verify(root, Snapshot.type, snapshot, self._path(Snapshot.type))
        self._not_newer(snapshot, timestamp.signed.snapshot_meta.version, Snapshot.type)
        targets = self._load(self._path(Targets.type), Targets)
        self._verify(root, Targets.type, targets, self._path(Targets.type))
        self.snapshot, self.targets = snapshot, targets
        self._not_newer(targets, self._listed_version(Targets.type), Targets.type)

    def target(self, path: str) -> TargetFile | None:
        """The signed record of target ``path``, from the bin that holds it; None when that
        bin does not list the path; :class:`Unverifiable` when the cache holds no such bin."""
        role = self._succinct().get_role_for_target(path)
        signed_bin = self._bin(role)
        if signed_bin is None:
            raise Unverifiable(f"the TUF cache holds no {role}, which would list {path}")
        return signed_bin.signed.targets.get(path)

    def cached_targets(self) -> Iterator[TargetFile]:
        """Every target listed in the bins this device holds (those it has needed)."""
        for role in self._succinct().get_roles():
            signed_bin = self._bin(role)
            if signed_bin is not None:
                yield from signed_bin.signed.targets.values()

    def _succinct(self) -> SuccinctRoles:
        delegations = self.targets.signed.delegations
        if delegations is None or delegations.succinct_roles is None:
            raise Unverifiable("cached targets metadata delegates to no hashed bins")
        return delegations.succinct_roles

    def _bin(self, role: str) -> Metadata[Targets] | None:
        bin_path = self._path(role)
        if not os.path.exists(bin_path):
            return None
        signed_bin = self._load(bin_path, Targets)
        self._verify(self.targets, role, signed_bin, bin_path)
        self._not_newer(signed_bin, self._listed_version(role), role)
        return signed_bin

    def _listed_version(self, role: str) -> int:
        meta = self.snapshot.signed.meta.get(f"{role}.json")
        if meta is None:
            raise Unverifiable(f"the cached snapshot does not list {role}")
        return meta.version

    def _path(self, role: str) -> str:
        return os.path.join(self.dir, f"{parse.quote(role, '')}.json")

    @staticmethod
    def _load(path: str, kind: type[_Role], what: str | None = None) -> Metadata[_Role]:
        try:
            data = read_bytes(path, MAX_FILE_BYTES)  # a regular file only: no link, no FIFO
            if data is None:
                raise Unverifiable(f"{what or path}: larger than {MAX_FILE_BYTES} bytes")
            md = cast("Metadata[Any]", Metadata.from_bytes(data))  # which kind: checked below
        except Unverifiable:
            raise
        except OSError as e:
            raise Unverifiable(f"{what or path}: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001 - python-tuf's many parse errors: one meaning
            raise Unverifiable(f"{what or path}: not valid TUF metadata ({e})") from None
        if not isinstance(md.signed, kind):
            raise Unverifiable(f"{what or path}: not {kind.type} metadata")
        return cast("Metadata[_Role]", md)  # its signed part was just found to be a kind

    @staticmethod
    def _verify(delegator: Metadata[Root] | Metadata[Targets], role: str, md: Metadata[Any],
                path: str) -> None:
        try:
            # python-tuf annotates delegated_metadata as a bare (unparameterized) Metadata
            delegator.verify_delegate(role, md)  # pyright: ignore[reportUnknownMemberType]
        except Exception as e:  # noqa: BLE001 - an unsigned file is unverifiable, whatever broke
            raise Unverifiable(f"{path}: not signed by the keys for {role} ({e})") from None

    @staticmethod
    def _not_newer(md: Metadata[Any], listed: int, role: str) -> None:
        if md.signed.version > listed:
            raise Unverifiable(f"cached {role} is version {md.signed.version}, newer than the "
                               f"{listed} its parent lists")


class CappedUpdater(Updater):
    """python-tuf's ``Updater``, reading its cached metadata (``tuf/<role>.json``) as the
    device reads every state file: a regular file only, opened without following a link or
    blocking, and no more than its role's download cap. What fails that is, for python-tuf,
    a cached file it cannot load: it fetches the role afresh, under the fetcher's deadlines.
    (The agent's repair pass at the start of each poll has already removed such a file, and
    a cached root of the wrong kind or size, which python-tuf reads in ``_load_root``; this
    holds for what appears between the two.)"""

    def _load_local_metadata(self, rolename: str) -> bytes:
        name = f"{parse.quote(rolename, '')}.json"
        path = os.path.join(self._dir, name)
        data = read_bytes(path, tuf_cache_cap(name))
        if data is None:
            raise OSError(f"{path} is larger than the {tuf_cache_cap(name)} bytes any "
                          f"{rolename} metadata may have")
        return data
