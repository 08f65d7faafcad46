"""The sensor chain under kfp.local and under TFX's LocalDagRunner, side by side in one run.

Same data (the bundled recordings), same parameters, same machine: ``edgeship run sensor`` in
the main environment (.venv, kfp.local: each step its own process) and ``edgeship run sensor
--orchestrator tfx`` in TFX's (.venv-tfx, ``make tfx``: the steps in one process, ML Metadata in
SQLite), then TFX again into the same work folder, served from its cache. Prints wall times,
the per-step times each run reports, and the ratios.

    .venv/bin/python benchmarks/tfx_bench.py [--epochs 30] [--json F]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe_machine, machine_facts  # benchmarks/ is the script folder

ROOT = Path(__file__).resolve().parents[1]
STEPS = {"ingest": "Ingest", "validate": "Validate", "train": "Train", "evaluate": "Evaluate",
         "quantize": "Quantize", "push": "EdgePusher"}


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} failed: {proc.stderr.strip()[-2000:]}")
    return wall, proc.stdout


def step_times(stdout: str, names: list[str], column: int) -> dict[str, float]:
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) > column and parts[0] in names:
            found[parts[0]] = float(parts[column])
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()
    tfx_python = ROOT / ".venv-tfx" / "bin" / "python"
    if not tfx_python.exists():
        raise SystemExit("no .venv-tfx: run `make tfx` first")
    print(f"machine: {describe_machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        kfp_wall, kfp_out = timed([sys.executable, "-m", "edgeship", "run", "sensor",
                                   "--workdir", f"{tmp}/kfp", "--param", f"epochs={args.epochs}"])
        tfx_args = [str(tfx_python), "-m", "edgeship", "run", "sensor", "--orchestrator", "tfx",
                    "--workdir", f"{tmp}/tfx", "--param", f"train__epochs={args.epochs}"]
        tfx_wall, tfx_out = timed(tfx_args)
        cached_wall, cached_out = timed(tfx_args)
    kfp = step_times(kfp_out, list(STEPS), 2)
    tfx = step_times(tfx_out, list(STEPS.values()), 2)
    cached = step_times(cached_out, ["total"], 1)
    print(f"\n{'step':<10} {'kfp.local s':>12} {'TFX s':>8} {'TFX/kfp':>8}")
    for step, component in STEPS.items():
        a, b = kfp.get(step, 0.0), tfx.get(component, 0.0)
        print(f"{step:<10} {a:>12.1f} {b:>8.1f} {b / a if a else 0:>8.2f}")
    print(f"{'wall':<10} {kfp_wall:>12.1f} {tfx_wall:>8.1f} {tfx_wall / kfp_wall:>8.2f}")
    print(f"\nTFX again, nothing changed: {cached_wall:.1f} s wall, "
          f"{cached.get('total', 0.0):.1f} s in the pipeline (every step from the cache)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine_facts(), "epochs": args.epochs,
            "kfp": {"wall": kfp_wall, "steps": kfp}, "tfx": {"wall": tfx_wall, "steps": tfx},
            "tfx_cached": {"wall": cached_wall, "pipeline": cached.get("total")}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
