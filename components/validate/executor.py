"""validate: TFDV statistics, a schema and anomalies for an Examples artifact (TFX layouts).

What TFX splits over StatisticsGen, SchemaGen and ExampleValidator happens here in one step, so
that a pipeline stops before training on data that breaks its schema:

    statistics_dir/Split-<name>/FeatureStats.pb   DatasetFeatureStatisticsList (binary proto)
    schema_dir/schema.pbtxt                      Schema (text proto): inferred, or the curated one
    anomalies_dir/Split-<name>/SchemaDiff.pb      Anomalies (binary proto)

All three are written through ``atomic_output_dir`` and committed together at the very end, so a
run that fails on anomalies (or on anything else) leaves none of them behind.

TensorFlow, TFDV and Beam are imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.components._dataset import tfrecord_files
from edgeship.components.artifacts import (
    LABEL_FEATURE,
    atomic_output_dir,
    read_examples_meta,
    split_dir,
)
from edgeship.components.validate import _in_memory
from edgeship.errors import InputError
from edgeship.params import StepParams, is_number, require

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

log = logging.getLogger(__name__)

STATS_FILE = "FeatureStats.pb"
SCHEMA_FILE = "schema.pbtxt"
ANOMALIES_FILE = "SchemaDiff.pb"
TRAIN = "train"
# Above this many examples (all splits together, from examples_meta.json's counts) statistics are
# computed with a Beam pipeline; at or below it in memory (``_in_memory``), which gives the same
# statistics. Measured on this project's 2-core machine (docs/benchmarks.md, "Lean paths"), one
# split, Beam's in-process runner against the in-memory generators: 142 rows 3.5 s vs 0.35 s,
# 10,000 rows 4.0 s vs 0.45 s, 100,000 rows 8.5 s vs 2.9 s, 1,000,000 rows 18.8 s vs 7.0 s. Beam's
# fixed cost (2.5-4 s) dominates well past 100,000 rows and the in-process runner never caught
# up, so the bound is the largest size measured: beyond it Beam, whose runner can be
# distributed, as before. A run naming a Beam runner in beam_pipeline_args always gets Beam.
LEAN_MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class ValidateParams(StepParams):
    """Validate's parameters (the component's, one for one); see the validate README."""

    schema_path: str = ""
    baseline_statistics_path: str = ""
    drift_linf_threshold: float = 0.0
    drift_js_threshold: float = 0.0
    fail_on_anomalies: bool = True
    beam_pipeline_args: list[str] = field(default_factory=list)

    def check(self) -> None:
        for name in ("drift_linf_threshold", "drift_js_threshold"):
            value = getattr(self, name)
            require(is_number(value) and 0.0 <= value <= 1.0, name, value, "within 0..1")
        require(isinstance(self.fail_on_anomalies, bool), "fail_on_anomalies",
                self.fail_on_anomalies, "true or false")
        require(isinstance(self.beam_pipeline_args, list | tuple), "beam_pipeline_args",
                self.beam_pipeline_args, "a list of Beam options")


def run_validate(
    examples_dir: str,
    statistics_dir: str,
    schema_dir: str,
    anomalies_dir: str,
    params: ValidateParams | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Compute statistics per split, infer or load a schema, and check every split against it.

    The parameters are :class:`ValidateParams` (or the same names as keywords). Drift: when
    ``baseline_statistics_path`` is given, the train split is compared with the baseline's
    train statistics; thresholds > 0 set an L-infinity comparator on every string model input
    and a Jensen-Shannon comparator on every numeric one and the label (comparators already in
    a curated schema are kept where no threshold replaces them).

    Returns a JSON-able summary; raises ``InputError`` naming each anomaly (feature and split)
    when ``fail_on_anomalies`` and any is found, leaving no output behind.
    """
    p = ValidateParams.build(params, **overrides)
    schema_path, baseline_statistics_path = p.schema_path, p.baseline_statistics_path
    drift_linf_threshold, drift_js_threshold = p.drift_linf_threshold, p.drift_js_threshold
    meta = read_examples_meta(examples_dir)
    splits = _splits(examples_dir)
    files = {split: tfrecord_files(examples_dir, split) for split in splits}
    curated = load_schema(schema_path) if schema_path else None
    baseline = load_statistics(baseline_statistics_path) if baseline_statistics_path else None
    thresholds = drift_linf_threshold > 0 or drift_js_threshold > 0
    if baseline is None and thresholds:
        log.info("drift thresholds set but no baseline statistics given: drift not checked")
    if baseline is not None and not thresholds and not (curated and _has_drift_comparator(curated)):
        raise InputError(
            f"validate: baseline statistics {baseline_statistics_path} given, but no drift "
            "threshold is set and the schema has no drift comparators"
        )

    with contextlib.ExitStack() as stack:
        stats_out = stack.enter_context(atomic_output_dir(statistics_dir))
        schema_out = stack.enter_context(atomic_output_dir(schema_dir))
        anomalies_out = stack.enter_context(atomic_output_dir(anomalies_dir))

        stats = _generate_statistics(
            examples_dir, files, stats_out, [str(a) for a in p.beam_pipeline_args]
        )
        for split, split_stats in stats.items():
            if _num_examples(split_stats) == 0:
                raise InputError(f"{split_dir(examples_dir, split)}: no examples in the split")
        if curated is None:
            schema = infer_schema(stats[TRAIN], meta, examples_dir)
        else:
            schema = curated
        if baseline is not None:
            _set_drift_comparators(
                schema, drift_linf_threshold, drift_js_threshold, _model_inputs(meta)
            )
        _write_schema(schema, schema_out / SCHEMA_FILE)

        found: dict[str, list[str]] = {}
        drift: dict[str, dict[str, float]] = {}
        for split in splits:
            previous = baseline if split == TRAIN else None
            anomalies = _validate(stats[split], schema, previous)
            folder = split_dir(anomalies_out, split)
            folder.mkdir()
            (folder / ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())
            found[split] = describe_anomalies(anomalies)
            if previous is not None:
                drift = _drift_measurements(anomalies)

        num_anomalies = sum(len(items) for items in found.values())
        if num_anomalies and p.fail_on_anomalies:
            raise InputError(anomalies_message(found))
        if num_anomalies:
            log.warning("validate: %d anomalies (not failing): %s", num_anomalies, found)

    return {
        "anomalies": found,
        "num_anomalies": num_anomalies,
        "features": len(schema.feature),
        "statistics": {split: _num_examples(stats[split]) for split in splits},
        "schema": schema_path or "inferred",
        "drift": drift,
    }


def load_schema(path: str | os.PathLike) -> schema_pb2.Schema:
    """Load a Schema from ``schema.pbtxt`` or from a schema artifact folder that holds one."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = Path(path)
    if path.is_dir():
        path = path / SCHEMA_FILE
    if not path.is_file():
        raise InputError(f"{path}: schema not found")
    schema = schema_pb2.Schema()
    try:
        text_format.Parse(path.read_text(), schema)
    except (text_format.ParseError, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: not a Schema text proto ({first})") from None
    if not schema.feature:
        raise InputError(f"{path}: schema has no features")
    return schema


def load_statistics(path: str | os.PathLike) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Load statistics from a ``FeatureStats.pb`` or a statistics artifact (its Split-train)."""
    from google.protobuf.message import DecodeError
    from tensorflow_metadata.proto.v0 import statistics_pb2

    path = Path(path)
    if path.is_dir():
        path = split_dir(path, TRAIN) / STATS_FILE
    if not path.is_file():
        raise InputError(f"{path}: statistics not found")
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    try:
        stats.ParseFromString(path.read_bytes())
    except DecodeError as err:
        raise InputError(f"{path}: not a DatasetFeatureStatisticsList ({err})") from None
    if not stats.datasets or not stats.datasets[0].features:
        raise InputError(f"{path}: statistics hold no features")
    return stats


def infer_schema(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    meta: dict[str, Any],
    examples_dir: str | os.PathLike = "",
) -> schema_pb2.Schema:
    """TFDV's inferred schema, with the label bounded to the known classes.

    Passthrough string features (in the data but not model inputs, e.g. a sensor's group id)
    lose their inferred vocabulary: new groups in eval are expected, not anomalies. So do
    string features whose train values do not form a small domain (:func:`_small_domain`):
    names, codes and text whose eval values are new by nature, and which the model reads as
    out-of-vocabulary anyway. A missing feature, a type change and a new value of a small
    domain (a colour, an island) are still anomalies.
    """
    import tensorflow_data_validation as tfdv

    schema = tfdv.infer_schema(stats, infer_feature_shape=True)
    by_name = {feature.name: feature for feature in schema.feature}
    train = split_dir(examples_dir, TRAIN)
    for feature in meta.get("features", []):
        if feature["name"] not in by_name:
            raise InputError(f"{train}: feature '{feature['name']}' is absent from every example")
    label_name = meta.get("label_feature", LABEL_FEATURE)
    label = by_name.get(label_name)
    if label is None:
        raise InputError(f"{train}: label feature '{label_name}' is absent from every example")
    classes = meta.get("classes") or []
    if classes:
        label.int_domain.min = 0
        label.int_domain.max = len(classes) - 1
    model_inputs = _model_inputs(meta)
    distinct = _string_cardinality(stats)
    for feature in schema.feature:
        if feature.name not in model_inputs and feature.HasField("domain"):
            feature.ClearField("domain")
        elif feature.HasField("domain") and not _small_domain(*distinct.get(feature.name,
                                                                            (0, 0))):
            feature.ClearField("domain")
    used = {f.domain for f in schema.feature if f.HasField("domain")}
    kept = [d for d in schema.string_domain if d.name in used]
    del schema.string_domain[:]
    schema.string_domain.extend(kept)
    return schema


#: A string feature keeps its inferred domain (a new eval value is an anomaly) when it has at
#: most SMALL_DOMAIN distinct train values seen at least twice each on average, or at most
#: TFDV's 100 seen at least LARGE_DOMAIN_REPEATS times each on average.
SMALL_DOMAIN = 20
LARGE_DOMAIN_REPEATS = 10


def _small_domain(unique: int, values: int) -> bool:
    """Whether a string feature with ``unique`` distinct values among ``values`` non-missing
    train values is a closed set of categories (see ``SMALL_DOMAIN``)."""
    if unique <= SMALL_DOMAIN:
        return values >= 2 * unique
    return unique <= 100 and values >= LARGE_DOMAIN_REPEATS * unique


def _string_cardinality(stats: statistics_pb2.DatasetFeatureStatisticsList
                        ) -> dict[str, tuple[int, int]]:
    """Per string feature of the train statistics: (distinct values, non-missing values)."""
    found: dict[str, tuple[int, int]] = {}
    for dataset in stats.datasets[:1]:
        for feature in dataset.features:
            if feature.HasField("string_stats"):
                name = feature.path.step[-1] if feature.path.step else feature.name
                common = feature.string_stats.common_stats
                found[name] = (int(feature.string_stats.unique),
                               int(common.num_non_missing * max(common.avg_num_values, 1.0)))
    return found


def describe_anomalies(anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One ``'feature': description`` line per anomalous feature (and dataset-level anomaly)."""
    lines = []
    for name, info in sorted(anomalies.anomaly_info.items()):
        lines.append(f"'{name}': {_info_text(info)}")
    if anomalies.HasField("dataset_anomaly_info"):
        lines.append(f"(dataset): {_info_text(anomalies.dataset_anomaly_info)}")
    return lines


def anomalies_message(found: dict[str, list[str]]) -> str:
    parts = [f"Split-{split}: " + "; ".join(items) for split, items in found.items() if items]
    return "validate: anomalies in " + " | in ".join(parts)


def anomalies_markdown(summary: dict[str, Any]) -> str:
    """A table of anomalies for the KFP UI."""
    rows = [
        (split, *line.split(": ", 1))
        for split, lines in summary["anomalies"].items()
        for line in lines
    ]
    counts = ", ".join(f"{split}: {n}" for split, n in summary["statistics"].items())
    out = [
        "# Data validation",
        "",
        f"Schema: {summary['schema']} ({summary['features']} features). Examples: {counts}.",
        "",
    ]
    if not rows:
        out.append("No anomalies.")
    else:
        out += ["| split | feature | anomaly |", "| --- | --- | --- |"]
        out += [f"| {s} | {f} | {d.replace('|', '/')} |" for s, f, d in rows]
    for name, values in sorted(summary.get("drift", {}).items()):
        measured = ", ".join(f"{kind} {value:.3f}" for kind, value in values.items())
        out.append(f"\nDrift of {name}: {measured}")
    return "\n".join(out) + "\n"


def _info_text(info: anomalies_pb2.AnomalyInfo) -> str:
    text = info.short_description or "anomaly"
    detail = " ".join(info.description.split())
    return f"{text} ({detail})" if detail and detail != text else text


def _splits(examples_dir: str | os.PathLike) -> list[str]:
    folders = sorted(Path(examples_dir).glob("Split-*")) if Path(examples_dir).is_dir() else []
    names = [p.name[len("Split-") :] for p in folders if p.is_dir()]
    if TRAIN not in names:
        raise InputError(f"{split_dir(examples_dir, TRAIN)}: no train split in the examples")
    return [TRAIN] + [name for name in names if name != TRAIN]


def _generate_statistics(
    examples_dir: str | os.PathLike,
    files: dict[str, list[str]],
    out_dir: Path,
    beam_pipeline_args: list[str],
) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Every split's statistics into ``Split-<name>/FeatureStats.pb``: in memory up to
    ``LEAN_MAX_ROWS`` examples, else (or when the metadata has no counts, a Beam runner is
    named, or a sketch would not be exact) with one Beam pipeline.

    Written in TFX's StatisticsGen layout: a serialized DatasetFeatureStatisticsList.
    """
    from edgeship.components._beam import runner_named

    rows = _example_count(examples_dir, files)
    lean = rows is not None and rows <= LEAN_MAX_ROWS and not runner_named(beam_pipeline_args)
    if lean:
        stats = _statistics_in_memory(examples_dir, files)
        if all(_in_memory.exact(split_stats) for split_stats in stats.values()):
            for split, split_stats in stats.items():
                folder = split_dir(out_dir, split)
                folder.mkdir()
                (folder / STATS_FILE).write_bytes(split_stats.SerializeToString())
            log.info("validate: statistics of %d examples computed in memory", rows)
            return stats
        log.info("validate: a string feature has over %d distinct values: statistics with Beam",
                 _in_memory.MG_SKETCH_SIZE)
    return _beam_statistics(examples_dir, files, out_dir, beam_pipeline_args)


def _example_count(examples_dir: str | os.PathLike, files: dict[str, list[str]]) -> int | None:
    """The examples in these splits as ingest counted them; None when the metadata does not say
    (then the size is unknown and Beam computes the statistics)."""
    counts = read_examples_meta(examples_dir).get("counts")
    if not isinstance(counts, dict):
        return None
    total = 0
    for split in files:
        value = counts.get(split)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        total += value
    return total


def _statistics_in_memory(
    examples_dir: str | os.PathLike, files: dict[str, list[str]]
) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Each split's statistics without Beam; a read error is the Beam path's one line."""
    from edgeship.components import progress

    stats = {}
    try:
        with progress.scope("validate") as counter:
            for split, split_files in files.items():
                what = f"{split} examples"
                stats[split] = _in_memory.statistics(
                    split_files, lambda n, what=what: counter.count(what, n)
                )
    except InputError:
        raise
    except Exception as err:  # TensorFlow's reader and tfx_bsl's decoder raise their own types
        reason = _last_line(err)
        raise InputError(f"{examples_dir}: cannot compute statistics ({reason})") from err
    return stats


def _beam_statistics(
    examples_dir: str | os.PathLike,
    files: dict[str, list[str]],
    out_dir: Path,
    beam_pipeline_args: list[str],
) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """The statistics with one Beam pipeline for every split (TFDV's GenerateStatistics)."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from tfx_bsl.tfxio import tf_example_record

    from edgeship.components import progress
    from edgeship.components._beam import count_progress, pipeline_options

    options = tfdv.StatsOptions()
    paths = {}
    try:
        beam_options = pipeline_options(beam_pipeline_args)
        with progress.scope("validate"), beam.Pipeline(options=beam_options) as pipeline:
            for split, split_files in files.items():
                folder = split_dir(out_dir, split)
                folder.mkdir()
                paths[split] = folder / STATS_FILE
                source = tf_example_record.TFExampleRecord(
                    file_pattern=split_files, telemetry_descriptors=["edgeship", "validate"]
                )
                _ = (
                    pipeline
                    | f"Read[{split}]" >> source.BeamSource(options.desired_batch_size)
                    | f"Progress[{split}]" >> count_progress(
                        "validate", f"{split} examples", lambda batch: batch.num_rows)
                    | f"Stats[{split}]" >> tfdv.GenerateStatistics(options)
                    | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(str(paths[split]))
                )
    except InputError:
        raise
    except Exception as err:  # Beam re-raises reader errors in its own types, with a traceback
        reason = _last_line(err)
        raise InputError(f"{examples_dir}: cannot compute statistics ({reason})") from err
    return {split: load_statistics_file(path) for split, path in paths.items()}


def load_statistics_file(path: Path) -> statistics_pb2.DatasetFeatureStatisticsList:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    return statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes())


def _validate(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    previous: statistics_pb2.DatasetFeatureStatisticsList | None,
) -> anomalies_pb2.Anomalies:
    import tensorflow_data_validation as tfdv

    return tfdv.validate_statistics(stats, schema, previous_statistics=previous)


def _model_inputs(meta: dict[str, Any]) -> set[str]:
    """The features the model reads, and the label; the rest (e.g. group ids) pass through."""
    return {f["name"] for f in meta.get("features", [])} | {
        meta.get("label_feature", LABEL_FEATURE)
    }


def _set_drift_comparators(
    schema: schema_pb2.Schema, linf: float, js: float, model_inputs: set[str]
) -> None:
    """L-infinity on string features, Jensen-Shannon on numeric ones (TFDV's pairing).

    Passthrough features are left alone: new recording or machine ids are not drift.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    for feature in schema.feature:
        if feature.name not in model_inputs:
            continue
        if feature.type == schema_pb2.BYTES and linf > 0:
            feature.drift_comparator.infinity_norm.threshold = linf
        elif feature.type in (schema_pb2.INT, schema_pb2.FLOAT) and js > 0:
            feature.drift_comparator.jensen_shannon_divergence.threshold = js


def _has_drift_comparator(schema: schema_pb2.Schema) -> bool:
    return any(feature.HasField("drift_comparator") for feature in schema.feature)


def _drift_measurements(anomalies: anomalies_pb2.Anomalies) -> dict[str, dict[str, float]]:
    """Measured drift per feature, e.g. {"x": {"JENSEN_SHANNON_DIVERGENCE": 0.42}}."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    kinds = anomalies_pb2.DriftSkewInfo.Measurement.Type
    out: dict[str, dict[str, float]] = {}
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for measurement in info.drift_measurements:
            out.setdefault(name, {})[kinds.Name(measurement.type)] = round(measurement.value, 6)
    return out


def _write_schema(schema: schema_pb2.Schema, path: Path) -> None:
    from google.protobuf import text_format

    path.write_text(text_format.MessageToString(schema))


def _num_examples(stats: statistics_pb2.DatasetFeatureStatisticsList) -> int:
    return int(stats.datasets[0].num_examples) if stats.datasets else 0


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    line = lines[-1] if lines else type(err).__name__
    return line if len(line) <= 300 else line[:300] + "..."
