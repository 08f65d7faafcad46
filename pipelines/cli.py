"""The ``edgeship`` command line.

Only argparse is imported up front: ``edgeship device ...`` must work on a device install that
has neither kfp nor TensorFlow, and ``compile`` must never import TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from components.errors import InputError

# Top-level packages of the ``pipelines`` extra: a device install (base package) lacks them.
PIPELINES_EXTRA = {"kfp", "kfp_server_api", "tensorflow", "keras", "apache_beam", "google"}


def build_parser() -> argparse.ArgumentParser:
    from edge_pusher.cli import register as register_ota
    from pipelines.commands import register as register_pipelines

    parser = argparse.ArgumentParser(
        prog="edgeship",
        description="Data to signed, quantized models on edge devices.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_pipelines(sub)
    register_ota(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from edge_pusher.errors import OtaError

    return (InputError, OtaError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except _user_errors() as err:
        if args.debug:
            raise
        print(f"edgeship: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgeship: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # anything else is a bug, but still one line without --debug
        if args.debug:
            raise
        print(f"edgeship: error: {_bug_line(err, args.command)}", file=sys.stderr)
        return 1


def _bug_line(err: Exception, command: str) -> str:
    missing = err.name if isinstance(err, ModuleNotFoundError) else None
    if missing and missing.split(".")[0] in PIPELINES_EXTRA:  # a device install (base package)
        return (
            f"`edgeship {command}` needs the pipelines extra (no module named '{missing}'): "
            "pip install 'edgeship[pipelines]'"
        )
    return f"{type(err).__name__}: {err} (rerun with --debug)"


if __name__ == "__main__":
    sys.exit(main())
