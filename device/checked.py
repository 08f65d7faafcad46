"""One checked reader for everything in a device's state folder.

A state file is never trusted as it is found: a power cut, a full disk, a flash cell gone bad or
a person may have left anything there, including a directory where a file belongs. Every read
goes through :func:`read_checked`, which returns the parsed value only when it has the shape
its writer declares, and says what is wrong otherwise, so that the agent can repair the state
from what it can still verify and ``device status`` can report it, neither ever failing.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from typing import Any, NamedTuple

#: No state file the agent writes comes near this; a larger one is damaged, not read.
MAX_STATE_BYTES = 4 << 20
#: The most a device downloads of each TUF role (python-tuf's ``UpdaterConfig`` caps, the
#: endless-data defence) and so the most it reads back of each from its own ``tuf/`` cache: a
#: larger cached file is damaged, removed at the start of a poll and never read (a 3 GiB
#: sparse ``tuf/timestamp.json`` would otherwise end every poll in ``MemoryError``).
TIMESTAMP_MAX_BYTES = 16 * 1024
SNAPSHOT_MAX_BYTES = 1 << 20
TARGETS_MAX_BYTES = 4 << 20  # targets and each hashed bin
ROOT_MAX_BYTES = 256 * 1024

#: A declared shape: what is wrong with a parsed value, or None when it fits.
Shape = Callable[[Any], "str | None"]


class Damaged(NamedTuple):
    """A state path that is not what the agent wrote: where, and what is wrong with it."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def object_shape(value: object) -> str | None:
    return None if isinstance(value, dict) else "not a JSON object"


def read_checked(path: str, shape: Shape, shown: str | None = None) -> Any:
    """The parsed JSON of ``path`` when it has ``shape``; None when there is no such file; a
    :class:`Damaged` naming the file as ``shown`` for anything else."""
    shown = shown or path
    try:
        data = read_bytes(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        return Damaged(shown, describe(e))
    if data is None:
        return Damaged(shown, f"larger than {MAX_STATE_BYTES} bytes")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return Damaged(shown, "not JSON")
    problem = shape(value)
    return Damaged(shown, problem) if problem else value


def read_bytes(path: str, limit: int = MAX_STATE_BYTES) -> bytes | None:
    """The regular file's bytes, None when it is larger than ``limit``; OSError as open()
    raises it, and for anything that is not a regular file (a symlink, a FIFO, a device:
    reading one could block or never end)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        raise OSError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    return None if len(data) > limit else data


def describe(error: OSError) -> str:
    if isinstance(error, IsADirectoryError):
        return "a directory where a file belongs"
    if isinstance(error, NotADirectoryError):
        return "a file where a directory belongs"
    return f"unreadable ({error.strerror or error})"


def kind_of(path: str) -> str | None:
    """"dir", "file" (a regular one), "other" (a symlink, a FIFO, a device: the agent makes
    none) or None (nothing there)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def tuf_cache_cap(name: str) -> int:
    """The most read of ``name`` in a device's ``tuf/`` cache ("timestamp.json",
    "root_history/2.root.json", "bins-3f.json", ...): its role's download cap."""
    if name.startswith("root_history/") or name == "root.json":
        return ROOT_MAX_BYTES
    return {"timestamp.json": TIMESTAMP_MAX_BYTES,
            "snapshot.json": SNAPSHOT_MAX_BYTES}.get(name, TARGETS_MAX_BYTES)
