"""validate refuses bad input with one readable line naming the file or parameter, and leaves
none of its three outputs behind."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from tensorflow_metadata.proto.v0 import statistics_pb2

from edgeship.components.validate.executor import run_validate
from tests.helpers import builders
from tests.helpers.checks import assert_nothing_written, one_line_error


def run(examples: Path, root: Path, **kwargs) -> dict:
    return run_validate(str(examples), str(root / "statistics"), str(root / "schema"),
                        str(root / "anomalies"), **kwargs)


def baseline_statistics(folder: Path) -> Path:
    """A statistics artifact as validate writes it, with one feature: enough to be a baseline."""
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.datasets.add(num_examples=3).features.add().path.step.append("x")
    path = folder / "Split-train" / "FeatureStats.pb"
    path.parent.mkdir(parents=True)
    path.write_bytes(stats.SerializeToString())
    return folder


def test_bad_inputs_fail_with_one_line_naming_the_file(tmp_path: Path) -> None:
    examples = builders.tabular_examples(tmp_path / "examples")
    garbled = tmp_path / "schema.pbtxt"
    garbled.write_text("feature { name: 'x' type: NOT_A_TYPE }\n")
    cases = [
        ({"schema_path": str(tmp_path / "nowhere")}, "nowhere: schema not found"),
        ({"schema_path": str(garbled)}, f"{garbled}: not a Schema text proto"),
        ({"baseline_statistics_path": str(tmp_path)}, "Split-train/FeatureStats.pb: statistics"),
        ({"drift_js_threshold": 1.5}, "drift_js_threshold: 1.5, must be within 0..1"),
        ({"baseline_statistics_path": str(baseline_statistics(tmp_path / "stats"))},
         "no drift threshold is set"),
        ({"fail_on_anomalis": False}, "unknown parameter"),
    ]
    for kwargs, expected in cases:
        message = one_line_error(lambda kw=kwargs: run(examples, tmp_path / "out", **kw), ".")
        assert expected in message, kwargs
    one_line_error(lambda: run(tmp_path / "missing", tmp_path / "out"),
                   "examples_meta.json: examples metadata not found")
    assert_nothing_written(tmp_path / "out")


def test_corrupt_tfrecords_fail_naming_the_examples(tmp_path: Path) -> None:
    examples = shutil.copytree(builders.tabular_examples(tmp_path / "built"),
                               tmp_path / "examples")
    (record,) = (examples / "Split-eval").glob("*.gz")
    record.write_bytes(gzip.compress(b"not a tfrecord, " * 20))
    message = one_line_error(lambda: run(examples, tmp_path / "out"), "cannot compute statistics")
    assert str(examples) in message
    assert_nothing_written(tmp_path / "out")
