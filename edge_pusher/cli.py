"""The publisher's command groups of ``edgeship``: keys, publish, repo.

:mod:`edgeship.cli` calls ``register_keys``, ``register_publish`` and ``register_repo`` once
each; each command's handler is ``cmd_<group>_<command>(args) -> int``. ``rollout`` and
``fleet`` live in :mod:`edgeship.edge_pusher.fleet.cli`, which uses this module's public
helpers (:func:`open_repository`, :func:`add_publisher_flags`, :func:`release_version`,
:func:`rollout_percent`) for the signed repository. User errors raise
:class:`~edgeship.errors.OtaError`, which the command line prints as one line (exit 1).
Handlers import the publisher's modules (and boto3, for ``s3://``) only when they run.
"""

from __future__ import annotations

import argparse
import math
import os
from datetime import timedelta
from typing import TYPE_CHECKING

from edgeship.argtypes import seconds
from edgeship.edge_pusher.lock import DEFAULT_LOCK_WAIT
from edgeship.errors import OtaError
from edgeship.subcommands import Subparsers

if TYPE_CHECKING:
    from edgeship.edge_pusher.repository import Repository

MAX_EXPIRY_HOURS = 10 * 365 * 24  # far beyond any sane expiry, far below datetime's year 9999
#: The help's word for the repository's DEFAULT_TIMESTAMP_EXPIRY (a test keeps them equal;
#: importing the repository here would slow every command, the device's too).
TIMESTAMP_EXPIRY_HELP = "timestamp lifetime (default 24)"


def expiry_hours(value: str) -> timedelta:
    """argparse type for expiries: a bad value is a usage error, not a traceback later."""
    try:
        hours = float(value)
    except ValueError:
        hours = math.nan
    if math.isnan(hours):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of hours")
    if hours <= 0:
        raise argparse.ArgumentTypeError("expiry must be positive")
    if hours > MAX_EXPIRY_HOURS:  # including inf, which timedelta cannot hold
        raise argparse.ArgumentTypeError(f"expiry must be at most {MAX_EXPIRY_HOURS} hours")
    return timedelta(hours=hours)


def release_version(value: str) -> int:
    """argparse type for a build's version: N, or ``auto`` (0: the next one)."""
    if value == "auto":
        return 0
    from edgeship.contract import check_version

    try:
        return check_version(value)
    except OtaError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def rollout_percent(value: str) -> int:
    """argparse type for a rollout share in percent, as the signed index holds it."""
    from edgeship.contract import check_rollout

    try:
        return check_rollout(value)
    except OtaError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def open_repository(args: argparse.Namespace) -> Repository:
    """The repository ``--bucket`` holds, signed with ``--keys``; ``--timestamp-expiry`` and
    ``--lock-wait`` when given, else the repository's own defaults (commands that take no such
    flags get those too)."""
    from edgeship.edge_pusher.buckets import open_bucket
    from edgeship.edge_pusher.repository import DEFAULT_TIMESTAMP_EXPIRY, Repository

    bucket: str = args.bucket
    keys: str = args.keys
    endpoint: str | None = getattr(args, "endpoint_url", None)
    expiry: timedelta | None = getattr(args, "timestamp_expiry", None)
    lock_wait: float | None = getattr(args, "lock_wait", None)
    return Repository(open_bucket(bucket, endpoint_url=endpoint), keys,
                      timestamp_expiry=DEFAULT_TIMESTAMP_EXPIRY if expiry is None else expiry,
                      lock_wait=DEFAULT_LOCK_WAIT if lock_wait is None else lock_wait)


def add_publisher_flags(p: argparse.ArgumentParser) -> None:
    """The flags of every command that signs: the bucket, the keys, and how to sign."""
    p.add_argument("--bucket", required=True, help="file://DIR, s3://bucket/prefix")
    p.add_argument("--keys", required=True, help="keys directory from 'keys init'")
    p.add_argument("--endpoint-url", help="S3 endpoint (default: AWS_ENDPOINT_URL[_S3])")
    _signing_flags(p)


def _signing_flags(p: argparse.ArgumentParser, *, helps: bool = True) -> None:
    p.add_argument("--timestamp-expiry", type=expiry_hours, metavar="HOURS" if helps else None,
                   help=TIMESTAMP_EXPIRY_HELP if helps else None)
    p.add_argument("--lock-wait", type=seconds, metavar="SECONDS" if helps else None,
                   help=f"how long to wait for another publisher (default {DEFAULT_LOCK_WAIT:g})"
                   if helps else None)


def cmd_keys_init(args: argparse.Namespace) -> int:
    from edgeship.edge_pusher import keys

    folder: str = args.dir
    root_expiry_days: int | None = args.root_expiry_days
    if root_expiry_days is None:
        root_expiry_days = keys.DEFAULT_ROOT_EXPIRY_DAYS
    root = keys.init_keys(folder, root_expiry_days=root_expiry_days)
    print(f"created keys in {folder}; ship {root} with device firmware and move "
          f"{os.path.join(folder, 'offline')} to offline storage")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from edgeship.edge_pusher import keys

    keys_dir: str = args.keys
    role: str = args.role
    root_expiry_days: int | None = args.root_expiry_days
    bucket: str | None = args.bucket
    if root_expiry_days is None:
        root_expiry_days = keys.DEFAULT_ROOT_EXPIRY_DAYS
    md = keys.rotate(keys_dir, role, root_expiry_days=root_expiry_days)
    print(f"rotated the {role} key: root is now v{md.signed.version}")
    if bucket:
        result = open_repository(args).refresh()
        print(f"re-signed {bucket}: timestamp v{result.timestamp_version}")
    else:
        print("run 'edgeship repo refresh' (or publish) to re-sign the repository with it")
    return 0


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise OtaError(f"cannot read {path}: {e.strerror}") from None


def cmd_publish(args: argparse.Namespace) -> int:
    from edgeship.contract import check_name, check_rollout
    from edgeship.edge_pusher import push
    from edgeship.edge_pusher.repository import Release
    from edgeship.errors import ModelLoadError
    from edgeship.quantization_report import read_report

    file: str = args.file
    name: str = args.name
    version: int = args.version
    hardware: str = args.hardware
    channel: str = args.channel
    rollout: int = args.rollout
    report_file: str | None = args.report
    cpu_reference: str | None = args.cpu_reference
    pipeline_run: str = args.pipeline_run
    create: bool = args.create
    # Every name first: a typo is one line, before the model is read or LiteRT loaded.
    check_name("model name", name)
    check_name("hardware", hardware)
    check_name("channel", channel)
    check_rollout(rollout)
    data = _read_file(file)
    report = read_report(report_file) if report_file else None
    reference = _read_file(cpu_reference) if cpu_reference else None
    try:
        custom = push.build_release_custom(data, hardware, report, reference, pipeline_run)
    except ModelLoadError as e:
        raise OtaError(f"{file}: {e} (for Edge TPU builds pass --cpu-reference)") from None
    release = Release(data, name, version, hardware, channel, rollout, custom)
    result = open_repository(args).publish([release], create=create)
    print(f"published {', '.join(result.paths)} (timestamp v{result.timestamp_version})")
    return 0


def cmd_repo_create(args: argparse.Namespace) -> int:
    bucket: str = args.bucket
    result = open_repository(args).create()
    print(f"created an empty repository in {bucket} (timestamp v{result.timestamp_version})")
    return 0


def cmd_repo_refresh(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    result = repo.refresh()
    print(f"timestamp v{result.timestamp_version} signed, expires in {repo.timestamp_expiry}")
    return 0


def register_keys(subparsers: Subparsers) -> None:
    """``edgeship keys init|rotate``."""
    keys = subparsers.add_parser("keys", help="create and rotate repository keys")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser("init", help="create root/targets/snapshot/timestamp keys and root v1")
    p.add_argument("dir")
    p.add_argument("--root-expiry-days", type=int)  # default: the keys module's
    p.set_defaults(func=cmd_keys_init)
    p = ks.add_parser("rotate", help="replace one role's key through a new root version")
    p.add_argument("role", choices=["root", "targets", "snapshot", "timestamp"])
    p.add_argument("--keys", required=True)
    p.add_argument("--bucket", help="also re-sign this repository now")
    p.add_argument("--endpoint-url")
    p.add_argument("--root-expiry-days", type=int)  # default: the keys module's
    _signing_flags(p, helps=False)
    p.set_defaults(func=cmd_keys_rotate)


def register_publish(subparsers: Subparsers) -> None:
    """``edgeship publish``."""
    p = subparsers.add_parser("publish", help="sign and publish one model file")
    p.add_argument("file")
    add_publisher_flags(p)
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True, type=release_version,
                   help="N, or 'auto' for next")
    p.add_argument("--hardware", default="cpu")
    p.add_argument("--channel", default="stable")
    p.add_argument("--rollout", type=rollout_percent, default=100, metavar="PCT")
    p.add_argument("--report", help="quantization_report.json for metrics and self-test")
    p.add_argument("--cpu-reference", help="int8 CPU model to compute an Edge TPU self-test")
    p.add_argument("--pipeline-run", default="", help="id of the run that made the model")
    p.add_argument("--create", action="store_true",
                   help="create the repository if the bucket holds none (else that is an error)")
    p.set_defaults(func=cmd_publish)


def register_repo(subparsers: Subparsers) -> None:
    """``edgeship repo refresh|create``."""
    repo = subparsers.add_parser("repo", help="maintain an OTA repository")
    rs = repo.add_subparsers(dest="repo_command", required=True)
    p = rs.add_parser("refresh", help="re-sign timestamp (and anything near expiry)")
    add_publisher_flags(p)
    p.set_defaults(func=cmd_repo_refresh)
    p = rs.add_parser("create", help="create an empty repository (or: publish --create)")
    add_publisher_flags(p)
    p.set_defaults(func=cmd_repo_create)
