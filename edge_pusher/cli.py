"""The publisher's subcommands of ``edgeship``: keys, publish, repo, rollout.

``register(subparsers)`` adds them to the one command line (``edgeship.cli``); each sets
``func=handler`` with ``handler(args) -> int``. User errors raise
:class:`~edgeship.errors.OtaError`, which the command line prints as one line (exit 1).
Handlers import the publisher's modules (and boto3, for ``s3://``) only when they run.
"""

from __future__ import annotations

import argparse
import math
import os
from datetime import timedelta

from edgeship.argtypes import seconds
from edgeship.errors import OtaError

MAX_EXPIRY_HOURS = 10 * 365 * 24  # far beyond any sane expiry, far below datetime's year 9999


def _hours(value: str) -> timedelta:
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


def _version(value: str) -> int:
    if value == "auto":
        return 0
    from edgeship.contract import check_version

    try:
        return check_version(value)
    except OtaError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _repository(args):
    from edgeship.edge_pusher.buckets import open_bucket
    from edgeship.edge_pusher.repository import Repository

    return Repository(open_bucket(args.bucket, endpoint_url=getattr(args, "endpoint_url", None)),
                      args.keys, timestamp_expiry=args.timestamp_expiry,
                      lock_wait=args.lock_wait)


def _cmd_keys_init(args) -> int:
    from edgeship.edge_pusher import keys

    root = keys.init_keys(args.dir, root_expiry_days=args.root_expiry_days)
    print(f"created keys in {args.dir}; ship {root} with device firmware and move "
          f"{os.path.join(args.dir, 'offline')} to offline storage")
    return 0


def _cmd_keys_rotate(args) -> int:
    from edgeship.edge_pusher import keys

    md = keys.rotate(args.keys, args.role, root_expiry_days=args.root_expiry_days)
    print(f"rotated the {args.role} key: root is now v{md.signed.version}")
    if args.bucket:
        result = _repository(args).refresh()
        print(f"re-signed {args.bucket}: timestamp v{result.timestamp_version}")
    else:
        print("run 'edgeship repo refresh' (or publish) to re-sign the repository with it")
    return 0


def _cmd_publish(args) -> int:
    from edgeship.components.quantize.report import read_report
    from edgeship.contract import check_name, check_rollout
    from edgeship.edge_pusher import push
    from edgeship.edge_pusher.repository import Release
    from edgeship.errors import ModelLoadError

    # Every name first: a typo is one line, before the model is read or LiteRT loaded.
    check_name("model name", args.name)
    check_name("hardware", args.hardware)
    check_name("channel", args.channel)
    check_rollout(args.rollout)
    try:
        with open(args.file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OtaError(f"cannot read {args.file}: {e.strerror}") from None
    report = read_report(args.report) if args.report else None
    reference = None
    if args.cpu_reference:
        try:
            with open(args.cpu_reference, "rb") as f:
                reference = f.read()
        except OSError as e:
            raise OtaError(f"cannot read {args.cpu_reference}: {e.strerror}") from None
    try:
        custom = push.build_release_custom(data, args.hardware, report, reference,
                                           args.pipeline_run)
    except ModelLoadError as e:
        raise OtaError(f"{args.file}: {e} (for Edge TPU builds pass --cpu-reference)") from None
    release = Release(data, args.name, args.version, args.hardware, args.channel,
                      args.rollout, custom)
    result = _repository(args).publish([release], create=args.create)
    print(f"published {', '.join(result.paths)} (timestamp v{result.timestamp_version})")
    return 0


def _cmd_repo_create(args) -> int:
    result = _repository(args).create()
    print(f"created an empty repository in {args.bucket} (timestamp v{result.timestamp_version})")
    return 0


def _cmd_repo_refresh(args) -> int:
    result = _repository(args).refresh()
    print(f"timestamp v{result.timestamp_version} signed, expires in {args.timestamp_expiry}")
    return 0


def _cmd_rollout_change(args) -> int:
    """``rollout set|halt|revoke``: one signed change to the channel index."""
    state = {"set": "active", "halt": "halted", "revoke": "revoked"}[args.rollout_command]
    percent = getattr(args, "percent", None)
    changed = _repository(args).change_rollout(args.name, args.version, args.channel,
                                               args.hardware, percent=percent, state=state)
    for entry in changed:
        print(f"{args.name} v{entry['version']} ({entry['hardware']}) on {args.channel}: "
              f"{entry['state']} at {entry['rollout']}%")
    return 0


def _percent(value: str) -> int:
    from edgeship.contract import check_rollout

    try:
        return check_rollout(value)
    except OtaError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _publisher_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bucket", required=True, help="file://DIR, s3://bucket/prefix")
    p.add_argument("--keys", required=True, help="keys directory from 'keys init'")
    p.add_argument("--endpoint-url", help="S3 endpoint (default: AWS_ENDPOINT_URL[_S3])")
    p.add_argument("--timestamp-expiry", type=_hours, default=timedelta(days=1),
                   metavar="HOURS", help="timestamp lifetime (default 24)")
    p.add_argument("--lock-wait", type=seconds, default=60.0, metavar="SECONDS",
                   help="how long to wait for another publisher (default 60)")


def register(subparsers) -> None:
    """Add keys, publish, repo, rollout and fleet subcommands to an argparse subparsers
    object."""
    keys = subparsers.add_parser("keys", help="create and rotate repository keys")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser("init", help="create root/targets/snapshot/timestamp keys and root v1")
    p.add_argument("dir")
    p.add_argument("--root-expiry-days", type=int, default=365)
    p.set_defaults(func=_cmd_keys_init)
    p = ks.add_parser("rotate", help="replace one role's key through a new root version")
    p.add_argument("role", choices=["root", "targets", "snapshot", "timestamp"])
    p.add_argument("--keys", required=True)
    p.add_argument("--bucket", help="also re-sign this repository now")
    p.add_argument("--endpoint-url")
    p.add_argument("--root-expiry-days", type=int, default=365)
    p.add_argument("--timestamp-expiry", type=_hours, default=timedelta(days=1))
    p.add_argument("--lock-wait", type=seconds, default=60.0)
    p.set_defaults(func=_cmd_keys_rotate)

    p = subparsers.add_parser("publish", help="sign and publish one model file")
    p.add_argument("file")
    _publisher_flags(p)
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True, type=_version, help="N, or 'auto' for next")
    p.add_argument("--hardware", default="cpu")
    p.add_argument("--channel", default="stable")
    p.add_argument("--rollout", type=_percent, default=100, metavar="PCT")
    p.add_argument("--report", help="quantization_report.json for metrics and self-test")
    p.add_argument("--cpu-reference", help="int8 CPU model to compute an Edge TPU self-test")
    p.add_argument("--pipeline-run", default="", help="id of the run that made the model")
    p.add_argument("--create", action="store_true",
                   help="create the repository if the bucket holds none (else that is an error)")
    p.set_defaults(func=_cmd_publish)

    repo = subparsers.add_parser("repo", help="maintain an OTA repository")
    rs = repo.add_subparsers(dest="repo_command", required=True)
    p = rs.add_parser("refresh", help="re-sign timestamp (and anything near expiry)")
    _publisher_flags(p)
    p.set_defaults(func=_cmd_repo_refresh)
    p = rs.add_parser("create", help="create an empty repository (or: publish --create)")
    _publisher_flags(p)
    p.set_defaults(func=_cmd_repo_create)

    rollout = subparsers.add_parser(
        "rollout", help="widen, narrow, halt or revoke a published build (signed index)")
    ro = rollout.add_subparsers(dest="rollout_command", required=True)
    for command, text in (("set", "set the share of devices a build reaches (resumes a halt)"),
                          ("halt", "stop a build reaching more devices; those on it stay"),
                          ("revoke", "send devices on a build back to their previous one")):
        p = ro.add_parser(command, help=text)
        p.add_argument("name")
        p.add_argument("version", type=_version)
        _publisher_flags(p)
        p.add_argument("--channel", default="stable")
        p.add_argument("--hardware", help="only this hardware's build (default: every one)")
        if command == "set":
            p.add_argument("--percent", type=_percent, required=True, metavar="P")
        p.set_defaults(func=_cmd_rollout_change)

    from edgeship.edge_pusher.fleet.cli import register as register_fleet

    register_fleet(subparsers, ro)
