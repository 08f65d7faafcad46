"""The OTA subcommands of ``edgeship``: keys, publish, repo, device.

``register(subparsers)`` adds them to the top-level parser (``pipelines/cli.py``); each sets
``func=handler`` with ``handler(args) -> int``. User errors raise
:class:`~edge_pusher.errors.OtaError`, which the top-level CLI prints as one line (exit 1).
``main(argv)`` runs the same commands standalone (``python -m edge_pusher ...``), which is also
how tests and devices without the pipelines extra call them.

Device subcommands import only the device modules, so they run on a base install.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from datetime import timedelta

from edge_pusher.errors import OtaError

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
    from edge_pusher.naming import check_version

    try:
        return check_version(value)
    except OtaError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _repository(args):
    from edge_pusher.buckets import open_bucket
    from edge_pusher.repository import Repository

    return Repository(open_bucket(args.bucket, endpoint_url=getattr(args, "endpoint_url", None)),
                      args.keys, timestamp_expiry=args.timestamp_expiry,
                      lock_wait=args.lock_wait)


def _cmd_keys_init(args) -> int:
    from edge_pusher import keys

    root = keys.init_keys(args.dir, root_expiry_days=args.root_expiry_days)
    print(f"created keys in {args.dir}; ship {root} with device firmware and move "
          f"{os.path.join(args.dir, 'offline')} to offline storage")
    return 0


def _cmd_keys_rotate(args) -> int:
    from edge_pusher import keys

    md = keys.rotate(args.keys, args.role, root_expiry_days=args.root_expiry_days)
    print(f"rotated the {args.role} key: root is now v{md.signed.version}")
    if args.bucket:
        result = _repository(args).refresh()
        print(f"re-signed {args.bucket}: timestamp v{result.timestamp_version}")
    else:
        print("run 'edgeship repo refresh' (or publish) to re-sign the repository with it")
    return 0


def _cmd_publish(args) -> int:
    from edge_pusher import push, selftest
    from edge_pusher.repository import Release

    try:
        with open(args.file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OtaError(f"cannot read {args.file}: {e.strerror}") from None
    if args.report and not os.path.isfile(args.report):
        raise OtaError(f"report {args.report} does not exist")
    report = push.read_report_file(args.report) if args.report else {}
    variant = "int8_edgetpu" if args.hardware == "edgetpu" else "int8"
    try:
        custom = push.build_release_custom(args.file, args.hardware, report, variant,
                                           args.cpu_reference, args.pipeline_run)
    except selftest.ModelLoadError as e:
        raise OtaError(f"{args.file}: {e} (for Edge TPU builds pass --cpu-reference)") from None
    release = Release(data, args.name, args.version, args.hardware, args.channel,
                      args.rollout, custom)
    result = _repository(args).publish([release])
    print(f"published {', '.join(result.paths)} (timestamp v{result.timestamp_version})")
    return 0


def _cmd_repo_refresh(args) -> int:
    result = _repository(args).refresh()
    print(f"timestamp v{result.timestamp_version} signed, expires in {args.timestamp_expiry}")
    return 0


def _agent(args):
    from edge_pusher.device import Agent

    return Agent(args.state_dir, args.repo, trusted_root=args.trusted_root,
                 device_id=args.device_id, hardware=args.hardware, channel=args.channel,
                 model=args.model)


def _cmd_device_poll(args) -> int:
    agent = _agent(args)
    if args.interval is None:
        result = agent.poll_once()
        print(json.dumps(result.as_dict()))
        return 0 if result.ok else 1

    def report(result):
        print(json.dumps(result.as_dict()), flush=True)

    try:
        agent.run_forever(args.interval, on_result=report)
    except KeyboardInterrupt:
        return 0
    return 0


def _cmd_device_status(args) -> int:
    from edge_pusher.device import Agent

    if not os.path.isdir(args.state_dir):
        raise OtaError(f"state directory {args.state_dir} does not exist")
    print(json.dumps(Agent(args.state_dir, "file:///nonexistent").status(), indent=2))
    return 0


def _publisher_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bucket", required=True, help="file://DIR, s3://bucket/prefix")
    p.add_argument("--keys", required=True, help="keys directory from 'keys init'")
    p.add_argument("--endpoint-url", help="S3 endpoint (default: AWS_ENDPOINT_URL[_S3])")
    p.add_argument("--timestamp-expiry", type=_hours, default=timedelta(days=1),
                   metavar="HOURS", help="timestamp lifetime (default 24)")
    p.add_argument("--lock-wait", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for another publisher (default 60)")


def register(subparsers) -> None:
    """Add keys, publish, repo and device subcommands to an argparse subparsers object."""
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
    p.add_argument("--lock-wait", type=float, default=60.0)
    p.set_defaults(func=_cmd_keys_rotate)

    p = subparsers.add_parser("publish", help="sign and publish one model file")
    p.add_argument("file")
    _publisher_flags(p)
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True, type=_version, help="N, or 'auto' for next")
    p.add_argument("--hardware", default="cpu")
    p.add_argument("--channel", default="stable")
    p.add_argument("--rollout", type=int, default=100, metavar="PCT")
    p.add_argument("--report", help="quantization_report.json for metrics and self-test")
    p.add_argument("--cpu-reference", help="int8 CPU model to compute an Edge TPU self-test")
    p.add_argument("--pipeline-run", default="", help="id of the run that made the model")
    p.set_defaults(func=_cmd_publish)

    repo = subparsers.add_parser("repo", help="maintain an OTA repository")
    rs = repo.add_subparsers(dest="repo_command", required=True)
    p = rs.add_parser("refresh", help="re-sign timestamp (and anything near expiry)")
    _publisher_flags(p)
    p.set_defaults(func=_cmd_repo_refresh)

    device = subparsers.add_parser("device", help="the device agent")
    ds = device.add_subparsers(dest="device_command", required=True)
    p = ds.add_parser("poll", help="check for, verify, self-test and activate a new model")
    p.add_argument("--repo", required=True, help="http(s):// or file:// repository URL")
    p.add_argument("--trusted-root", required=True, help="root.json shipped with firmware")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--device-id", required=True)
    p.add_argument("--hardware", default="cpu")
    p.add_argument("--channel", default="stable")
    p.add_argument("--model", help="model name (default: the active one, or the only one)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--once", action="store_true", help="poll once (default)")
    g.add_argument("--interval", type=float, metavar="SECONDS", help="poll forever")
    p.set_defaults(func=_cmd_device_poll)
    p = ds.add_parser("status", help="print the device state as JSON")
    p.add_argument("--state-dir", required=True)
    p.set_defaults(func=_cmd_device_status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgeship")
    parser.add_argument("--debug", action="store_true")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except OtaError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
