"""The ``edgeship`` command line (also ``python -m edgeship``): one parser, one error wrapper.

The root registers each command group once, here, from the module that owns it:

=======================  ==================================================================
``run``, ``compile``     :mod:`edgeship.pipelines.commands`
``submit``               :mod:`edgeship.pipelines.submit`
``keys``, ``publish``,   :mod:`edgeship.edge_pusher.cli` (the signed repository; its public
``repo``                 helpers serve ``rollout`` too)
``rollout``, ``fleet``   :mod:`edgeship.edge_pusher.fleet.cli` (set, halt, revoke, watch;
                         the broker and the devices' reports)
``device``               :mod:`edgeship.device.cli`
=======================  ==================================================================

Each module has ``register_<group>(subparsers)`` and handlers ``cmd_<group>_<command>(args) ->
int`` (types in :mod:`edgeship.subcommands`). Registering imports only argparse and those small
modules, so ``edgeship device ...`` works on a device install without kfp or TensorFlow, and
``compile`` never imports TensorFlow.

Every command ends the same way: 0 on success; an :class:`~edgeship.errors.EdgeshipError` is one
line ``edgeship: error: <message>`` and its exit status (1; 2 for a
:class:`~edgeship.errors.UsageError`, as argparse's own); anything else is a bug, reported as
``edgeship: internal error: ... (rerun with --debug for the traceback)`` and exit 1; ``--debug``
shows the traceback instead. Handlers raise; only this module prints an error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from edgeship.errors import PREFIX, EdgeshipError
from edgeship.subcommands import Handler, Subparsers

__all__ = ["PREFIX", "build_parser", "error_line", "main"]

# Top-level packages of the ``pipelines`` extra: a device install (base package) lacks them.
PIPELINES_EXTRA = {"kfp", "kfp_server_api", "tensorflow", "keras", "apache_beam", "google",
                   "boto3", "botocore", "yaml"}


def _groups() -> list[Callable[[Subparsers], None]]:
    """Every command group's register function, in the order ``--help`` lists them."""
    from edgeship.device.cli import register_device
    from edgeship.edge_pusher.cli import register_keys, register_publish, register_repo
    from edgeship.edge_pusher.fleet.cli import register_fleet, register_rollout
    from edgeship.pipelines.commands import register_compile, register_run
    from edgeship.pipelines.submit import register_submit

    return [register_run, register_compile, register_submit, register_keys, register_publish,
            register_repo, register_rollout, register_fleet, register_device]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PREFIX,
        description="Data to signed, quantized models on edge devices.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _groups():
        register(sub)
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
    debug: bool = args.debug
    command: str = args.command
    handler: Handler = args.func
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"{PREFIX}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as Python advises
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # noqa: BLE001 - the one place every error becomes one line
        if debug:
            raise
        print(error_line(err, command), file=sys.stderr)
        return err.exit_status if isinstance(err, EdgeshipError) else 1


if __name__ == "__main__":
    sys.exit(main())
