"""``edgeship device poll|status``: the agent from the command line, on a base install.

Imports nothing beyond the device package, the contract and LiteRT, so a firmware image without
the pipelines extra runs these commands.
"""

from __future__ import annotations

import argparse
import json
import os

from edgeship.errors import InputError


def _cmd_poll(args: argparse.Namespace) -> int:
    from edgeship.device.agent import Agent
    from edgeship.device.fetcher import TransferLimits

    limits = TransferLimits(file_seconds=args.file_timeout, poll_seconds=args.poll_timeout,
                            min_bytes_per_second=args.min_rate, grace_seconds=args.rate_grace,
                            socket_seconds=args.socket_timeout)
    agent = Agent(args.state_dir, args.repo, trusted_root=args.trusted_root,
                  device_id=args.device_id, hardware=args.hardware, channel=args.channel,
                  model=args.model, limits=limits)
    if args.interval is None:
        result = agent.poll_once()
        print(json.dumps(result.as_dict()))
        return 0 if result.ok else 1

    def report(result) -> None:
        print(json.dumps(result.as_dict()), flush=True)

    try:
        agent.run_forever(args.interval, on_result=report)
    except KeyboardInterrupt:
        return 0
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from edgeship.device.state import device_status

    if not os.path.isdir(args.state_dir):
        raise InputError(f"state directory {args.state_dir} does not exist")
    if args.trusted_root and not os.path.isfile(args.trusted_root):
        raise InputError(f"--trusted-root {args.trusted_root}: no such file")
    print(json.dumps(device_status(args.state_dir, trusted_root=args.trusted_root), indent=2))
    return 0


def _add_limits(parser: argparse.ArgumentParser) -> None:
    """Slow-retrieval limits; the defaults (``TransferLimits``) suit a slow cellular link."""
    from edgeship.device.fetcher import TransferLimits

    d = TransferLimits()
    g = parser.add_argument_group("transfer limits (past any, the poll ends as slow-retrieval)")
    g.add_argument("--file-timeout", type=float, default=d.file_seconds, metavar="SECONDS",
                   help=f"longest one file may take (default {d.file_seconds:g})")
    g.add_argument("--min-rate", type=float, default=d.min_bytes_per_second, metavar="BYTES_S",
                   help="lowest average bytes/s of a file after --rate-grace "
                        f"(default {d.min_bytes_per_second:g})")
    g.add_argument("--rate-grace", type=float, default=d.grace_seconds, metavar="SECONDS",
                   help=f"seconds before --min-rate applies (default {d.grace_seconds:g})")
    g.add_argument("--poll-timeout", type=float, default=d.poll_seconds, metavar="SECONDS",
                   help=f"longest a poll may spend downloading (default {d.poll_seconds:g})")
    g.add_argument("--socket-timeout", type=float, default=d.socket_seconds, metavar="SECONDS",
                   help="longest wait to connect or between two reads "
                        f"(default {d.socket_seconds:g})")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``device poll`` and ``device status``."""
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
    g = p.add_mutually_exclusive_group()
    g.add_argument("--once", action="store_true", help="poll once (default)")
    g.add_argument("--interval", type=float, metavar="SECONDS", help="poll forever")
    p.set_defaults(func=_cmd_poll)
    p = ds.add_parser("status", help="print the device state as JSON")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--trusted-root", help="the firmware's root.json, to check 'verified' "
                   "against (default: the copy kept in the state folder)")
    p.set_defaults(func=_cmd_status)
