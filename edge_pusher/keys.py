"""Repository keys: creation, loading through signer URIs, and rotation.

Layout of a keys directory::

    DIR/root.json                 current signed root (public; ship it with device firmware)
    DIR/root_history/N.root.json  every root version, so a bucket can be given the whole chain
    DIR/applied_roots.json        {bucket URL: newest root version a publish committed there}
    DIR/offline/root.pem          root private key: move it off the build machines after init
    DIR/offline/signers.json      {"root": ["file2:root.pem"]}
    DIR/online/{targets,snapshot,timestamp}.pem
    DIR/online/signers.json       {"targets": ["file2:targets.pem"], ...}

Root is kept apart from the online keys because a compromised online key can be rotated away by
root, but nothing can rescue a compromised root. ``signers.json`` holds securesystemslib signer
URIs: relative ``file2:`` paths resolve against that folder, and any other scheme (``awskms:``,
``gcpkms:``, ``hsm:``, ...) is handed to ``Signer.from_priv_key_uri`` unchanged, so a KMS or
HSM replaces a key file by editing one line. The delegated hashed bins are signed by the targets
key (one fewer key to guard; rotating targets re-signs the bins).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Both packages document these names as their public API, re-exported from private modules
# without __all__, which a checker reads as private: hence the targeted ignores.
from securesystemslib.signer import CryptoSigner, Key, Signer  # pyright: ignore[reportPrivateImportUsage]
from tuf.api.metadata import Metadata, Root  # pyright: ignore[reportPrivateImportUsage]

from edgeship.contract import is_array, is_object
from edgeship.errors import OtaError

ONLINE_ROLES = ("targets", "snapshot", "timestamp")
APPLIED_ROOTS = "applied_roots.json"
ALL_ROLES = ("root", *ONLINE_ROLES)
DEFAULT_ROOT_EXPIRY_DAYS = 365


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _role_dir(keys_dir: Path, role: str) -> Path:
    return keys_dir / ("offline" if role == "root" else "online")


def _read_table(path: Path) -> dict[str, object]:
    """A small JSON table of the keys folder (``signers.json``, ``applied_roots.json``): an
    object, or an :class:`OtaError` naming the file (FileNotFoundError passes through)."""
    try:
        table: object = json.loads(path.read_text())
    except ValueError as e:
        raise OtaError(f"{path} is damaged ({e}); restore it from a backup") from None
    if not is_object(table):
        raise OtaError(f"{path} is damaged (not a JSON object); restore it from a backup")
    return table


def _uris(table: dict[str, object], role: str, path: Path) -> list[str]:
    """A role's signer URIs in a signers table: one URI, or a list of them."""
    uris: object = table.get(role) or []
    if isinstance(uris, str):
        return [uris]
    found = [uri for uri in uris if isinstance(uri, str)] if is_array(uris) else []
    if not is_array(uris) or len(found) != len(uris):
        raise OtaError(f"{path}: the {role} signers are not a URI or a list of URIs")
    return found


def _write_signer_uris(keys_dir: Path, role: str, uris: list[str]) -> None:
    path = _role_dir(keys_dir, role) / "signers.json"
    table = _read_table(path) if path.exists() else {}
    table[role] = uris
    _write_public(path, json.dumps(table, indent=2, sort_keys=True).encode())


def _signer_uris(keys_dir: Path, role: str) -> list[str]:
    path = _role_dir(keys_dir, role) / "signers.json"
    return _uris(_read_table(path), role, path) if path.exists() else []


def _new_key(keys_dir: Path, role: str, filename: str) -> CryptoSigner:
    signer = CryptoSigner.generate_ed25519()
    _write_private(_role_dir(keys_dir, role) / filename, signer.private_bytes)
    return signer


def _save_root(keys_dir: Path, root_md: Metadata[Root]) -> None:
    data = root_md.to_bytes()
    _write_public(keys_dir / "root_history" / f"{root_md.signed.version}.root.json", data)
    _write_public(keys_dir / "root.json", data)


def init_keys(keys_dir: str | os.PathLike[str],
              root_expiry_days: int = DEFAULT_ROOT_EXPIRY_DAYS) -> Path:
    """Create Ed25519 keys for all four roles and the initial signed root (version 1)."""
    kd = Path(keys_dir)
    if (kd / "root.json").exists() or (kd / "offline").exists() or (kd / "online").exists():
        raise OtaError(f"{kd} already holds keys; refusing to overwrite them")
    root = Root(expires=_now() + timedelta(days=root_expiry_days), consistent_snapshot=True)
    signers: dict[str, CryptoSigner] = {}
    for role in ALL_ROLES:
        signer = _new_key(kd, role, f"{role}.pem")
        _write_signer_uris(kd, role, [f"file2:{role}.pem"])
        root.add_key(signer.public_key, role)
        signers[role] = signer
    md = Metadata(root)
    md.sign(signers["root"])
    _save_root(kd, md)
    return kd / "root.json"


def load_root(keys_dir: str | os.PathLike[str]) -> Metadata[Root]:
    path = Path(keys_dir) / "root.json"
    try:
        return Metadata[Root].from_bytes(path.read_bytes())
    except FileNotFoundError:
        raise OtaError(f"no root.json in {keys_dir}: run 'edgeship keys init {keys_dir}'") \
            from None
    except Exception as e:  # noqa: BLE001 - any parse failure is the same user problem
        raise OtaError(f"{path} is not valid root metadata: {e}") from None


def root_history(keys_dir: str | os.PathLike[str]) -> dict[int, bytes]:
    """All root versions kept in the keys directory, by version."""
    out: dict[int, bytes] = {}
    hist = Path(keys_dir) / "root_history"
    if hist.is_dir():
        for p in hist.glob("*.root.json"):
            out[int(p.name.split(".", 1)[0])] = p.read_bytes()
    return out


def applied_root(keys_dir: str | os.PathLike[str], bucket_url: str) -> int:
    """The root version a publish from this keys directory last committed to ``bucket_url``.

    Kept here rather than read from the bucket because whoever controls the bucket could
    otherwise serve an old root and make the publisher accept retired keys again."""
    path = Path(keys_dir) / APPLIED_ROOTS
    try:
        version = _read_table(path).get(bucket_url, 0)
    except FileNotFoundError:
        return 0
    try:
        if not isinstance(version, int | float | str):
            raise TypeError(f"version {version!r} is not an integer")
        return int(version)
    except (ValueError, TypeError) as e:
        raise OtaError(f"{path} is damaged ({e}); restore it from a backup") from None


def record_applied_root(keys_dir: str | os.PathLike[str], bucket_url: str, version: int) -> None:
    """Remember that ``bucket_url`` now holds metadata signed with root ``version``'s keys."""
    if applied_root(keys_dir, bucket_url) >= version:
        return
    path = Path(keys_dir) / APPLIED_ROOTS
    table = _read_table(path) if path.exists() else {}
    table[bucket_url] = version
    _write_public(path, json.dumps(table, indent=2, sort_keys=True).encode())


def _resolve_uri(base: Path, uri: str) -> str:
    if uri.startswith("file2:"):
        path = uri[len("file2:"):]
        if not os.path.isabs(path) and not os.environ.get(CryptoSigner.PREFIX_ENV_VAR):
            return "file2:" + str((base / path).resolve())
    return uri


def load_signers(keys_dir: str | os.PathLike[str], role: str,
                 root: Root | None = None) -> list[Signer]:
    """Signers for ``role`` whose public keys the current root lists for that role."""
    kd = Path(keys_dir)
    root = root or load_root(kd).signed
    table_path = _role_dir(kd, role) / "signers.json"
    try:
        table = _read_table(table_path)
    except FileNotFoundError:
        raise OtaError(f"no {table_path}: the {role} key is not available here") from None
    uris = _uris(table, role, table_path)
    role_keys = [root.keys[k] for k in root.roles[role].keyids]
    signers: list[Signer] = []
    for uri in uris:
        full = _resolve_uri(table_path.parent, uri)
        errors: list[str] = []
        for key in role_keys:
            try:
                signers.append(Signer.from_priv_key_uri(full, key))
                break
            except Exception as e:  # noqa: BLE001 - try the next public key
                errors.append(str(e))
        else:
            raise OtaError(f"{role} signer {uri} matches none of root's {role} keys "
                           f"({'; '.join(errors)[:200]})")
    if len(signers) < root.roles[role].threshold:
        raise OtaError(f"only {len(signers)} {role} signer(s) in {table_path}; "
                       f"root needs {root.roles[role].threshold}")
    return signers


def check_online_keys(keys_dir: str | os.PathLike[str]) -> str:
    """``keys_dir`` if it can sign every online role, else :class:`OtaError` naming what is
    missing. Pipelines call it before their first step, so a folder that cannot sign stops a
    run at once, not at push minutes later."""
    root = load_root(keys_dir).signed
    for role in ONLINE_ROLES:
        load_signers(keys_dir, role, root)
    return str(keys_dir)


def public_key_of(keys_dir: str | os.PathLike[str], role: str) -> Key:
    root = load_root(keys_dir).signed
    return root.keys[root.roles[role].keyids[0]]


def rotate(keys_dir: str | os.PathLike[str], role: str,
           root_expiry_days: int = DEFAULT_ROOT_EXPIRY_DAYS) -> Metadata[Root]:
    """Replace ``role``'s key with a fresh one through a new root version.

    The new root is signed by the old root signers (so devices holding the old root accept it)
    and, when root itself rotates, also by the new root key (so it meets the new threshold).
    Devices then walk the root chain version by version. The repository's metadata signed by the
    old key is re-signed on the next publish or ``repo refresh``.
    """
    if role not in ALL_ROLES:
        raise OtaError(f"unknown role {role!r}: choose one of {', '.join(ALL_ROLES)}")
    kd = Path(keys_dir)
    old_md = load_root(kd)
    old_signers = load_signers(kd, "root", old_md.signed)
    root = Metadata[Root].from_bytes(old_md.to_bytes()).signed
    for keyid in list(root.roles[role].keyids):
        root.revoke_key(keyid, role)
    version = root.version + 1
    filename = f"{role}-v{version}.pem"
    new_signer = _new_key(kd, role, filename)
    root.add_key(new_signer.public_key, role)
    root.version = version
    root.expires = _now() + timedelta(days=root_expiry_days)
    md = Metadata(root)
    for signer in old_signers:
        md.sign(signer, append=True)
    if role == "root":
        md.sign(new_signer, append=True)
    # The new root must verify against both the old root and itself before anyone sees it.
    old_md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    root.verify_delegate("root", md.signed_bytes, md.signatures)
    retired = _signer_uris(kd, role)
    _write_signer_uris(kd, role, [f"file2:{filename}"])
    _save_root(kd, md)
    for uri in retired:  # a rotated key is presumed compromised: do not leave it lying around
        if uri.startswith("file2:") and not os.path.isabs(uri[6:]) and uri[6:] != filename:
            (_role_dir(kd, role) / uri[6:]).unlink(missing_ok=True)
    return md
