"""Wall time per step and in total for each bundled pipeline, run side by side on this machine.

Each pipeline runs through ``edgeship run`` in its own process, as a user would, so step times
include each step's own process start and imports (TensorFlow's ~13 s among them). Prints one
table per pipeline and each step's share of the run, plus the machine it ran on.

    .venv/bin/python benchmarks/pipelines_bench.py [--pipelines sensor,vision,tabular]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe_machine  # benchmarks/ is the script folder


def run(pipeline: str, base: Path) -> tuple[float, list[tuple[str, float]]]:
    """Wall time of ``edgeship run`` and each step's time from its summary (a run that fails
    ends the benchmark)."""
    workdir = base / pipeline
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "edgeship", "run", pipeline, "--workdir", str(workdir)],
        capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{pipeline} failed: {proc.stderr.strip()}")
    steps = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "SUCCESS":
            steps.append((parts[0], float(parts[2])))
    return wall, steps


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", default="sensor,vision,tabular")
    args = parser.parse_args()
    print(f"machine: {describe_machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        for pipeline in args.pipelines.split(","):
            wall, steps = run(pipeline, Path(tmp))
            print(f"\n{pipeline}: {wall:.1f} s wall for `edgeship run {pipeline}`")
            print(f"  {'step':<10} {'seconds':>8} {'share':>7}")
            for name, seconds in steps:
                print(f"  {name:<10} {seconds:>8.1f} {seconds / wall:>7.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
