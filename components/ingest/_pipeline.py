"""The Beam pipeline shared by every kind: parse -> label index -> hash split -> TFRecords.

Each kind supplies ``build(pipeline) -> (items, bad_rows, class_names)``; this module turns the
items into serialized tf.Examples, splits them by a stable hash of their split key and writes
``Split-<name>/data-*.tfrecord.gz``. What the driver must check afterwards (examples per split
and class, the class list, bad rows) goes to one small JSON-lines report in ``work``, read back
after the run; unlike runner-specific metrics, that works the same on every runner.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship.components.artifacts import LABEL_FEATURE, SPLITS, split_dir
from edgeship.components.ingest._rows import BadRow, Item, in_eval, natural_sorted
from edgeship.components.ingest._tfexample import serialize_example

Build = Callable[[Any], tuple[Any, Any, Any]]  # pipeline -> (items, bad rows, class names)
#: Groups records are written in (see :func:`mix_bucket`): enough that each holds a few hundred
#: records of a million-row split, few enough to stay cheap for small ones.
MIX_BUCKETS = 4096


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
    from apache_beam.pvalue import TaggedOutput

    if isinstance(element, BadRow):
        yield TaggedOutput("bad", element)
    else:
        yield element


def mix_bucket(record: bytes) -> int:
    """Which of ``MIX_BUCKETS`` groups a record is written in: a stable hash of its bytes.

    A split is written bucket by bucket, so a file sorted by class or by time comes out mixed:
    consecutive records come from all over the input, and train's bounded shuffle buffer then
    sees every class in every stretch of the file. The same data gives the same order."""
    return int.from_bytes(hashlib.md5(record).digest()[:4], "big") % MIX_BUCKETS


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
    from apache_beam.io.textio import WriteToText
    from apache_beam.io.tfrecordio import WriteToTFRecord
    from apache_beam.pvalue import AsSingleton

    from edgeship.components import progress
    from edgeship.components._beam import count_progress, pipeline_options

    for split in SPLITS:
        split_dir(out_dir, split).mkdir(parents=True, exist_ok=True)
    options = pipeline_options(pipeline_args)
    with progress.scope("ingest"), beam.Pipeline(options=options) as pipeline:
        items, bad, class_names = build(pipeline)
        classes = (
            class_names
            | "DistinctClasses" >> beam.Distinct()
            | "ClassList" >> beam.combiners.ToList()
            | "SortClasses" >> beam.Map(natural_sorted)
        )
        items = items | "Progress" >> count_progress("ingest", "examples encoded")
        encoded = items | "EncodeAndSplit" >> beam.Map(
            _encode, classes=AsSingleton(classes), eval_ratio=eval_ratio
        )
        by_split = encoded | "BySplit" >> beam.Partition(
            # Beam documents a plain callable here; its type comment says WithTypeHints
            lambda e, _n: SPLITS.index(e[0]), len(SPLITS)  # pyright: ignore[reportArgumentType]
        )
        for split, examples in zip(SPLITS, by_split, strict=True):
            _ = (
                examples
                | f"Mix-{split}" >> beam.Map(lambda e: (mix_bucket(e[2]), e[2]))
                | f"Buckets-{split}" >> beam.GroupByKey()
                | f"Records-{split}" >> beam.FlatMap(lambda bucket: bucket[1])
                | f"Progress-{split}" >> count_progress("ingest", "examples written")
                | f"Write-{split}"
                >> WriteToTFRecord(
                    str(split_dir(out_dir, split) / "data"),
                    file_name_suffix=".tfrecord.gz",
                    compression_type=CompressionTypes.GZIP,
                )
            )
        # One small report file (a single sink keeps the pipeline, and its start-up, small).
        counts = (
            encoded
            | "SplitAndClass" >> beam.Map(lambda e: (e[0], e[1]))
            | "Count" >> beam.combiners.Count.PerElement()
            | "CountReport" >> beam.Map(lambda kv: json.dumps({"count": [*kv[0], kv[1]]}))
        )
        class_report = classes | "ClassReport" >> beam.Map(lambda c: json.dumps({"classes": c}))
        bad_report = bad | "BadReport" >> beam.Map(lambda b: json.dumps({"bad": b.to_dict()}))
        _ = (
            (counts, class_report, bad_report)
            | "Reports" >> beam.Flatten()
            | "WriteReport" >> WriteToText(str(work / "report"), file_name_suffix=".jsonl")
        )
    return _read_outcome(work)


def _where(row: BadRow) -> tuple[str, int]:
    return row.source, row.line


def _read_outcome(work: Path, keep: int = 5) -> Outcome:
    """Parse the report: the class list, examples per split and class, and bad rows."""
    outcome = Outcome(classes=[], counts={})
    counted: list[tuple[str, int, int]] = []
    for path in sorted(work.glob("report-*.jsonl")):
        with open(path) as handle:
            for line in handle:
                entry = json.loads(line)
                if "classes" in entry:
                    outcome.classes = entry["classes"]
                elif "count" in entry:
                    counted.append(tuple(entry["count"]))
                else:
                    row = BadRow(**entry["bad"])
                    outcome.bad_count += 1
                    if row.fatal:
                        candidates = [row] if outcome.fatal is None else [outcome.fatal, row]
                        outcome.fatal = min(candidates, key=_where)
                    else:
                        outcome.bad_examples = sorted([*outcome.bad_examples, row], key=_where)
                        del outcome.bad_examples[keep:]
    outcome.counts = {s: dict.fromkeys(outcome.classes, 0) for s in SPLITS}
    for split, index, count in counted:
        outcome.counts[split][outcome.classes[index]] = count
    return outcome
