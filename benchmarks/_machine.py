"""The machine a benchmark ran on: printed with its figures, which docs/benchmarks.md records."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _proc_field(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine_facts() -> dict:
    """CPU count and model, RAM, OS, Python and the 1-minute load while the benchmark ran."""
    mem = _proc_field("/proc/meminfo", "MemTotal").split()
    return {
        "nproc": os.cpu_count(),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or "unknown CPU",
        "ram_gib": round(int(mem[0]) / 1024**2, 1) if mem else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def describe_machine() -> str:
    """One line of :func:`machine_facts` for a benchmark's printed output."""
    f = machine_facts()
    return (
        f"{f['nproc']} CPUs (nproc), {f['cpu']}, {f['ram_gib']} GiB RAM, {f['os']}, "
        f"Python {f['python']}, 1-minute load {f['load_1min']}"
    )
