"""Mosquitto configuration and per-device credentials (``edgeship fleet broker-config`` and
``edgeship fleet add-device``).

The broker folder::

    mosquitto.conf     listener, no anonymous access, the files below, persistence
    acl                a device writes only its own report topic and reads nothing; the fleet
                       reader reads every device's report (its own topic is never read)
    passwords          Mosquitto's password file (PBKDF2-SHA512 hashes, never the passwords)
    fleet.password     the fleet reader's password (for fleet status, report, rollout watch)
    devices.json       the device registry: each device's hardware and channel (registry.py)
    devices/<id>.password   each device's password, to put on that device and delete here
    data/              retained reports, kept across broker restarts

A device's MQTT user name is its device id, and the ACL's ``pattern`` grants ``%u``'s topic
only, so a device with stolen credentials can lie about itself, never about another device.

Started as root, Mosquitto drops to the ``user`` its configuration names (``mosquitto`` when
none) *before* it reads the password file and the ACL, and writes ``data/`` as that user; so
when ``broker-config`` runs as root, those files are given to that user (still readable by it
alone), and rewriting them keeps their owner.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import pwd
import secrets
from dataclasses import dataclass
from pathlib import Path

from edgeship.contract import DEFAULT_TOPIC_PREFIX, check_name, devices_filter
from edgeship.edge_pusher.fleet.registry import (
    FLEET_READER,
    read_registry,
    register,
    registry_path,
)
from edgeship.errors import OtaError

#: The user Mosquitto becomes when started as root and its configuration names none.
MOSQUITTO_USER = "mosquitto"
#: Mosquitto's own PBKDF2 parameters (``mosquitto_passwd``); the passwords are random 32-byte
#: tokens, so the iteration count is not what protects them.
PBKDF2_ITERATIONS = 101
#: Messages Mosquitto queues for one client: the reader's subscription gets one retained report
#: per device at once, so this bounds the fleet one reader sees whole.
MAX_QUEUED_MESSAGES = 1_000_000
#: The largest MQTT packet the broker takes (the fleet reader also skips larger reports).
MAX_PACKET_BYTES = 64 * 1024 + 1024
SALT_BYTES = 12


def password_hash(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2 password-file hash (``$7$``: PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return (f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


@dataclass(frozen=True)
class Tls:
    """The broker's certificate, key and the CA that signed it (devices verify against it)."""

    cert: str
    key: str
    ca: str


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (a password, or the hashes of them); a file
    that exists keeps its owner (the broker's user, when broker-config ran as root)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if path.exists() and os.geteuid() == 0:
        st = path.stat()
        os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)


def broker_user(user: str | None) -> pwd.struct_passwd | None:
    """The account Mosquitto will run as when started as root by this user, or None when it
    keeps the starting user (not root, or ``user root``) or the account does not exist."""
    if os.geteuid() != 0:
        return None
    name = user or MOSQUITTO_USER
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        return None
    return None if account.pw_uid == 0 else account


def unreachable_by(folder: Path, account: pwd.struct_passwd) -> Path | None:
    """The first folder on the way to ``folder`` that ``account`` (not its owner) cannot
    enter, or None: Mosquitto, once it has dropped to that account, could not open its files
    there."""
    for parent in [*reversed(folder.parents), folder]:
        st = parent.stat()
        if st.st_uid == account.pw_uid:
            continue
        mode = st.st_mode & (0o010 if st.st_gid == account.pw_gid else 0o001)
        if not mode:
            return parent
    return None


def plaintext_exposed(listen: str, tls: Tls | None) -> bool:
    """Whether the listener sends passwords and reports unencrypted beyond this machine."""
    if tls:
        return False
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: whatever it resolves to, likely not loopback


def _users(passwords: Path) -> dict[str, str]:
    if not passwords.is_file():
        return {}
    users: dict[str, str] = {}
    for line in passwords.read_text().splitlines():
        name, sep, hashed = line.partition(":")
        if sep:
            users[name] = hashed
    return users


def add_users(folder: str | os.PathLike[str], users: list[str]) -> dict[str, str]:
    """Give each user a new random password in ``folder``'s password file; return them.
    Adding a user that exists replaces its password (how a device's credentials are rotated).
    The file is rewritten once, however many users are added."""
    passwords = Path(folder) / "passwords"
    existing = _users(passwords)
    made = {user: secrets.token_urlsafe(32) for user in users}
    existing.update({user: password_hash(password) for user, password in made.items()})
    _write_private(passwords, "".join(f"{name}:{hashed}\n" for name, hashed in existing.items()))
    return made


def add_devices(folder: str | os.PathLike[str], device_ids: list[str], hardware: str | None = None,
                channel: str | None = None, model: str | None = None) -> list[Path]:
    """Create (or rotate) devices' credentials; return the files holding their passwords, each
    of which goes onto its device (``device poll --mqtt-password-file``) and should then be
    deleted here. A running broker reads the password file again on SIGHUP. With
    ``hardware`` (and ``channel``), record the devices' identity in the registry the watcher
    reads (``devices.json``); everything is checked before anything is written."""
    device_ids = list(dict.fromkeys(device_ids))  # "d1 d1" is one device
    for device_id in device_ids:
        check_name("device id", device_id)
        if device_id == FLEET_READER:
            raise OtaError(f"device id {FLEET_READER!r} is the fleet reader's MQTT user; "
                           "choose another")
    if not (Path(folder) / "mosquitto.conf").is_file():
        raise OtaError(f"{folder}: no broker configuration; run 'edgeship fleet broker-config' "
                       "first")
    if hardware is not None:
        check_name("hardware", hardware)
        check_name("channel", channel or "")
        if model is not None:
            check_name("model name", model)
        if registry_path(folder).exists():
            read_registry(registry_path(folder))  # a damaged registry: say so, write nothing
    paths: list[Path] = []
    for device_id, password in add_users(folder, device_ids).items():
        path = Path(folder) / "devices" / f"{device_id}.password"
        _write_private(path, password + "\n")
        paths.append(path)
    if hardware is not None:
        register(folder, device_ids, hardware, channel or "", model)
    return paths


def add_device(folder: str | os.PathLike[str], device_id: str, hardware: str | None = None,
               channel: str | None = None) -> Path:
    """:func:`add_devices` for one device."""
    return add_devices(folder, [device_id], hardware, channel)[0]


def acl(prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    check_name("topic prefix", prefix)
    return (
        "# Written by edgeship fleet broker-config. Anything not granted here is refused.\n"
        f"# The fleet reader reads every device's report. (The device pattern below lets it\n"
        f"# write {prefix}/devices/{FLEET_READER}/state too: only the marker that ends a read.)\n"
        f"user {FLEET_READER}\n"
        f"topic read {devices_filter(prefix)}\n"
        "\n"
        "# A device (its user name is its device id) writes its own report and reads nothing.\n"
        f"pattern write {prefix}/devices/%u/state\n"
    )


def config(folder: Path, listen: str, tls: Tls | None, user: str | None = None) -> str:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise OtaError(f"--listen {listen!r}: give HOST:PORT, e.g. 0.0.0.0:1883")
    lines = [
        "# Written by edgeship fleet broker-config (docs/fleet.md).",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {folder / 'passwords'}",
        f"acl_file {folder / 'acl'}",
        "# retained reports (each device's twin) survive a restart",
        "persistence true",
        f"persistence_location {folder / 'data'}/",
        "autosave_interval 60",
        "# the fleet reader takes every device's retained report at once; Mosquitto's default",
        "# queue (1000 messages a client) would silently drop the rest of a larger fleet",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "# a report is about 500 bytes",
        f"max_packet_size {MAX_PACKET_BYTES}",
        f"listener {port} {host}",
        # A listener's setting, so after `listener`: before it, Mosquitto would open a second,
        # plaintext listener on 1883 for it (found in review).
        "# a client id is its user name: a device cannot take over another device's session",
        "use_username_as_clientid true",
    ]
    if user:  # started as root, Mosquitto becomes this user ("mosquitto" by default)
        lines.insert(1, f"user {user}")
    if tls:
        lines += [f"cafile {tls.ca}", f"certfile {tls.cert}", f"keyfile {tls.key}",
                  "tls_version tlsv1.2"]
    return "\n".join(lines) + "\n"


def broker_config(folder: str | os.PathLike[str], listen: str = "0.0.0.0:1883",
                  tls: Tls | None = None, prefix: str = DEFAULT_TOPIC_PREFIX,
                  user: str | None = None) -> Path:
    """Write the broker folder (see the module docstring); keep any users already in it. The
    fleet reader gets a password (``fleet.password``) the first time. Returns the config."""
    folder = Path(folder).absolute()
    if tls:  # absolute: Mosquitto started from another folder must still find them
        tls = Tls(*(os.path.abspath(p) for p in (tls.cert, tls.key, tls.ca)))
        for what in (tls.cert, tls.key, tls.ca):
            if not Path(what).is_file():
                raise OtaError(f"{what}: no such file (TLS needs the broker's certificate, "
                               "key and CA)")
    text = config(folder, listen, tls, user)  # checks --listen before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(text)
    (folder / "acl").write_text(acl(prefix))
    if FLEET_READER not in _users(folder / "passwords"):
        password = add_users(folder, [FLEET_READER])[FLEET_READER]
        _write_private(folder / "fleet.password", password + "\n")
    account = broker_user(user)
    if account is not None:  # root: Mosquitto reads these as the user it drops to
        for path in (folder / "passwords", folder / "acl", folder / "data"):
            os.chown(path, account.pw_uid, account.pw_gid)
    return conf
