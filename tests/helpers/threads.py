"""Calls that must end: a test of a deadline fails, rather than hangs, when it is missed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def ended(call: Callable[[], Any], seconds: float = 120) -> Any:
    """What ``call()`` returned, or the exception it raised; the test fails when it has not
    ended after ``seconds``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"it had not ended after {seconds:g} s"
    return outcome[0]
