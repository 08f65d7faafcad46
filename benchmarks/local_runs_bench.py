"""Local runs side by side: kfp.local's process per step, the in-process runner, and the step
cache's reruns, for each pipeline, in one run on this machine.

Every run goes through ``edgeship run`` in its own process, as a user would. For each pipeline:

1. ``--runner kfp-local --no-cache``: each step its own Python (kfp.local's SubprocessRunner);
2. ``--runner in-process --no-cache``: every step in the ``edgeship`` process;
3. in-process into an empty step cache (the steps run and are stored);
4. the same with one quantize parameter changed (``max_accuracy_drop``): quantize and push run;
5. the same with nothing changed: only push runs.

Prints wall time (process start to exit) and pipeline time (the run table's total) of each, and
their ratio to the first.

    .venv/bin/python benchmarks/local_runs_bench.py [--pipelines sensor,tabular]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe_machine  # benchmarks/ is the script folder

CASES = [
    ("kfp-local, no cache", ["--runner", "kfp-local", "--no-cache"]),
    ("in-process, no cache", ["--runner", "in-process", "--no-cache"]),
    ("in-process, empty cache", []),
    ("one quantize parameter changed", ["--param", "max_accuracy_drop=2.5"]),
    ("nothing changed", ["--param", "max_accuracy_drop=2.5"]),
]


def run(pipeline: str, workdir: Path, flags: list[str], cache: Path) -> tuple[float, float, str]:
    """(wall seconds, pipeline seconds, statuses) of one ``edgeship run``; a failure ends it."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "edgeship", "run", pipeline, "--workdir", str(workdir), *flags],
        capture_output=True, text=True, env={**os.environ, "EDGESHIP_CACHE_DIR": str(cache)},
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{pipeline} {' '.join(flags)} failed: {proc.stderr.strip()}")
    total, statuses = 0.0, []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["total"]:
            total = float(parts[1])
        elif len(parts) >= 3 and parts[1] in ("SUCCESS", "CACHED"):
            statuses.append(f"{parts[0]}:{'C' if parts[1] == 'CACHED' else 'R'}")
    return wall, total, " ".join(statuses)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", default="sensor,tabular")
    args = parser.parse_args()
    print(f"machine: {describe_machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        for pipeline in args.pipelines.split(","):
            cache = Path(tmp) / f"cache-{pipeline}"
            print(f"\n{pipeline} (R: ran, C: reused from the step cache)")
            print(f"  {'run':<32} {'wall s':>7} {'ratio':>6} {'pipeline s':>10} {'ratio':>6}"
                  "  steps")
            first: tuple[float, float] | None = None
            for number, (name, flags) in enumerate(CASES):
                wall, total, statuses = run(pipeline, Path(tmp) / f"{pipeline}-{number}",
                                            flags, cache)
                first = first or (wall, total)
                print(f"  {name:<32} {wall:>7.1f} {wall / first[0]:>6.2f} {total:>10.1f} "
                      f"{total / first[1]:>6.2f}  {statuses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
