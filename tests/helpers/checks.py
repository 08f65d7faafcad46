"""The checks every step's ``test_errors.py`` makes: bad input is one readable line, and a
failed step leaves nothing a later step could mistake for its output."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from edgeship.errors import InputError


def one_line_error(call: Callable[[], object], match: str,
                   error: type[Exception] = InputError) -> str:
    """Run ``call``: it must raise ``error`` with a one-line message matching ``match``."""
    with pytest.raises(error, match=match) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def assert_nothing_written(root: Path, keep: Iterable[str] = ()) -> None:
    """Nothing under ``root`` but the names in ``keep`` (inputs put there before the step ran):
    no output folder and no hidden scratch folder of an unfinished one."""
    left = sorted(p.name for p in root.iterdir() if p.name not in set(keep)) \
        if root.exists() else []
    assert left == [], f"left behind after a failed step: {left}"
