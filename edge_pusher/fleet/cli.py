"""``edgeship fleet broker-config|add-device|status|report`` and ``edgeship rollout watch``.

Registered by ``edgeship.edge_pusher.cli``; modules (paho-mqtt, matplotlib) are imported only
when a command runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from datetime import timedelta

from edgeship.argtypes import count, positive_seconds, seconds, share
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
    from edgeship.edge_pusher.fleet.registry import FLEET_READER
    from edgeship.mqtt import BrokerLogin, read_password

    login = BrokerLogin(args.broker, args.username or FLEET_READER,
                        read_password(args.password_file), args.ca, args.prefix)
    login.endpoint()
    return login


def _registry_file(args) -> str:
    from edgeship.edge_pusher.fleet.registry import default_registry

    return args.registry or default_registry(args.password_file)


def _indexes(args) -> dict[str, dict]:
    if not args.bucket:
        return {}
    if not args.keys:
        raise OtaError("--bucket needs --keys (the repository's keys directory)")
    from edgeship.edge_pusher.cli import _repository

    repo = _repository(args)
    _check_watched(repo, args)
    return {args.channel: repo.read_index(args.channel)["models"]}


def _check_watched(repo, args) -> None:
    """A mistyped --bucket or --channel shows and decides nothing: say so, and fail."""
    from edgeship.contract import index_path

    if not repo.bucket.exists("metadata/timestamp.json"):
        raise OtaError(f"{args.bucket} holds no repository (no metadata/timestamp.json): "
                       "check --bucket")
    if repo.target(index_path(args.channel)) is None:
        raise OtaError(f"channel {args.channel!r} has no index in {args.bucket}: check "
                       "--channel (nothing was ever published to it)")


def _snapshot(rows, devices: int, read_at: float) -> dict:
    """One line of the fleet history the HTML report plots: bounded, whatever the reports
    hold (their refusals are capped when read, and names are names)."""
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(read_at)),
            "devices": devices, "builds": [r.as_dict() for r in rows]}


def _vetted(args, reports):
    """The reports that count, by the registry; without one (status and report only), all,
    flagged as unchecked."""
    from edgeship.edge_pusher.fleet.registry import read_registry, vet

    path = _registry_file(args)
    if not os.path.exists(path):
        return vet(reports.reports, None), path
    return vet(reports.reports, read_registry(path)), path


def _flags(vetted, path: str, reports) -> list[str]:
    """What the operator should know about the reports that were not counted (escaped)."""
    from edgeship.contract import shown

    lines = []
    if not vetted.checked:
        lines.append(f"no device registry at {path}: reports are shown unchecked (register "
                     "devices with 'edgeship fleet add-device ID --hardware H --channel C')")
    if vetted.unregistered:
        lines.append(f"{len(vetted.unregistered)} unregistered "
                     f"{_plural(len(vetted.unregistered), 'device')} ignored: "
                     f"{', '.join(vetted.unregistered[:10])}"
                     + (" ..." if len(vetted.unregistered) > 10 else ""))
    for device_id, why in sorted(vetted.mismatched.items())[:10]:
        lines.append(f"{device_id} ignored: {why}")
    if len(vetted.mismatched) > 10:
        lines.append(f"... and {len(vetted.mismatched) - 10} more devices claiming another "
                     "hardware or channel ignored")
    if reports.skipped:
        lines.append(f"{len(reports.skipped)} {_plural(len(reports.skipped), 'report')} "
                     f"skipped (e.g. {shown(reports.skipped[0], 200)})")
    if reports.cut:
        lines.append(f"{len(reports.cut)} {_plural(len(reports.cut), 'report')} cut "
                     f"(e.g. {shown(reports.cut[0], 200)})")
    return lines


def _plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


@_user_files
def _cmd_broker_config(args) -> int:
    from edgeship.edge_pusher.fleet.broker import (
        Tls,
        broker_config,
        broker_user,
        plaintext_exposed,
        unreachable_by,
    )

    tls_given = [args.tls_cert, args.tls_key, args.tls_ca]
    if any(tls_given) and not all(tls_given):
        raise OtaError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
    tls = Tls(args.tls_cert, args.tls_key, args.tls_ca) if all(tls_given) else None
    conf = broker_config(args.dir, args.listen, tls, args.prefix, args.user)
    folder = conf.parent
    if plaintext_exposed(args.listen, tls):
        print(f"edgeship: warning: {args.listen} is a plaintext listener beyond this machine: "
              "device passwords and reports cross the network unencrypted; give --tls-cert, "
              "--tls-key and --tls-ca, or listen on 127.0.0.1", file=sys.stderr)
    account = broker_user(args.user)
    blocked = unreachable_by(folder, account) if account else None
    if account is not None and blocked is not None:
        print(f"edgeship: warning: started as root, Mosquitto runs as {account.pw_name!r}, "
              f"which cannot enter {blocked}; choose a broker folder it can reach (e.g. under "
              "/etc/mosquitto), or --user root", file=sys.stderr)
    print(f"wrote {conf}; start it with: mosquitto -c {conf}")
    print(f"the fleet reader's password is in {folder / 'fleet.password'}; add devices with "
          f"'edgeship fleet add-device ID --hardware H --channel C --dir {folder}'")
    return 0


@_user_files
def _cmd_add_device(args) -> int:
    from edgeship.edge_pusher.fleet.broker import add_devices

    device_ids = list(dict.fromkeys(args.device_id))  # "d1 d1" is one device
    paths = add_devices(args.dir, device_ids, args.hardware, args.channel, args.model)
    model = f", model {args.model}" if args.model else ""
    for device_id, path in zip(device_ids, paths, strict=True):
        print(f"{device_id}: password in {path}; registered as {args.hardware} on "
              f"{args.channel}{model}")
    print("put each on its device (device poll --mqtt-password-file) and delete it here; a "
          "running broker takes new passwords after SIGHUP")
    return 0


@_user_files
def _cmd_status(args) -> int:
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status, format_table
    from edgeship.edge_pusher.fleet.watch import append_jsonl

    indexes = _indexes(args)  # a mistyped --bucket or --channel fails before the broker
    reports = read_reports(_login(args))
    vetted, path = _vetted(args, reports)
    rows = fleet_status(vetted.reports, indexes)
    append_jsonl(args.history, [_snapshot(rows, len(vetted.reports), reports.read_at)])
    if args.json:
        print(json.dumps({"devices": len(vetted.reports), "registry_checked": vetted.checked,
                          "unregistered": vetted.unregistered, "mismatched": vetted.mismatched,
                          "skipped": reports.skipped, "cut": reports.cut,
                          "builds": [r.as_dict() for r in rows]}, indent=2))
        return 0
    print(format_table(rows))
    n = len(vetted.reports)
    print(f"{n} {_plural(n, 'device')} reporting")
    for line in _flags(vetted, path, reports):
        print(line)
    return 0


@_user_files
def _cmd_report(args) -> int:
    from edgeship.edge_pusher.fleet.html import write_report
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status
    from edgeship.edge_pusher.fleet.watch import append_jsonl

    indexes = _indexes(args)  # a mistyped --bucket or --channel fails before the broker
    reports = read_reports(_login(args))
    vetted, path = _vetted(args, reports)
    rows = fleet_status(vetted.reports, indexes)
    append_jsonl(args.history, [_snapshot(rows, len(vetted.reports), reports.read_at)])
    write_report(args.html, rows, reports, args.history, notes=_flags(vetted, path, reports),
                 devices=len(vetted.reports))
    print(f"wrote {args.html}")
    return 0


@_user_files
def _cmd_watch(args) -> int:
    from edgeship.edge_pusher.cli import _repository
    from edgeship.edge_pusher.fleet.registry import read_registry, vet
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status
    from edgeship.edge_pusher.fleet.watch import Policy, append_jsonl, watch_once

    policy = Policy(tuple(args.stages), args.min_healthy, args.soak, args.max_failure_share,
                    args.on_failure, args.min_failures, args.max_report_age)
    repo, login = _repository(args), _login(args)
    _check_watched(repo, args)
    registry_file = _registry_file(args)
    read_registry(registry_file)  # the watcher counts registered devices only: none, no run
    stop = threading.Event()
    while True:
        try:
            registry = read_registry(registry_file)  # add-device takes effect next cycle
            reports = read_reports(login)
            decisions = watch_once(repo, reports.reports, args.channel, policy,
                                   registry=registry)
        except OtaError as e:  # no data is not good data: decide nothing this cycle
            print(f"edgeship: warning: no reports ({e}); nothing decided", file=sys.stderr,
                  flush=True)
            if args.interval is None:
                return 1  # a CronJob run that saw nothing shows as failed
        else:
            for decision in decisions:
                print(decision.line(), flush=True)
            if not decisions:
                print(f"no active build on channel {args.channel}: nothing to decide",
                      flush=True)
            append_jsonl(args.log, [d.as_dict() for d in decisions])
            vetted = vet(reports.reports, registry)
            rows = fleet_status(vetted.reports, {args.channel: repo.read_index(
                args.channel)["models"]})
            append_jsonl(args.history, [_snapshot(rows, len(vetted.reports),
                                                  reports.read_at)])
        if args.interval is None:
            return 0
        stop.wait(args.interval)


def _stages(value: str) -> list[int]:
    """Percentages as the signed index holds them (ASCII digits: int() also reads "1_0" and
    other scripts' digits)."""
    from edgeship.contract import check_rollout

    try:
        return [check_rollout(v) for v in value.split(",")]
    except OtaError:
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
    g.add_argument("--registry", metavar="FILE",
                   help="the device registry add-device writes (default: devices.json beside "
                   "--password-file)")


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
    p.add_argument("--hardware", required=True,
                   help="the hardware the device may report for (its builds' --hardware)")
    p.add_argument("--channel", default="stable",
                   help="the channel the device follows (default stable)")
    p.add_argument("--model", help="the model the device runs: its reports then count for "
                   "that model's builds only (recommended when a channel carries several)")
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
    p.add_argument("--min-healthy", type=count, default=d.min_healthy, metavar="N",
                   help=f"healthy devices needed to advance (default {d.min_healthy})")
    p.add_argument("--soak", type=seconds, default=d.soak_seconds, metavar="SECONDS",
                   help=f"time at a stage before advancing (default {d.soak_seconds:g})")
    p.add_argument("--max-failure-share", type=share, default=d.max_failure_share,
                   metavar="F", help="failures among devices that tried a build above which "
                   f"it is stopped (default {d.max_failure_share})")
    p.add_argument("--on-failure", choices=["halt", "revoke"], default=d.on_failure)
    p.add_argument("--min-failures", type=count, default=d.min_failures, metavar="N",
                   help="failures needed besides the share, or all the stage covers "
                   f"(default {d.min_failures})")
    p.add_argument("--max-report-age", type=positive_seconds, default=d.max_report_age,
                   metavar="SECONDS", help="older reports are left out "
                   f"(default {d.max_report_age:g})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--once", action="store_true", help="one cycle (default; for a CronJob)")
    g.add_argument("--interval", type=positive_seconds, metavar="SECONDS",
                   help="a cycle every SECONDS")
    p.add_argument("--log", metavar="FILE", help="JSON-lines decision log to append to")
    p.add_argument("--history", metavar="FILE", help="JSON-lines fleet history to append to")
    p.set_defaults(func=_cmd_watch)
