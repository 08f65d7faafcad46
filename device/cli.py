"""``edgeship device poll|status|report-health``: the agent from the command line, on a base
install.

Imports nothing beyond the device package, the contract and LiteRT, so a firmware image without
the pipelines extra runs these commands. :mod:`edgeship.cli` calls :func:`register_device`
once; the handlers are ``cmd_device_<command>``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from edgeship.argtypes import non_negative, positive_seconds, seconds
from edgeship.errors import EdgeshipError, InputError, warn
from edgeship.subcommands import Subparsers

if TYPE_CHECKING:
    from edgeship.device.agent import PollResult
    from edgeship.device.report import MqttReporter

#: How long a one-shot command waits for the broker to take its report (seconds).
REPORT_TIMEOUT = 5.0


def cmd_device_poll(args: argparse.Namespace) -> int:
    from edgeship.contract import check_name
    from edgeship.device.agent import Agent
    from edgeship.device.fetcher import TransferLimits

    device_id: str = args.device_id
    state_dir: str = args.state_dir
    interval: float | None = args.interval
    report_timeout: float = args.report_timeout
    check_name("device id", device_id)  # before the reporter puts it in a topic
    limits = TransferLimits(file_seconds=args.file_timeout, poll_seconds=args.poll_timeout,
                            min_bytes_per_second=args.min_rate, grace_seconds=args.rate_grace,
                            socket_seconds=args.socket_timeout)
    reporter = _reporter(args, device_id, state_dir)
    agent = Agent(state_dir, args.repo, trusted_root=args.trusted_root,
                  device_id=device_id, hardware=args.hardware, channel=args.channel,
                  model=args.model, limits=limits, reporter=reporter)
    if interval is None:
        result = agent.poll_once()
        print(json.dumps(result.as_dict()))
        _flush(reporter, report_timeout)
        return 0 if result.ok else 1

    def report(result: PollResult) -> None:
        print(json.dumps(result.as_dict()), flush=True)

    try:
        agent.run_forever(interval, on_result=report)
    except KeyboardInterrupt:
        return 0
    return 0


def _reporter(args: argparse.Namespace, device_id: str, state_dir: str) -> MqttReporter | None:
    """The MQTT reporter ``--report-to`` asks for, or None. Reporting never fails a poll: a
    reporter that cannot be set up (a bad URL, a missing CA or password file) is a warning,
    and the device polls without reporting."""
    report_to: str | None = args.report_to
    if not report_to:
        return None
    from edgeship.device.report import MqttReporter, build_report
    from edgeship.mqtt import BrokerLogin, read_password

    username: str | None = args.mqtt_username
    password_file: str | None = args.mqtt_password_file
    ca: str | None = args.mqtt_ca
    prefix: str = args.report_prefix
    try:
        login = BrokerLogin(report_to, username or device_id, read_password(password_file), ca,
                            prefix)
        return MqttReporter(login, device_id, source=lambda: build_report(state_dir))
    except (EdgeshipError, OSError, ValueError) as e:
        warn(f"not reporting: {e}")
        return None


def _flush(reporter: MqttReporter | None, timeout: float) -> None:
    """Before a one-shot command exits: give the broker ``timeout`` seconds to take the
    report. Not reaching it is a warning, never a failure (the next poll reports again)."""
    if reporter is None:
        return
    if not reporter.flush(timeout):
        warn(f"report not delivered to the broker within {timeout:g} s")
    reporter.close()


def cmd_device_report_health(args: argparse.Namespace) -> int:
    from edgeship.device.state import StateDir, device_status

    state_dir: str = args.state_dir
    state: str = args.state
    reason: str = args.reason
    report_to: str | None = args.report_to
    report_timeout: float = args.report_timeout
    if not os.path.isdir(state_dir):
        raise InputError(f"state directory {state_dir} does not exist")
    try:
        health = StateDir(state_dir).set_health(state, reason)
    except FileNotFoundError as e:
        raise InputError(str(e)) from None
    print(json.dumps(health))
    if report_to:
        from edgeship.device.report import build_report

        device_id = device_status(state_dir)["device_id"]
        if not device_id:
            raise InputError(f"{state_dir}: no poll has recorded a device id to report as")
        reporter = _reporter(args, device_id, state_dir)
        if reporter is not None:  # a reporting misconfiguration was a warning
            reporter.publish(build_report(state_dir))
            _flush(reporter, report_timeout)
    return 0


def _add_reporting(parser: argparse.ArgumentParser) -> None:
    """Where the device reports its state (docs/fleet.md); reporting never fails a poll."""
    from edgeship.contract import DEFAULT_TOPIC_PREFIX

    g = parser.add_argument_group("reports to the fleet (MQTT; optional)")
    g.add_argument("--report-to", metavar="URL", help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    g.add_argument("--mqtt-username", help="default: the device id (what the broker's ACL "
                   "expects)")
    g.add_argument("--mqtt-password-file", metavar="FILE", help="file holding the password")
    g.add_argument("--mqtt-ca", metavar="FILE", help="CA certificate of an mqtts:// broker")
    g.add_argument("--report-prefix", default=DEFAULT_TOPIC_PREFIX,
                   help=f"topic prefix (default {DEFAULT_TOPIC_PREFIX})")
    g.add_argument("--report-timeout", type=positive_seconds, default=REPORT_TIMEOUT,
                   metavar="SECONDS", help="how long a one-shot command waits for the broker "
                   f"(default {REPORT_TIMEOUT:g})")


def cmd_device_status(args: argparse.Namespace) -> int:
    from edgeship.device.state import device_status

    state_dir: str = args.state_dir
    trusted_root: str | None = args.trusted_root
    if not os.path.isdir(state_dir):
        raise InputError(f"state directory {state_dir} does not exist")
    if trusted_root and not os.path.isfile(trusted_root):
        raise InputError(f"--trusted-root {trusted_root}: no such file")
    print(json.dumps(device_status(state_dir, trusted_root=trusted_root), indent=2))
    return 0


def _add_limits(parser: argparse.ArgumentParser) -> None:
    """Slow-retrieval limits; the defaults (``TransferLimits``) suit a slow cellular link."""
    from edgeship.device.fetcher import TransferLimits

    d = TransferLimits()
    g = parser.add_argument_group("transfer limits (past any, the poll ends as slow-retrieval)")
    g.add_argument("--file-timeout", type=positive_seconds, default=d.file_seconds,
                   metavar="SECONDS",
                   help=f"longest one file may take (default {d.file_seconds:g})")
    g.add_argument("--min-rate", type=non_negative, default=d.min_bytes_per_second,
                   metavar="BYTES_S",
                   help="lowest average bytes/s of a file after --rate-grace "
                        f"(default {d.min_bytes_per_second:g})")
    g.add_argument("--rate-grace", type=seconds, default=d.grace_seconds, metavar="SECONDS",
                   help=f"seconds before --min-rate applies (default {d.grace_seconds:g})")
    g.add_argument("--poll-timeout", type=positive_seconds, default=d.poll_seconds,
                   metavar="SECONDS",
                   help=f"longest a poll may spend downloading (default {d.poll_seconds:g})")
    g.add_argument("--socket-timeout", type=positive_seconds, default=d.socket_seconds,
                   metavar="SECONDS",
                   help="longest wait to connect or between two reads "
                        f"(default {d.socket_seconds:g})")


def register_device(subparsers: Subparsers) -> None:
    """``edgeship device poll|status|report-health``."""
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
    _add_limits(p)
    _add_reporting(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--once", action="store_true", help="poll once (default)")
    g.add_argument("--interval", type=positive_seconds, metavar="SECONDS", help="poll forever")
    p.set_defaults(func=cmd_device_poll)
    p = ds.add_parser("status", help="print the device state as JSON")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--trusted-root", help="the firmware's root.json, to check 'verified' "
                   "against (default: the copy kept in the state folder)")
    p.set_defaults(func=cmd_device_status)
    p = ds.add_parser("report-health", help="record (and report) what the application says "
                      "of the active model")
    p.add_argument("state", choices=["healthy", "unhealthy"])
    p.add_argument("--reason", default="", help="why, in a few words (kept to 200 characters)")
    p.add_argument("--state-dir", required=True)
    _add_reporting(p)
    p.set_defaults(func=cmd_device_report_health)
