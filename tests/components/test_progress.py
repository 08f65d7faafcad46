"""Progress lines of long steps: rate-limited, machine-readable, cheap when not printed."""

from __future__ import annotations

import io
import threading
import time

from edgeship.components.progress import MARKER, Progress, heartbeat, of, parse, scope


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
    assert out.getvalue().splitlines()[0] == f"{MARKER} train: second 30 (30 s)"


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
    assert parse(out.getvalue()) == ("ingest", "1200 examples so far: 40% (0 s)")
    assert parse("    " + out.getvalue()) == ("ingest", "1200 examples so far: 40% (0 s)")
    assert parse("INFO - Executing task 'ingest'") is None
    assert parse(f"{MARKER} ingest") is None  # a step with no text is not a progress line


def test_counts_from_several_threads_add_up() -> None:
    progress = Progress("validate", every=1e9, out=io.StringIO())
    threads = [
        threading.Thread(target=lambda: [progress.count("rows", 2) for _ in range(500)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert progress.counts["rows"] == 4000 and progress.text == "4000 rows so far"


def _wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_heartbeat_shows_a_step_that_reports_nothing_new_and_ends_with_it() -> None:
    """A long shuffle reports nothing for minutes: the heartbeat repeats the latest report,
    with the time the step has run, so the person watching sees it is alive."""
    out = io.StringIO()
    with heartbeat("ingest", every=0.01, out=out):
        assert of("ingest").out is out  # the step's reports go to the watched one
        of("ingest").count("examples", 7)
        assert _wait_for(lambda: out.getvalue().count("7 examples so far") >= 2)
    after = out.getvalue()
    time.sleep(0.05)
    assert out.getvalue() == after  # no line once the step is over
    assert of("ingest").out is None  # and the next run starts afresh
    assert all(parse(line)[0] == "ingest" for line in after.splitlines())


def test_a_scope_gives_each_run_its_own_count_and_reuses_an_enclosing_one() -> None:
    of("ingest").count("rows", 5)  # a process-wide count outside any run
    with scope("ingest", out=io.StringIO()) as first:
        assert of("ingest") is first and first.counts["rows"] == 0
        with scope("ingest") as inner:
            assert inner is first  # a Beam pipeline inside the step's heartbeat
        first.count("rows", 3)
    with scope("ingest", out=io.StringIO()) as second:
        assert second is not first and second.counts["rows"] == 0
