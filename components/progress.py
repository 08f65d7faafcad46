"""Progress of a long step, for the person watching ``edgeship run``.

A step reports where it is as often as it likes (every batch, every few thousand rows) through
its process-wide :func:`of` ``(step)``; a line ``edgeship-progress: <step>: <text> (<n> s)``
is printed at most every ``INTERVAL`` seconds, so neither the console nor a non-interactive log
is flooded however many epochs or rows go by. While a step runs as a pipeline step (its
component wraps the work in :func:`heartbeat`), a thread also prints the latest report once
``INTERVAL`` seconds have passed without a line: a stage that reports nothing for minutes (a
Beam shuffle, a model export) still shows that the step is alive, and for how long. The local
runner shows those lines on the console; ``run.log`` keeps them.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TextIO

MARKER = "edgeship-progress:"
INTERVAL = 30.0
#: How often the heartbeat thread looks whether a line is due.
HEARTBEAT_POLL = 1.0

Text = str | Callable[[], str]


class Progress:
    """Rate-limited progress lines of one step; safe to report to from several threads."""

    def __init__(self, step: str, every: float | None = None, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.step, self.out, self.clock = step, out, clock
        self.every = INTERVAL if every is None else every
        self.started = self.last = clock()
        self.text: Text = "started"
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        #: Whether a :func:`scope` runs it (else it is a process-wide fallback of :func:`of`).
        self.scoped = False

    def update(self, text: Text) -> bool:
        """Make ``text`` (or what calling it returns, computed only when printed) the latest
        report, and print it if a line is due; return whether one was printed."""
        self.text = text
        return self.tick()

    def count(self, what: str, n: int = 1) -> bool:
        """Add ``n`` to the step's count of ``what`` (across all the threads that count it)
        and report the total."""
        with self._lock:
            self.counts[what] += n
            total = self.counts[what]
        return self.update(f"{total} {what} so far")

    def tick(self) -> bool:
        """Print the latest report if ``every`` seconds have passed since the last line."""
        with self._lock:
            now = self.clock()
            if now - self.last < self.every:
                return False
            self.last = now
            text = self.text() if callable(self.text) else self.text
        print(
            f"{MARKER} {self.step}: {text} ({now - self.started:.0f} s)",
            file=self.out or sys.stdout,
            flush=True,
        )
        return True


_running: dict[str, Progress] = {}
_registry_lock = threading.Lock()


def of(step: str) -> Progress:
    """The progress of ``step`` in this process: the one of the enclosing :func:`scope` (or
    :func:`heartbeat`), else a process-wide one (a Beam worker process's, whose lines come
    only from its own reports)."""
    with _registry_lock:
        return _running.setdefault(step, Progress(step))


@contextlib.contextmanager
def scope(step: str, every: float | None = None, out: TextIO | None = None) -> Iterator[Progress]:
    """Run the body with a fresh :func:`of` ``(step)`` (counts from zero, time from now), or
    the one an enclosing scope already runs, and forget it at the end: a second run of a step
    in the same process starts again."""
    with _registry_lock:
        enclosing = _running.get(step)
        if enclosing is None or not enclosing.scoped:
            progress = _running[step] = Progress(step, every, out)
            progress.scoped = True
    if enclosing is not None and enclosing.scoped:
        yield enclosing
        return
    try:
        yield progress
    finally:
        with _registry_lock:
            if _running.get(step) is progress:
                del _running[step]


@contextlib.contextmanager
def heartbeat(step: str, every: float | None = None, out: TextIO | None = None) -> Iterator[None]:
    """Run the body in a :func:`scope` of ``step``, with a thread that prints the latest report
    whenever ``every`` seconds have passed without a line."""
    with scope(step, every, out) as progress:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(min(HEARTBEAT_POLL, progress.every)):
                progress.tick()

        thread = threading.Thread(target=beat, name=f"edgeship-progress-{step}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


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
            progress.update(self._line(f"step {batch + 1} of {steps_per_epoch}", logs))

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            progress.update(self._line("done", logs))

        def _line(self, where: str, logs: dict | None) -> Text:
            # The numbers are read now, in Keras' thread; the line is only formatted when
            # printed (perhaps by the heartbeat thread), from these copies.
            numbers = {
                name: logs[name]
                for name in ("loss", "accuracy", "val_loss", "val_accuracy")
                if logs and name in logs
            }
            epoch = self.epoch

            def line() -> str:
                shown = ", ".join(f"{name} {float(v):.4f}" for name, v in numbers.items())
                return f"epoch {epoch + 1} of at most {epochs}, {where}: {shown}"

            return line

    return EpochProgress()
