"""The one error model: every failure a user can act on derives from :class:`EdgeshipError`.

An ``EdgeshipError`` is printed by the command line as one line (``edgeship: error: ...``) with
exit status 1, and by a pipeline run as the failed step's one line; anything else is a bug and
is reported as such (its traceback with ``--debug``). The message always names what is wrong:
the file, row, feature, parameter or bucket object.

    EdgeshipError
    ├── InputError          bad input to a step: a file, row, feature or parameter
    │   └── UsageError          a command's argument cannot work (exit status 2, as argparse's)
    ├── RunFailed           a pipeline run on a cluster ended without success
    ├── OtaError            publishing: keys, buckets, versions, the signed repository
    │   ├── NotFound            the bucket has no object under this key
    │   └── PreconditionFailed  a conditional bucket write lost to another writer
    └── ModelCheckError     a .tflite file cannot be trusted to run (``reason`` is a stable code)
        ├── ModelLoadError      LiteRT cannot load or run it
        └── SelfTestMismatch    it runs but does not compute its signed expected output

A pipeline step that fails on bad input also leaves its error as a small JSON file
(:func:`step_errors`), so the local runner shows the step's own line without parsing logs.

Kept free of heavy imports: the device, the contract and every component import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any, ClassVar, cast

#: Set by the local runner: the folder where a failed step leaves ``<step>.json``.
ERROR_DIR_ENV = "EDGESHIP_ERROR_DIR"

#: The program's name, first on every line it prints to stderr (``edgeship: error: ...``,
#: ``edgeship: warning: ...``). Here, not in ``edgeship.cli``, so every layer (the device, the
#: publisher) may print a warning in the same form without importing the command line.
PREFIX = "edgeship"


def warn(message: str) -> None:
    """One ``edgeship: warning: ...`` line on stderr: something the user should know that does
    not stop the command."""
    print(f"{PREFIX}: warning: {message}", file=sys.stderr, flush=True)


class EdgeshipError(Exception):
    """A user-facing failure: one readable line, exit status 1.

    Whitespace (newlines from a wrapped library message) is folded, so the message stays one line.
    """

    #: The command line's exit status for this error.
    exit_status: ClassVar[int] = 1

    def __init__(self, message: object = ""):
        super().__init__(" ".join(str(message).split()))


class InputError(EdgeshipError):
    """Bad input (file, row, feature or parameter); the message names which."""


class UsageError(InputError):
    """A command's argument cannot work (an unknown ``--param`` name, a value of the wrong
    type): exit status 2, as argparse's own usage errors."""

    exit_status: ClassVar[int] = 2


class RunFailed(EdgeshipError):
    """A pipeline run (``submit --wait``) ended in a state other than success; the message
    names the run, its state and where to see it."""


class OtaError(EdgeshipError):
    """Publishing failed: a bad flag, a missing key, a version not newer, a bucket problem."""


class NotFound(OtaError):
    """The bucket has no object under this key."""


class PreconditionFailed(OtaError):
    """A conditional bucket write lost: the object exists, or changed since it was read."""


class ModelCheckError(EdgeshipError):
    """A model file failed a check before anyone may run it; ``reason`` is a stable code that
    devices record and fleets count."""

    reason = "model-check-failed"


class ModelLoadError(ModelCheckError):
    """The model could not be loaded or run by this runtime (wrong ops, corrupt file, no
    delegate)."""

    reason = "model-load-failed"


class SelfTestMismatch(ModelCheckError):
    """The model ran but its output differs from the signed expected output (another runtime,
    another delegate, or different bytes than the publisher measured)."""

    reason = "self-test-failed"


class StepFailed(EdgeshipError):
    """A pipeline run stopped at a failed step; the message is that step's own line."""


@contextlib.contextmanager
def step_errors(step: str) -> Generator[None]:
    """Wrap a pipeline step's work: a user error leaves ``$EDGESHIP_ERROR_DIR/<step>.json``
    (``{"step", "type", "message"}``) for the runner, then fails the step as before.

    Without the variable (a cluster, a test) nothing is written. Writing is best effort: a
    folder that cannot be written must not hide the step's own error.
    """
    try:
        yield
    except EdgeshipError as err:
        directory = os.environ.get(ERROR_DIR_ENV)
        if directory:
            record = {"step": step, "type": type(err).__name__, "message": str(err)}
            with contextlib.suppress(OSError):
                path = Path(directory) / f"{step}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record))
                os.replace(tmp, path)
        raise


def read_step_errors(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The error records failed steps left in ``directory`` (see :func:`step_errors`)."""
    records: list[dict[str, Any]] = []
    for path in sorted(Path(directory).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            record: object = json.loads(path.read_text())
            if isinstance(record, dict):
                checked = cast("dict[str, Any]", record)  # a JSON object: str keys
                if isinstance(checked.get("message"), str):
                    records.append(checked)
    return records
