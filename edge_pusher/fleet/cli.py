"""``edgeship fleet broker-config|add-device|status|report`` and ``edgeship rollout
set|halt|revoke|watch``: the fleet's broker and reports, and every rollout change.

:mod:`edgeship.cli` calls :func:`register_rollout` and :func:`register_fleet` once each. This
module owns the whole ``rollout`` group (a signed change by hand, or the watcher deciding on the
devices' reports); the signed repository comes through the publisher's public helpers in
:mod:`edgeship.edge_pusher.cli`. Modules (paho-mqtt, matplotlib) are imported only when a
command runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from edgeship.argtypes import count, positive_seconds, seconds, share
from edgeship.contract import DEFAULT_TOPIC_PREFIX
from edgeship.edge_pusher.cli import (
    add_publisher_flags,
    open_repository,
    release_version,
    rollout_percent,
)
from edgeship.errors import OtaError, warn
from edgeship.subcommands import Handler, Subparsers

if TYPE_CHECKING:
    from edgeship.edge_pusher.fleet.registry import Vetted
    from edgeship.edge_pusher.fleet.reports import FleetReports
    from edgeship.edge_pusher.fleet.status import BuildRow
    from edgeship.edge_pusher.repository import Repository
    from edgeship.mqtt import BrokerLogin


def _user_files(handler: Handler) -> Handler:
    """A file the user named that cannot be read or written (a broker folder, --html, --log,
    --history) is one line naming it, not an internal error."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except OSError as e:
            if e.filename is None:
                raise
            raise OtaError(f"{e.filename}: {e.strerror}") from None

    return run


def _login(args: argparse.Namespace) -> BrokerLogin:
    from edgeship.edge_pusher.fleet.registry import FLEET_READER
    from edgeship.mqtt import BrokerLogin, read_password

    broker: str = args.broker
    username: str | None = args.username
    password_file: str = args.password_file
    ca: str | None = args.ca
    prefix: str = args.prefix
    login = BrokerLogin(broker, username or FLEET_READER, read_password(password_file), ca,
                        prefix)
    login.endpoint()
    return login


def _registry_file(args: argparse.Namespace) -> str:
    from edgeship.edge_pusher.fleet.registry import default_registry

    registry: str | None = args.registry
    password_file: str = args.password_file
    return registry or default_registry(password_file)


def _indexes(args: argparse.Namespace) -> dict[str, Any]:
    bucket: str | None = args.bucket
    keys: str | None = args.keys
    channel: str = args.channel
    if not bucket:
        return {}
    if not keys:
        raise OtaError("--bucket needs --keys (the repository's keys directory)")
    repo = open_repository(args)
    _check_watched(repo, bucket, channel)
    return {channel: repo.read_index(channel)["models"]}


def _check_watched(repo: Repository, bucket: str, channel: str) -> None:
    """A mistyped --bucket or --channel shows and decides nothing: say so, and fail."""
    from edgeship.contract import index_path

    if not repo.bucket.exists("metadata/timestamp.json"):
        raise OtaError(f"{bucket} holds no repository (no metadata/timestamp.json): "
                       "check --bucket")
    if repo.target(index_path(channel)) is None:
        raise OtaError(f"channel {channel!r} has no index in {bucket}: check "
                       "--channel (nothing was ever published to it)")


def _snapshot(rows: list[BuildRow], devices: int, read_at: float) -> dict[str, Any]:
    """One line of the fleet history the HTML report plots: bounded, whatever the reports
    hold (their refusals are capped when read, and names are names)."""
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(read_at)),
            "devices": devices, "builds": [r.as_dict() for r in rows]}


def _vetted(args: argparse.Namespace, reports: FleetReports) -> tuple[Vetted, str]:
    """The reports that count, by the registry; without one (status and report only), all,
    flagged as unchecked."""
    from edgeship.edge_pusher.fleet.registry import read_registry, vet

    path = _registry_file(args)
    if not os.path.exists(path):
        return vet(reports.reports, None), path
    return vet(reports.reports, read_registry(path)), path


def _flags(vetted: Vetted, path: str, reports: FleetReports) -> list[str]:
    """What the operator should know about the reports that were not counted (escaped)."""
    from edgeship.contract import shown

    lines: list[str] = []
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
def cmd_fleet_broker_config(args: argparse.Namespace) -> int:
    from edgeship.edge_pusher.fleet.broker import (
        Tls,
        broker_config,
        broker_user,
        plaintext_exposed,
        unreachable_by,
    )

    cert: str | None = args.tls_cert
    key: str | None = args.tls_key
    ca: str | None = args.tls_ca
    listen: str = args.listen
    user: str | None = args.user
    if cert and key and ca:
        tls = Tls(cert, key, ca)
    elif cert or key or ca:
        raise OtaError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
    else:
        tls = None
    conf = broker_config(args.dir, listen, tls, args.prefix, user)
    folder = conf.parent
    if plaintext_exposed(listen, tls):
        warn(f"{listen} is a plaintext listener beyond this machine: device passwords and "
             "reports cross the network unencrypted; give --tls-cert, --tls-key and --tls-ca, "
             "or listen on 127.0.0.1")
    account = broker_user(user)
    blocked = unreachable_by(folder, account) if account else None
    if account is not None and blocked is not None:
        warn(f"started as root, Mosquitto runs as {account.pw_name!r}, which cannot enter "
             f"{blocked}; choose a broker folder it can reach (e.g. under /etc/mosquitto), or "
             "--user root")
    print(f"wrote {conf}; start it with: mosquitto -c {conf}")
    print(f"the fleet reader's password is in {folder / 'fleet.password'}; add devices with "
          f"'edgeship fleet add-device ID --hardware H --channel C --dir {folder}'")
    return 0


@_user_files
def cmd_fleet_add_device(args: argparse.Namespace) -> int:
    from edgeship.edge_pusher.fleet.broker import add_devices

    given: list[str] = args.device_id
    hardware: str = args.hardware
    channel: str = args.channel
    model_name: str | None = args.model
    device_ids = list(dict.fromkeys(given))  # "d1 d1" is one device
    paths = add_devices(args.dir, device_ids, hardware, channel, model_name)
    model = f", model {model_name}" if model_name else ""
    for device_id, path in zip(device_ids, paths, strict=True):
        print(f"{device_id}: password in {path}; registered as {hardware} on "
              f"{channel}{model}")
    print("put each on its device (device poll --mqtt-password-file) and delete it here; a "
          "running broker takes new passwords after SIGHUP")
    return 0


@_user_files
def cmd_fleet_status(args: argparse.Namespace) -> int:
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status, format_table
    from edgeship.edge_pusher.fleet.watch import append_jsonl

    indexes = _indexes(args)  # a mistyped --bucket or --channel fails before the broker
    reports = read_reports(_login(args))
    vetted, path = _vetted(args, reports)
    rows = fleet_status(vetted.reports, indexes)
    history: str | None = args.history
    as_json: bool = args.json
    append_jsonl(history, [_snapshot(rows, len(vetted.reports), reports.read_at)])
    if as_json:
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
def cmd_fleet_report(args: argparse.Namespace) -> int:
    from edgeship.edge_pusher.fleet.html import write_report
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status
    from edgeship.edge_pusher.fleet.watch import append_jsonl

    indexes = _indexes(args)  # a mistyped --bucket or --channel fails before the broker
    reports = read_reports(_login(args))
    vetted, path = _vetted(args, reports)
    rows = fleet_status(vetted.reports, indexes)
    history: str | None = args.history
    html: str = args.html
    append_jsonl(history, [_snapshot(rows, len(vetted.reports), reports.read_at)])
    write_report(html, rows, reports, history, notes=_flags(vetted, path, reports),
                 devices=len(vetted.reports))
    print(f"wrote {html}")
    return 0


def cmd_rollout_change(args: argparse.Namespace) -> int:
    """``rollout set|halt|revoke``: one signed change to the channel index."""
    command: str = args.rollout_command
    name: str = args.name
    version: int = args.version
    channel: str = args.channel
    hardware: str | None = args.hardware
    percent: int | None = getattr(args, "percent", None)
    state = {"set": "active", "halt": "halted", "revoke": "revoked"}[command]
    changed = open_repository(args).change_rollout(name, version, channel, hardware,
                                                   percent=percent, state=state)
    for entry in changed:
        print(f"{name} v{entry['version']} ({entry['hardware']}) on {channel}: "
              f"{entry.get('state', 'active')} at {entry['rollout']}%")
    return 0


@_user_files
def cmd_rollout_watch(args: argparse.Namespace) -> int:
    from edgeship.edge_pusher.fleet.registry import read_registry, vet
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.status import fleet_status
    from edgeship.edge_pusher.fleet.watch import Policy, append_jsonl, watch_once

    stages: list[int] = args.stages
    channel: str = args.channel
    interval: float | None = args.interval
    log: str | None = args.log
    history: str | None = args.history
    policy = Policy(tuple(stages), args.min_healthy, args.soak, args.max_failure_share,
                    args.on_failure, args.min_failures, args.max_report_age)
    repo, login = open_repository(args), _login(args)
    bucket: str = args.bucket
    _check_watched(repo, bucket, channel)
    registry_file = _registry_file(args)
    read_registry(registry_file)  # the watcher counts registered devices only: none, no run
    stop = threading.Event()
    while True:
        try:
            registry = read_registry(registry_file)  # add-device takes effect next cycle
            reports = read_reports(login)
            decisions = watch_once(repo, reports.reports, channel, policy,
                                   registry=registry)
        except OtaError as e:  # no data is not good data: decide nothing this cycle
            warn(f"no reports ({e}); nothing decided")
            if interval is None:
                return 1  # a CronJob run that saw nothing shows as failed
        else:
            for decision in decisions:
                print(decision.line(), flush=True)
            if not decisions:
                print(f"no active build on channel {channel}: nothing to decide",
                      flush=True)
            append_jsonl(log, [d.as_dict() for d in decisions])
            vetted = vet(reports.reports, registry)
            rows = fleet_status(vetted.reports, {channel: repo.read_index(channel)["models"]})
            append_jsonl(history, [_snapshot(rows, len(vetted.reports), reports.read_at)])
        if interval is None:
            return 0
        stop.wait(interval)


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
    """The repository: required to watch; optional for status and report, which read it
    only (the repository's own timestamp expiry and lock wait apply)."""
    if required:
        add_publisher_flags(p)
    else:
        g = p.add_argument_group("the repository, for rollout stages and pending devices")
        g.add_argument("--bucket", help="file://DIR, s3://bucket/prefix")
        g.add_argument("--keys", help="keys directory from 'keys init'")
        g.add_argument("--endpoint-url")
    p.add_argument("--channel", default="stable")


def register_fleet(subparsers: Subparsers) -> None:
    """``edgeship fleet broker-config|add-device|status|report``."""
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
    p.set_defaults(func=cmd_fleet_broker_config)
    p = fs.add_parser("add-device", help="create (or rotate) devices' MQTT credentials")
    p.add_argument("device_id", nargs="+")
    p.add_argument("--dir", required=True, help="the broker folder from broker-config")
    p.add_argument("--hardware", required=True,
                   help="the hardware the device may report for (its builds' --hardware)")
    p.add_argument("--channel", default="stable",
                   help="the channel the device follows (default stable)")
    p.add_argument("--model", help="the model the device runs: its reports then count for "
                   "that model's builds only (recommended when a channel carries several)")
    p.set_defaults(func=cmd_fleet_add_device)
    commands: tuple[tuple[str, str, Handler], ...] = (
        ("status", "devices per model and version", cmd_fleet_status),
        ("report", "the same as a self-contained HTML page", cmd_fleet_report))
    for name, text, func in commands:
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


def register_rollout(subparsers: Subparsers) -> None:
    """``edgeship rollout set|halt|revoke|watch``."""
    rollout = subparsers.add_parser(
        "rollout", help="widen, narrow, halt or revoke a published build (signed index)")
    ro = rollout.add_subparsers(dest="rollout_command", required=True)
    for command, text in (("set", "set the share of devices a build reaches (resumes a halt)"),
                          ("halt", "stop a build reaching more devices; those on it stay"),
                          ("revoke", "send devices on a build back to their previous one")):
        p = ro.add_parser(command, help=text)
        p.add_argument("name")
        p.add_argument("version", type=release_version)
        add_publisher_flags(p)
        p.add_argument("--channel", default="stable")
        p.add_argument("--hardware", help="only this hardware's build (default: every one)")
        if command == "set":
            p.add_argument("--percent", type=rollout_percent, required=True, metavar="P")
        p.set_defaults(func=cmd_rollout_change)

    p = ro.add_parser(
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
    p.set_defaults(func=cmd_rollout_watch)
