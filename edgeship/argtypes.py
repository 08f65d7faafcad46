"""argparse types shared by every command group: numbers a flag may take, checked once.

A non-finite or out-of-range value is a usage error (exit 2) naming the flag, never a value
that silently skips a soak, spins a loop or waits for ever. Imports the standard library only, so
the device's and the publisher's commands can both use it.
"""

from __future__ import annotations

import argparse
import math
import threading
from collections.abc import Callable


def _number_type(convert: Callable[[str], float], low: float, high: float, what: str,
                 *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number in [low, high] (``(low, high]`` if
    ``low_open``): ``nan``, ``inf`` or a negative duration is a usage error (exit 2), never a
    value that silently skips a soak or spins a loop."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


#: The longest wait Python's threads and queues take (about 292 years): a larger timeout
#: overflows there.
MAX_SECONDS = threading.TIMEOUT_MAX
#: Seconds, 0 or more (a deadline, a soak, an age).
seconds = _number_type(float, 0.0, MAX_SECONDS, "a number of seconds from 0 to 9.2e9")
#: Seconds, more than 0 (an interval between cycles: 0 would spin).
positive_seconds = _number_type(float, 0.0, MAX_SECONDS, "a number of seconds > 0, at most 9.2e9",
                                low_open=True)
#: Any finite amount, 0 or more (a rate).
non_negative = _number_type(float, 0.0, math.inf, "a finite number >= 0")
#: A share of devices, 0..1.
share = _number_type(float, 0.0, 1.0, "a share from 0 to 1")
#: A count, 0 or more.
count = _number_type(int, 0, math.inf, "a whole number >= 0")
