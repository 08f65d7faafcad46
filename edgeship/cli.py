"""The ``edgeship`` command line (also ``python -m edgeship``): one parser, one error wrapper.

Each package registers its own commands: ``edgeship.pipelines`` (run, compile, submit),
``edgeship.edge_pusher`` (keys, publish, repo) and ``edgeship.device`` (device). Registering
imports only argparse and those small modules, so ``edgeship device ...`` works on a device
install without kfp or TensorFlow, and ``compile`` never imports TensorFlow.

Every command ends the same way: 0 on success; an :class:`~edgeship.errors.EdgeshipError` is one
line ``edgeship: error: <message>`` and exit 1; anything else is a bug, reported as
``edgeship: internal error: ... (rerun with --debug for the traceback)`` and exit 1; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from edgeship.errors import EdgeshipError

PREFIX = "edgeship"
# Top-level packages of the ``pipelines`` extra: a device install (base package) lacks them.
PIPELINES_EXTRA = {"kfp", "kfp_server_api", "tensorflow", "keras", "apache_beam", "google",
                   "boto3", "botocore", "yaml"}


def build_parser() -> argparse.ArgumentParser:
    from edgeship.device.cli import register as register_device
    from edgeship.edge_pusher.cli import register as register_publisher
    from edgeship.pipelines.commands import register as register_pipelines

    parser = argparse.ArgumentParser(
        prog=PREFIX,
        description="Data to signed, quantized models on edge devices.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_pipelines(sub)
    register_publisher(sub)
    register_device(sub)
    return parser


def error_line(err: BaseException, command: str = "") -> str:
    """The one line a user sees for ``err``: its message for a user error, else a bug report."""
    if isinstance(err, EdgeshipError):
        return f"{PREFIX}: error: {err}"
    missing = err.name if isinstance(err, ModuleNotFoundError) else None
    if missing and missing.split(".")[0] in PIPELINES_EXTRA:  # a device install (base package)
        return (
            f"{PREFIX}: error: `edgeship {command}` needs the pipelines extra (no module named "
            f"'{missing}'): pip install 'edgeship[pipelines]'"
        )
    first = " ".join(str(err).split())
    return (f"{PREFIX}: internal error: {type(err).__name__}: {first} "
            "(rerun with --debug for the traceback)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PREFIX}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as Python advises
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # noqa: BLE001 - the one place every error becomes one line
        if args.debug:
            raise
        print(error_line(err, args.command), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
