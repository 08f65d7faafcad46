"""Progress of a long step, for the person watching ``edgeship run``.

A step calls :meth:`Progress.update` often (every batch, every few thousand rows) and a line
``edgeship-progress: <step>: <text>`` is printed when ``INTERVAL`` seconds have passed since the
last: a running step shows where it is about every 30 seconds, and neither the console nor a
non-interactive log is flooded, however many epochs or rows it goes through. The local runner
shows those lines on the console; ``run.log`` keeps them.
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

    def __init__(self, step: str, every: float | None = None, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.step, self.out, self.clock = step, out, clock
        self.every = INTERVAL if every is None else every
        self.last = clock()

    def update(self, text: str | Callable[[], str]) -> bool:
        """Print ``text`` (or what calling it returns, computed only then) if ``every`` seconds
        have passed since the last line; return whether it was printed."""
        now = self.clock()
        if now - self.last < self.every:
            return False
        text = text() if callable(text) else text
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


def epoch_callback(progress: Progress, epochs: int, steps_per_epoch: int) -> Any:
    """A Keras callback reporting the epoch, the step within it, and the loss and accuracy so
    far (Keras imported here, when training starts, not when this module is)."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            progress.update(lambda: self._line(f"step {batch + 1} of {steps_per_epoch}", logs))

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            progress.update(lambda: self._line("done", logs))

        def _line(self, where: str, logs: dict | None) -> str:
            logs = logs or {}
            numbers = ", ".join(f"{name} {float(logs[name]):.4f}" for name in
                                ("loss", "accuracy", "val_loss", "val_accuracy") if name in logs)
            return f"epoch {self.epoch + 1} of at most {epochs}, {where}: {numbers}"

    return EpochProgress()
