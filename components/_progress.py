"""Progress of a long step, for the person watching ``edgeship run``.

A step prints ``edgeship-progress: <step>: <text>`` at most every ``INTERVAL`` seconds (and once
at the end of each phase when asked); the local runner shows those lines on the console while
the step runs, and ``run.log`` keeps them. Rate-limited at the source, so neither the console
nor a non-interactive log is flooded, however many epochs or rows a step goes through.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

MARKER = "edgeship-progress:"
INTERVAL = 30.0


class Progress:
    """Rate-limited progress lines of one step."""

    def __init__(self, step: str, every: float = INTERVAL, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.step, self.every, self.out, self.clock = step, every, out, clock
        self.last = clock()

    def update(self, text: str, force: bool = False) -> bool:
        """Print ``text`` if ``every`` seconds have passed since the last line (or ``force``);
        return whether it was printed."""
        now = self.clock()
        if not force and now - self.last < self.every:
            return False
        self.last = now
        print(f"{MARKER} {self.step}: {text}", file=self.out or sys.stdout, flush=True)
        return True


def parse(line: str) -> tuple[str, str] | None:
    """``(step, text)`` of a progress line, None for any other line."""
    _, marker, rest = line.partition(MARKER)
    if not marker:
        return None
    step, _, text = rest.strip().partition(": ")
    return (step, text) if step and text else None


def epoch_callback(progress: Progress, epochs: int) -> Any:
    """A Keras callback reporting "epoch k of n" with the loss and accuracy (Keras imported
    here, when training starts, not when this module is)."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            numbers = ", ".join(f"{name} {logs[name]:.4f}" for name in
                                ("loss", "accuracy", "val_loss", "val_accuracy") if name in logs)
            progress.update(f"epoch {epoch + 1} of at most {epochs}: {numbers}")

    return EpochProgress()
