"""What keeps int8 within a point of float: label smoothing against none, side by side.

    .venv/bin/python benchmarks/logits_bench.py [--tabular 100000 1000000] [--sensor 10]
        [--smoothing 0 0.1] [--json F]

For each dataset and each ``label_smoothing``, in one run: ingest once, then train (the
pipelines' defaults otherwise) and quantize to int8, and record the float and int8 accuracy on
the eval sample, and the range of the logits as int8 must hold them: 255 steps of the scale of
the tensor that feeds the model's softmax. A wide range is what costs int8 its accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _machine import machine_facts  # (benchmarks/ is the script folder)
from scale_bench import write_sensor, write_table


def logits_range(model: Path) -> float:
    """255 x the scale of the int8 tensor the SOFTMAX reads: the logits' quantized range."""
    from edgeship.components.quantize.tflite_model import read_operators
    from edgeship.litert import Quantization, load

    interpreter = load(str(model))
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    for op in read_operators(model)["operators"]:
        if op["op"] == "SOFTMAX":
            q = Quantization.of(details[op["inputs"][0]["name"]])
            return 255 * (q.step or 0.0)
    raise SystemExit(f"{model}: no SOFTMAX operator")


def measure(examples: Path, work: Path, smoothing: float, epochs: int) -> dict:
    from edgeship.components.quantize.executor import run_quantize
    from edgeship.components.train.executor import run_train

    model = work / f"model-{smoothing}"
    trained = run_train(str(examples), str(model), epochs=epochs, label_smoothing=smoothing)
    out = work / f"quantized-{smoothing}"
    summary = run_quantize(str(model), str(examples), str(out), str(work / f"b-{smoothing}"),
                           str(work / f"r-{smoothing}"), variants=["int8"], latency_runs=10)
    report = json.loads((out / "quantization_report.json").read_text())
    int8 = report["variants"]["int8"]
    return {"label_smoothing": smoothing, "float_accuracy": summary["float_accuracy"],
            "int8_accuracy": int8["accuracy"], "int8_delta_pp": int8["accuracy_delta_pp"],
            "logits_int8_range": round(logits_range(out / "model_int8.tflite"), 2),
            "remedy_applied": (report.get("int8_remedies") or {}).get("applied"),
            "epochs_run": trained["epochs"], "blessed": summary["blessed"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    ap.add_argument("--tabular", nargs="*", type=int, default=[100_000, 1_000_000])
    ap.add_argument("--sensor", nargs="*", type=int, default=[10])
    ap.add_argument("--smoothing", nargs="*", type=float, default=[0.0, 0.1])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from edgeship.components.ingest.executor import run_ingest
    from edgeship.pipelines.registry import default_parameters

    facts = machine_facts()
    print("machine:", json.dumps(facts), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="logits-bench-") as tmp:
        work = Path(tmp)
        datasets = [(f"tabular {n}", "tabular", write_table, n, "state") for n in args.tabular]
        datasets += [(f"sensor {n}x", "sensor", write_sensor, n, "label") for n in args.sensor]
        for name, kind, write, size, label in datasets:
            here = work / name.replace(" ", "-")
            here.mkdir()
            data = write(here / "data.csv", size)
            sensor: dict[str, Any] = {"group_column": "machine_id", "time_column": "time"}
            run_ingest(kind, str(data), str(here / "examples"), label=label,
                       **(sensor if kind == "sensor" else {}))
            data.unlink()
            epochs = default_parameters(kind)["epochs"]
            for smoothing in args.smoothing:
                result = {"data": name, **measure(here / "examples", here, smoothing, epochs)}
                rows.append(result)
                print(json.dumps(result), flush=True)
    print()
    print(f"{'data':<16} {'smoothing':>9} {'float':>7} {'int8':>7} {'delta pp':>9} "
          f"{'logits range':>13} {'remedy':>7}")
    for r in rows:
        print(f"{r['data']:<16} {r['label_smoothing']:>9} {r['float_accuracy']:>7.4f} "
              f"{r['int8_accuracy']:>7.4f} {r['int8_delta_pp']:>+9.2f} "
              f"{r['logits_int8_range']:>13} {r['remedy_applied'] or '-':>7}")
    by_data: dict[str, dict[float, dict]] = {}
    for r in rows:
        by_data.setdefault(r["data"], {})[r["label_smoothing"]] = r
    for name, runs in by_data.items():
        if 0.0 in runs and len(runs) > 1:
            base = runs[0.0]
            for smoothing, r in runs.items():
                if smoothing:
                    print(f"{name}: label_smoothing {smoothing} narrows the logits' int8 range "
                          f"{base['logits_int8_range'] / r['logits_int8_range']:.1f}x; int8 "
                          f"delta {base['int8_delta_pp']:+.2f} -> {r['int8_delta_pp']:+.2f} pp")
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
