"""The Beam pipeline shared by every kind: parse -> label index -> hash split -> TFRecords.

Each kind supplies ``build(pipeline) -> (items, bad_rows, class_names)``; this module turns the
items into serialized tf.Examples, splits them by a stable hash of their split key and writes
``Split-<name>/data-*.tfrecord.gz``. What the driver must check afterwards (examples per split
and class, the class list, bad rows) is written as small JSON-lines files to ``work`` and read
back, which works on any runner that shares the local filesystem, unlike runner-specific metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components._artifacts import LABEL_FEATURE, SPLITS, split_dir
from components.ingest._rows import BadRow, Item, in_eval, natural_sorted
from components.ingest._tfexample import serialize_example

Build = Callable[[Any], tuple[Any, Any, Any]]  # pipeline -> (items, bad rows, class names)


@dataclass
class Outcome:
    """What the pipeline found, for the driver's checks and the artifact's metadata."""

    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class name -> examples
    bad_count: int = 0
    bad_examples: list[BadRow] = field(default_factory=list)  # first few, in file/line order
    fatal: BadRow | None = None

    def total(self, split: str) -> int:
        return sum(self.counts[split].values())


def route(element: Any) -> Iterator[Any]:
    """Send bad rows to the ``bad`` output and everything else to the main one."""
    import apache_beam as beam

    if isinstance(element, BadRow):
        yield beam.pvalue.TaggedOutput("bad", element)
    else:
        yield element


def route_all(elements: Iterable[Any]) -> Iterator[Any]:
    for element in elements:
        yield from route(element)


def _encode(item: Item, classes: list[str], eval_ratio: float) -> tuple[str, int, bytes]:
    split_key, class_name, features = item
    index = classes.index(class_name)
    split = "eval" if in_eval(split_key, eval_ratio) else "train"
    return split, index, serialize_example(features, LABEL_FEATURE, index)


def run(
    build: Build, out_dir: Path, work: Path, eval_ratio: float, pipeline_args: list[str]
) -> Outcome:
    """Run the pipeline to completion and return what the driver needs to check."""
    import apache_beam as beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.options.pipeline_options import PipelineOptions

    for split in SPLITS:
        split_dir(out_dir, split).mkdir(parents=True, exist_ok=True)
    with beam.Pipeline(options=PipelineOptions(list(pipeline_args))) as pipeline:
        items, bad, class_names = build(pipeline)
        classes = (
            class_names
            | "DistinctClasses" >> beam.Distinct()
            | "ClassList" >> beam.combiners.ToList()
            | "SortClasses" >> beam.Map(natural_sorted)
        )
        encoded = items | "EncodeAndSplit" >> beam.Map(
            _encode, classes=beam.pvalue.AsSingleton(classes), eval_ratio=eval_ratio
        )
        by_split = encoded | "BySplit" >> beam.Partition(
            lambda e, _n: SPLITS.index(e[0]), len(SPLITS)
        )
        for split, examples in zip(SPLITS, by_split, strict=True):
            _ = (
                examples
                | f"Records-{split}" >> beam.Map(lambda e: e[2])
                | f"Write-{split}"
                >> beam.io.WriteToTFRecord(
                    str(split_dir(out_dir, split) / "data"),
                    file_name_suffix=".tfrecord.gz",
                    compression_type=CompressionTypes.GZIP,
                )
            )
        _ = (
            encoded
            | "SplitAndClass" >> beam.Map(lambda e: (e[0], e[1]))
            | "Count" >> beam.combiners.Count.PerElement()
            | "CountJson" >> beam.Map(lambda kv: json.dumps([kv[0][0], kv[0][1], kv[1]]))
            | "WriteCounts" >> beam.io.WriteToText(str(work / "counts"), file_name_suffix=".jsonl")
        )
        _ = (
            classes
            | "ClassesJson" >> beam.Map(json.dumps)
            | "WriteClasses"
            >> beam.io.WriteToText(str(work / "classes"), file_name_suffix=".jsonl")
        )
        _ = (
            bad
            | "BadJson" >> beam.Map(BadRow.to_json)
            | "WriteBad" >> beam.io.WriteToText(str(work / "bad"), file_name_suffix=".jsonl")
        )
    return _read_outcome(work)


def _lines(work: Path, prefix: str) -> Iterator[str]:
    for path in sorted(work.glob(f"{prefix}-*.jsonl")):
        with open(path) as handle:
            yield from (line for line in handle if line.strip())


def _read_outcome(work: Path, keep: int = 5) -> Outcome:
    (classes,) = [json.loads(line) for line in _lines(work, "classes")]
    counts: dict[str, dict[str, int]] = {s: dict.fromkeys(classes, 0) for s in SPLITS}
    for line in _lines(work, "counts"):
        split, index, count = json.loads(line)
        counts[split][classes[index]] = count
    outcome = Outcome(classes=classes, counts=counts)
    first: list[BadRow] = []
    for line in _lines(work, "bad"):
        row = BadRow.from_json(line)
        outcome.bad_count += 1
        if row.fatal and outcome.fatal is None:
            outcome.fatal = row
        first = sorted([*first, row], key=lambda r: (r.source, r.line))[:keep]
    outcome.bad_examples = first
    return outcome
