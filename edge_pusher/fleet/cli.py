"""``edgeship fleet broker-config|add-device|status|report`` and ``edgeship rollout watch``.

Registered by ``edgeship.edge_pusher.cli``; modules (paho-mqtt, matplotlib) are imported only
when a command runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from datetime import timedelta

from edgeship.contract import DEFAULT_TOPIC_PREFIX
from edgeship.errors import OtaError


def _user_files(handler):
    """A file the user named that cannot be read or written (a broker folder, --html, --log,
    --history) is one line naming it, not an internal error."""
    @functools.wraps(handler)
    def run(args) -> int:
        try:
            return handler(args)
        except OSError as e:
            if e.filename is None:
                raise
            raise OtaError(f"{e.filename}: {e.strerror}") from None

    return run


def _login(args):
    from edgeship.edge_pusher.fleet.broker import FLEET_READER
    from edgeship.mqtt import BrokerLogin, read_password

    login = BrokerLogin(args.broker, args.username or FLEET_READER,
                        read_password(args.password_file), args.ca, args.prefix)
    login.endpoint()
    return login


def _indexes(args) -> dict[str, dict]:
    if not args.bucket:
        return {}
    if not args.keys:
        raise OtaError("--bucket needs --keys (the repository's keys directory)")
    from edgeship.edge_pusher.cli import _repository

    return {args.channel: _repository(args).read_index(args.channel)["models"]}


def _snapshot(rows, reports) -> dict:
    """One line of the fleet history the HTML report plots."""
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reports.read_at)),
            "devices": len(reports.reports), "builds": [r.as_dict() for r in rows]}


@_user_files
def _cmd_broker_config(args) -> int:
    from edgeship.edge_pusher.fleet.broker import Tls, broker_config

    tls_given = [args.tls_cert, args.tls_key, args.tls_ca]
    if any(tls_given) and not all(tls_given):
        raise OtaError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
    tls = Tls(args.tls_cert, args.tls_key, args.tls_ca) if all(tls_given) else None
    conf = broker_config(args.dir, args.listen, tls, args.prefix, args.user)
    print(f"wrote {conf}; start it with: mosquitto -c {conf}")
    print(f"the fleet reader's password is in {args.dir}/fleet.password; add devices with "
          f"'edgeship fleet add-device ID --dir {args.dir}'")
    return 0


@_user_files
def _cmd_add_device(args) -> int:
    from edgeship.edge_pusher.fleet.broker import add_devices

    for device_id, path in zip(args.device_id, add_devices(args.dir, args.device_id),
                               strict=True):
        print(f"{device_id}: password in {path}")
    print("put each on its device (device poll --mqtt-password-file) and delete it here; a "
          "running broker takes new passwords after SIGHUP")
    return 0


@_user_files
def _cmd_status(args) -> int:
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status, format_table
    from edgeship.edge_pusher.fleet.watch import append_jsonl

    reports = read_reports(_login(args))
    rows = fleet_status(reports.reports, _indexes(args))
    append_jsonl(args.history, [_snapshot(rows, reports)])
    if args.json:
        print(json.dumps({"devices": len(reports.reports), "skipped": reports.skipped,
                          "builds": [r.as_dict() for r in rows]}, indent=2))
        return 0
    print(format_table(rows))
    print(f"{len(reports.reports)} devices reporting" + (
        f"; {len(reports.skipped)} reports skipped (e.g. {reports.skipped[0]})"
        if reports.skipped else ""))
    return 0


@_user_files
def _cmd_report(args) -> int:
    from edgeship.edge_pusher.fleet.html import write_report
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status
    from edgeship.edge_pusher.fleet.watch import append_jsonl

    reports = read_reports(_login(args))
    rows = fleet_status(reports.reports, _indexes(args))
    append_jsonl(args.history, [_snapshot(rows, reports)])
    write_report(args.html, rows, reports, args.history)
    print(f"wrote {args.html}")
    return 0


@_user_files
def _cmd_watch(args) -> int:
    from edgeship.edge_pusher.cli import _repository
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status
    from edgeship.edge_pusher.fleet.watch import Policy, append_jsonl, watch_once

    policy = Policy(tuple(args.stages), args.min_healthy, args.soak, args.max_failure_share,
                    args.on_failure, args.min_failures, args.max_report_age)
    repo, login = _repository(args), _login(args)
    stop = threading.Event()
    while True:
        try:
            reports = read_reports(login)
            decisions = watch_once(repo, reports.reports, args.channel, policy)
        except OtaError as e:  # no data is not good data: decide nothing this cycle
            print(f"edgeship: warning: no reports ({e}); nothing decided", file=sys.stderr,
                  flush=True)
            if args.interval is None:
                return 1  # a CronJob run that saw nothing shows as failed
        else:
            for decision in decisions:
                print(decision.line(), flush=True)
            append_jsonl(args.log, [d.as_dict() for d in decisions])
            rows = fleet_status(reports.reports, {args.channel: repo.read_index(
                args.channel)["models"]})
            append_jsonl(args.history, [_snapshot(rows, reports)])
        if args.interval is None:
            return 0
        stop.wait(args.interval)


def _stages(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give percentages like 5,25,100") from None


def _broker_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the broker devices report to")
    g.add_argument("--broker", required=True, metavar="URL",
                   help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    g.add_argument("--username", help="default: the fleet reader, 'fleet'")
    g.add_argument("--password-file", required=True, metavar="FILE",
                   help="the reader's password (broker-config writes fleet.password)")
    g.add_argument("--ca", metavar="FILE", help="CA certificate of an mqtts:// broker")
    g.add_argument("--prefix", default=DEFAULT_TOPIC_PREFIX, help="topic prefix")


def _bucket_flags(p: argparse.ArgumentParser, required: bool) -> None:
    from edgeship.edge_pusher.cli import _publisher_flags

    if required:
        _publisher_flags(p)
    else:
        g = p.add_argument_group("the repository, for rollout stages and pending devices")
        g.add_argument("--bucket", help="file://DIR, s3://bucket/prefix")
        g.add_argument("--keys", help="keys directory from 'keys init'")
        g.add_argument("--endpoint-url")
        p.set_defaults(timestamp_expiry=timedelta(days=1), lock_wait=60.0)
    p.add_argument("--channel", default="stable")


def register(subparsers, rollout_subparsers) -> None:
    """Add ``fleet ...`` to the command line and ``watch`` to ``rollout``."""
    fleet = subparsers.add_parser("fleet", help="the broker, and the fleet's reports")
    fs = fleet.add_subparsers(dest="fleet_command", required=True)
    p = fs.add_parser("broker-config", help="write a Mosquitto configuration with an ACL")
    p.add_argument("dir")
    p.add_argument("--listen", default="0.0.0.0:1883", metavar="HOST:PORT")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-ca")
    p.add_argument("--prefix", default=DEFAULT_TOPIC_PREFIX)
    p.add_argument("--user", help="the user Mosquitto runs as when started as root")
    p.set_defaults(func=_cmd_broker_config)
    p = fs.add_parser("add-device", help="create (or rotate) devices' MQTT credentials")
    p.add_argument("device_id", nargs="+")
    p.add_argument("--dir", required=True, help="the broker folder from broker-config")
    p.set_defaults(func=_cmd_add_device)
    for name, text, func in (("status", "devices per model and version", _cmd_status),
                             ("report", "the same as a self-contained HTML page", _cmd_report)):
        p = fs.add_parser(name, help=text)
        _broker_flags(p)
        _bucket_flags(p, required=False)
        p.add_argument("--history", metavar="FILE",
                       help="JSON-lines fleet history to append to (and, for report, plot)")
        if name == "status":
            p.add_argument("--json", action="store_true")
        else:
            p.add_argument("--html", required=True, metavar="FILE")
        p.set_defaults(func=func)

    p = rollout_subparsers.add_parser(
        "watch", help="advance, halt or revoke rollouts on the devices' reports")
    _broker_flags(p)
    _bucket_flags(p, required=True)
    from edgeship.edge_pusher.fleet.watch import Policy

    d = Policy()
    p.add_argument("--stages", type=_stages, default=list(d.stages), metavar="P,P,...",
                   help="rollout stages in percent (default 5,25,100)")
    p.add_argument("--min-healthy", type=int, default=d.min_healthy, metavar="N",
                   help=f"healthy devices needed to advance (default {d.min_healthy})")
    p.add_argument("--soak", type=float, default=d.soak_seconds, metavar="SECONDS",
                   help=f"time at a stage before advancing (default {d.soak_seconds:g})")
    p.add_argument("--max-failure-share", type=float, default=d.max_failure_share,
                   metavar="F", help="failures among devices that tried a build above which "
                   f"it is stopped (default {d.max_failure_share})")
    p.add_argument("--on-failure", choices=["halt", "revoke"], default=d.on_failure)
    p.add_argument("--min-failures", type=int, default=d.min_failures, metavar="N",
                   help="failures needed besides the share, or all the stage covers "
                   f"(default {d.min_failures})")
    p.add_argument("--max-report-age", type=float, default=d.max_report_age,
                   metavar="SECONDS", help="older reports are left out "
                   f"(default {d.max_report_age:g})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--once", action="store_true", help="one cycle (default; for a CronJob)")
    g.add_argument("--interval", type=float, metavar="SECONDS", help="a cycle every SECONDS")
    p.add_argument("--log", metavar="FILE", help="JSON-lines decision log to append to")
    p.add_argument("--history", metavar="FILE", help="JSON-lines fleet history to append to")
    p.set_defaults(func=_cmd_watch)
