"""Float32 vs int8, side by side in one run, for the three bundled pipelines' models.

For each bundled dataset (sensor, vision, tabular) this runs the real steps with the pipelines'
default parameters: ingest (``builtin:<name>``) -> train -> quantize (float32 and int8 only),
and prints accuracy, file size ratio and latency ratio (LiteRT, single-example invokes, one
thread). The accuracy and size targets are checked at the end (exit status 1 if missed); the
latency ratio is reported as measured.

    .venv/bin/python benchmarks/quantize_bench.py [--workdir DIR] [--latency-runs N]
        [--models sensor vision tabular] [--hyperparameters JSON]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from _machine import describe_machine  # noqa: E402  (benchmarks/ is the script folder)


def bundled_model(name: str, work: Path, hyperparameters: dict) -> tuple[Path, Path]:
    """Ingest and train as ``edgeship run NAME`` does with its default parameters; non-empty
    ``hyperparameters`` override the model family's defaults, for sizing experiments."""
    from edgeship.components.ingest.executor import run_ingest
    from edgeship.components.train.executor import run_train
    from edgeship.pipelines.registry import default_ingest, default_parameters

    kind, data_path, ingest_args = default_ingest(name)
    examples, model = work / name / "examples", work / name / "model"
    run_ingest(kind, data_path, str(examples), **ingest_args)
    epochs = default_parameters(name)["epochs"]
    run_train(str(examples), str(model), epochs=epochs, hyperparameters=hyperparameters)
    return examples, model


def weight_bytes(path: Path) -> int:
    """Bytes of constant buffers (weights, biases) in a .tflite file; the rest is graph,
    names, quantization parameters and signature, roughly fixed per tensor and operator."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    return sum(len(b.data) for b in model.buffers or [] if b.data is not None)


def run(names: list[str], work: Path, latency_runs: int, hyperparameters: dict) -> list[dict]:
    from edgeship.components.quantize.executor import run_quantize

    rows = []
    for name in names:
        examples, model = bundled_model(name, work, hyperparameters)
        out = work / name
        run_quantize(
            str(model),
            str(examples),
            str(out / "quantized"),
            str(out / "blessing"),
            str(out / "report"),
            variants=["float32", "int8"],
            latency_runs=latency_runs,
        )
        report = json.loads((out / "quantized" / "quantization_report.json").read_text())
        f32, i8 = report["variants"]["float32"], report["variants"]["int8"]
        params = json.loads((model / "model_meta.json").read_text()).get("parameters")
        rows.append(
            {
                "model": name,
                "parameters": params,
                "eval_examples": report["eval_examples"],
                "float_savedmodel_acc": report["float_accuracy"],
                "float32_acc": f32["accuracy"],
                "int8_acc": i8["accuracy"],
                "int8_delta_pp": i8["accuracy_delta_pp"],
                "float32_bytes": f32["size_bytes"],
                "int8_bytes": i8["size_bytes"],
                "size_ratio": i8["size_bytes"] / f32["size_bytes"],
                "weights_ratio": weight_bytes(out / "quantized" / i8["file"])
                / weight_bytes(out / "quantized" / f32["file"]),
                "float32_ms": f32["latency_ms"]["median"],
                "int8_ms": i8["latency_ms"]["median"],
                "latency_ratio": i8["latency_ms"]["median"] / f32["latency_ms"]["median"],
                "edgetpu_mapped": report["edgetpu"]["analysis"]["mapped_share"],
                "blessed": report["blessed"],
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    head = (
        "| model | params | eval n | float acc | int8 acc | delta pp | float32 KiB | "
        "int8 KiB | size ratio | weights ratio | float32 ms | int8 ms | latency ratio | "
        "Edge TPU ops mapped (static) | blessed |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['parameters']} | {r['eval_examples']} | "
            f"{r['float32_acc']:.4f} | {r['int8_acc']:.4f} | {r['int8_delta_pp']:+.2f} | "
            f"{r['float32_bytes'] / 1024:.1f} | {r['int8_bytes'] / 1024:.1f} | "
            f"{r['size_ratio']:.3f} | {r['weights_ratio']:.3f} | "
            f"{r['float32_ms']:.4f} | {r['int8_ms']:.4f} | "
            f"{r['latency_ratio']:.2f} | {r['edgetpu_mapped']:.0%} | {r['blessed']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--workdir", default="")
    parser.add_argument("--latency-runs", type=int, default=1000)
    parser.add_argument("--models", nargs="*", default=["sensor", "vision", "tabular"])
    parser.add_argument(
        "--hyperparameters",
        type=json.loads,
        default={},
        help="JSON overrides of the chosen models' family defaults, e.g. with --models sensor: "
        '\'{"filters": 32}\'',
    )
    args = parser.parse_args()
    _check_hyperparameters(parser, args.models, args.hyperparameters)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="quantize-bench-") as tmp:
        work = Path(args.workdir or tmp)
        rows = run(args.models, work, args.latency_runs, args.hyperparameters)
    print(f"Machine: {describe_machine()}")
    print(f"Latency: median of {args.latency_runs} single-example invokes, 1 thread, LiteRT")
    print(table(rows))
    targets_met = all(r["int8_delta_pp"] >= -1.0 and r["size_ratio"] <= 0.30 for r in rows)
    print(
        f"Targets (int8 within 1.0 pp, int8 file <= 0.30 of float32): "
        f"{'met' if targets_met else 'NOT met'}"
    )
    return 0 if targets_met else 1


def _check_hyperparameters(parser: argparse.ArgumentParser, names: list[str], hp: dict) -> None:
    """Overrides must suit every chosen model's family: fail before minutes of training."""
    from edgeship.components.train.models import resolve_hyperparameters
    from edgeship.errors import InputError
    from edgeship.pipelines.registry import default_ingest

    for name in names:
        try:
            resolve_hyperparameters(default_ingest(name)[0], hp)
        except InputError as err:
            parser.error(f"--hyperparameters for {name}: {err}")


if __name__ == "__main__":
    sys.exit(main())
