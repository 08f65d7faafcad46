"""Progress lines of long steps: rate-limited, machine-readable, cheap when not printed."""

from __future__ import annotations

import io

from edgeship.components._progress import MARKER, Progress, parse


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_most_every_interval_however_often_the_step_reports() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("train", every=30, out=out, clock=clock)
    printed = []
    for second in range(0, 100):  # a report every second for 100 s
        clock.now = float(second)
        if progress.update(f"second {second}"):
            printed.append(second)
    assert printed == [30, 60, 90]
    assert out.getvalue().splitlines()[0] == f"{MARKER} train: second 30"


def test_text_is_only_computed_when_it_is_printed() -> None:
    calls, clock = [], Clock()
    progress = Progress("evaluate", every=10, out=io.StringIO(), clock=clock)

    def text() -> str:
        calls.append(clock.now)
        return "busy"

    for second in range(25):
        clock.now = float(second)
        progress.update(text)
    assert calls == [10.0, 20.0]


def test_parse_reads_back_a_progress_line_and_nothing_else() -> None:
    out = io.StringIO()
    progress = Progress("ingest", every=0, out=out)
    progress.update("1200 examples so far: 40%")
    assert parse(out.getvalue()) == ("ingest", "1200 examples so far: 40%")
    assert parse("    " + out.getvalue()) == ("ingest", "1200 examples so far: 40%")
    assert parse("INFO - Executing task 'ingest'") is None
    assert parse(f"{MARKER} ingest") is None  # a step with no text is not a progress line
