"""Ingest: CSV tables, CSV time series or image folders -> an Examples artifact (TFX layout).

Plain Python over local paths; no kfp import, and Apache Beam only inside functions, so that
importing this module (or the component) stays cheap. The driver checks what it can up front
(paths, header, label column, column types, classes), then one Beam pipeline parses, labels,
splits and writes; afterwards the driver applies the bad-row limit and the class checks before
the artifact is moved into place, so a failed step leaves nothing at ``output_dir``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship.components._beam import count_progress
from edgeship.components.artifacts import (
    EXAMPLE_KINDS as KINDS,
)
from edgeship.components.artifacts import (
    EXAMPLES_META,
    LABEL_FEATURE,
    atomic_output_dir,
    write_json,
)
from edgeship.components.ingest import _csv, _images, _pipeline, _sensor, _tabular, datasets
from edgeship.components.ingest._rows import BadRow
from edgeship.errors import InputError
from edgeship.params import StepParams, is_int, is_number, require

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """A kind's pipeline builder plus the metadata known before the pipeline runs."""

    build: _pipeline.Build
    features: list[dict[str, Any]]
    extra_meta: dict[str, Any] = field(default_factory=dict)
    passthrough: list[str] = field(default_factory=list)
    #: Called after the pipeline ran, for what only the data could tell (the sensor example
    #: shape): completes ``features`` and ``extra_meta`` and returns lines for the summary.
    finish: Callable[[], dict[str, Any]] | None = None


@dataclass(frozen=True)
class IngestParams(StepParams):
    """Ingest's parameters (the component's, one for one); see the ingest README."""

    kind: str
    data_path: str
    label: str = "label"
    group_column: str = ""
    time_column: str = ""
    window: int = 0
    stride: int = 0
    image_size: int = 0
    channels: int = 0
    eval_ratio: float = 0.2
    max_bad_rows: int = 0
    column_types: dict[str, str] = field(default_factory=dict)
    exclude_columns: str = ""
    beam_pipeline_args: list[str] = field(default_factory=list)

    def check(self) -> None:
        require(self.kind in KINDS, "kind", self.kind, f"one of {', '.join(KINDS)}")
        require(is_number(self.eval_ratio) and 0.0 < self.eval_ratio < 1.0, "eval_ratio",
                self.eval_ratio, "between 0 and 1 (exclusive)")
        if self.kind == "sensor":
            require(is_int(self.window) and (self.window == 0 or self.window >= 2), "window",
                    self.window, ">= 2, or 0 to take it from the recordings")
            require(is_int(self.stride) and self.stride >= 0, "stride", self.stride,
                    ">= 1, or 0 for half the window")
        if self.kind == "image":
            require(is_int(self.image_size) and 0 <= self.image_size <= 1024, "image_size",
                    self.image_size, "between 1 and 1024, or 0 to take it from the images")
            require(self.channels in (0, 1, 3), "channels", self.channels,
                    "1 (grey), 3 (RGB), or 0 to take it from the images")
        require(is_int(self.max_bad_rows) and self.max_bad_rows >= 0, "max_bad_rows",
                self.max_bad_rows, ">= 0")
        require(isinstance(self.column_types, dict), "column_types", self.column_types,
                'a {column: "float" | "string"} object')
        require(isinstance(self.exclude_columns, str), "exclude_columns",
                self.exclude_columns, "column names separated by commas")
        require(isinstance(self.beam_pipeline_args, list | tuple), "beam_pipeline_args",
                self.beam_pipeline_args, "a list of Beam options")


def run_ingest(
    kind: str,
    data_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    params: IngestParams | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Write the Examples artifact for ``data_path`` to ``output_dir``; return a summary.

    ``data_path`` is a CSV file, a folder of CSV files (same header), an image folder, or
    ``builtin:sensor|vision|tabular``; the other parameters are :class:`IngestParams` (or the
    same names as keywords). Raises InputError (one line naming the file, line or column) for
    bad input, leaving nothing at ``output_dir``.
    """
    data_path, output_dir = os.fspath(data_path), os.fspath(output_dir)
    p = IngestParams.build(params, kind=kind, data_path=data_path, **overrides)
    group_column, time_column = p.group_column, p.time_column
    image_size, channels = p.image_size, p.channels
    with tempfile.TemporaryDirectory(prefix="edgeship-ingest-") as tmp:
        work = Path(tmp)
        path = Path(data_path)
        if data_path.startswith(datasets.BUILTIN_PREFIX):
            path = _builtin(kind, data_path, work / "data")
            defaults = datasets.DEFAULTS[kind]
            group_column = group_column or defaults.get("group_column", "")
            time_column = time_column or defaults.get("time_column", "")
            image_size = image_size or defaults.get("image_size", 0)
        if kind == "tabular":
            plan = _plan_tabular(path, p.label, p.column_types, _names(p.exclude_columns))
        elif kind == "sensor":
            plan = _plan_sensor(
                path, p.label, group_column, time_column, p.window, p.stride, p.column_types,
                work,
            )
        else:
            plan = _plan_images(path, image_size, channels)
        with atomic_output_dir(output_dir) as out:
            log.info("ingest %s from %s (eval_ratio=%s)", kind, data_path, p.eval_ratio)
            outcome = _pipeline.run(
                plan.build, out, work, p.eval_ratio, list(p.beam_pipeline_args)
            )
            notes = plan.finish() if plan.finish else {}
            whole = plan.extra_meta.get("sensor_mode") == "whole"  # no window to fall short of
            _check_outcome(outcome, p.max_bad_rows, data_path, kind,
                           0 if whole else plan.extra_meta.get("window", p.window),
                           plan.extra_meta.get("recordings", ""))
            meta = {
                "kind": kind,
                "label_feature": LABEL_FEATURE,
                "classes": outcome.classes,
                "features": plan.features,
                "passthrough": plan.passthrough,
                "counts": {s: outcome.total(s) for s in outcome.counts},
                "class_counts": outcome.counts,
                "bad_rows": outcome.bad_count,
                "source": data_path,
                "eval_ratio": p.eval_ratio,
                **plan.extra_meta,
            }
            write_json(out / EXAMPLES_META, meta)
    log.info(
        "ingest wrote %s: %s, %d bad rows dropped", output_dir, meta["counts"], meta["bad_rows"]
    )
    return {
        "rows": meta["counts"],
        "bad_rows": meta["bad_rows"],
        "classes": meta["classes"],
        "examples": str(output_dir),
        **notes,
    }


def _builtin(kind: str, data_path: str, folder: Path) -> Path:
    name = data_path[len(datasets.BUILTIN_PREFIX) :]
    if name not in datasets.NAMES:
        raise InputError(f"{data_path}: unknown bundled dataset; use one of {datasets.NAMES}")
    if datasets.KIND[name] != kind:
        raise InputError(f"{data_path} is {datasets.KIND[name]} data, not {kind}")
    return datasets.materialize(name, folder)


def _read_records(path: str) -> Iterator[Any]:
    """Records of one file, or a fatal bad row when the file itself cannot be read."""
    try:
        yield from _csv.iter_records(Path(path))
    except InputError as err:
        yield BadRow(path, 0, str(err).removeprefix(f"{path}: "), fatal=True)


def _names(text: str) -> list[str]:
    """Comma-separated column names, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _plan_tabular(path: Path, label: str, column_types: dict[str, str] | None,
                  exclude: list[str] | None = None) -> Plan:
    """Type the columns, leave out those that cannot be features (identifiers, free text, the
    user's ``exclude`` list), read dates as their numeric parts; each such decision is one
    line of the summary (``columns``)."""
    files = _csv.csv_files(path)
    header = _csv.read_headers(files)
    _csv.require_column(label, header, "label", str(files[0]))
    if LABEL_FEATURE in header and label != LABEL_FEATURE:
        raise InputError(
            f"{files[0]}: column '{LABEL_FEATURE}' clashes with the label feature; rename it"
        )
    types = _csv.infer_types(files, header, column_types)
    columns = _tabular.profile_columns(header, types, _csv.sample_rows(files, header), label,
                                       dict(column_types or {}), list(exclude or []),
                                       str(files[0]))
    features: list[dict[str, Any]] = []
    for name in header:
        if name == label or name in columns.excluded:
            continue
        if name in columns.dates:
            features += [{"name": part, "dtype": "float", "shape": [1]}
                         for part in columns.dates[name].feature_names()]
        else:
            features.append({"name": name, "dtype": types[name], "shape": [1]})
    if not features:
        raise InputError(f"{files[0]}: no feature columns besides the label '{label}'"
                         + (" (the others are left out: see exclude_columns)"
                            if columns.excluded else ""))
    log.info("tabular columns: %s", {f["name"]: f["dtype"] for f in features})
    notes = columns.lines()
    for line in notes:
        log.info("column %s", line)
    sources = [str(f) for f in files]

    def build(pipeline: Any) -> tuple[Any, Any, Any]:
        import apache_beam as beam

        parsed = (
            pipeline
            | "Files" >> beam.Create(sources)
            | "ReadCsv" >> beam.FlatMap(_read_records)
            | "ReadProgress" >> count_progress("ingest", "rows read")
            | "Spread" >> beam.Reshuffle()
            | "Parse"
            >> beam.FlatMap(
                lambda r: _pipeline.route(
                    r if isinstance(r, BadRow) else _tabular.parse_row(r, header, types, label,
                                                                      columns)
                )
            ).with_outputs("bad", main="items")
        )
        class_names = parsed.items | "ClassNames" >> beam.Map(lambda item: item[1])
        return parsed.items, parsed.bad, class_names

    extra = {"label_column": label, "column_types": types,
             "excluded_columns": columns.excluded,
             "date_columns": {d.name: d.feature_names() for d in columns.dates.values()}}
    return Plan(build, features, extra, finish=lambda: {"columns": notes} if notes else {})


def _plan_sensor(
    path: Path,
    label: str,
    group_column: str,
    time_column: str,
    window: int,
    stride: int,
    column_types: dict[str, str] | None,
    work: Path,
) -> Plan:
    """Parse rows, group them, choose the example shape from the recordings' lengths (unless
    ``window`` is given) and cut examples in it; ``finish`` reads the shape back for the meta."""
    files = _csv.csv_files(path)
    header = _csv.read_headers(files)
    source = str(files[0])
    _csv.require_column(label, header, "label", source)
    for name, what in ((group_column, "group"), (time_column, "time")):
        if name:
            _csv.require_column(name, header, what, source)
    roles = {label, group_column, time_column} - {""}
    types = _csv.infer_types(files, header, column_types)
    others = [n for n in header if n not in roles]
    text = [n for n in others if types[n] != "float"]
    if text:
        raise InputError(
            f"{source}: column(s) {', '.join(text)} are not numeric; sensor channels must be "
            f"numbers (pass a recording id column as group_column)"
        )
    if not others:
        raise InputError(f"{source}: no channel columns besides {', '.join(sorted(roles))}")
    clash = [n for n in [*others, group_column] if n == LABEL_FEATURE and label != LABEL_FEATURE]
    if clash:
        raise InputError(f"{source}: column '{LABEL_FEATURE}' clashes with the label feature")
    if not time_column and {"time", "timestamp"} & set(others):
        log.warning("no time_column given: rows stay in file order and 'time' is a channel")
    if not group_column:
        log.warning("no group_column: overlapping windows of one recording may span train/eval")
    columns = _sensor.Columns(tuple(header), label, tuple(others), group_column, time_column)
    sources = [str(f) for f in files]

    shape_file = work / "sensor-shape"

    def build(pipeline: Any) -> tuple[Any, Any, Any]:
        import apache_beam as beam
        from apache_beam.io.textio import WriteToText
        from apache_beam.pvalue import AsSingleton

        parsed = (
            pipeline
            | "Files" >> beam.Create(sources)
            | "ReadCsv" >> beam.FlatMap(_read_records)
            | "ReadProgress" >> count_progress("ingest", "rows read")
            | "Parse"
            >> beam.FlatMap(
                lambda r: _pipeline.route(
                    r if isinstance(r, BadRow) else _sensor.parse_row(r, columns)
                )
            ).with_outputs("bad", main="rows")
        )
        groups = parsed.rows | "ByGroup" >> beam.GroupByKey()
        # One small list (a length per recording) decides the shape of every example.
        lengths = (
            groups
            | "Lengths" >> beam.FlatMap(lambda kv: _sensor.recording_lengths(kv[1]))
            | "LengthList" >> beam.combiners.ToList()
        )
        chosen = lengths | "ChooseShape" >> beam.Map(
            lambda ns: (_sensor.choose_shape(ns, window, stride), _sensor.describe_lengths(ns))
        )
        items = groups | "Examples" >> beam.FlatMap(
            lambda kv, shape: _sensor.make_examples(kv[0], list(kv[1]), columns, shape[0]),
            shape=AsSingleton(chosen),
        )
        _ = (
            chosen
            | "ShapeJson" >> beam.Map(
                lambda c: json.dumps({"shape": c[0].to_dict(), "recordings": c[1]})
            )
            | "WriteShape" >> WriteToText(str(shape_file), file_name_suffix=".json", num_shards=1)
        )
        # Classes come from rows, not windows: a class too short for one window is reported.
        class_names = parsed.rows | "ClassNames" >> beam.Map(lambda kv: kv[1][3])
        return items, parsed.bad, class_names

    features: list[dict[str, Any]] = []
    extra: dict[str, Any] = {
        "label_column": label,
        "group_column": group_column,
        "time_column": time_column,
    }
    plan = Plan(build, features, extra, [group_column] if group_column else [])

    def finish() -> dict[str, str]:
        written = sorted(shape_file.parent.glob(f"{shape_file.name}-*.json"))
        (line,) = [t for f in written for t in f.read_text().splitlines() if t.strip()]
        chosen = json.loads(line)
        shape = _sensor.Shape.from_dict(chosen["shape"])
        features.extend(
            {"name": n, "dtype": "float", "shape": [shape.length]} for n in others
        )
        extra.update({
            "window": shape.length,
            "stride": shape.stride,
            "sensor_mode": shape.mode,
            "sensor_shape": shape.describe(),
            "recordings": chosen["recordings"],
        })
        if shape.reason != "given":
            log.info("sensor examples: %s; %s", shape.describe(), chosen["recordings"])
        return {"sensor_shape": shape.describe()}

    plan.finish = finish
    return plan


def _plan_images(path: Path, image_size: int, channels: int) -> Plan:
    classes, images = _images.list_images(path)
    if len(classes) < 2:
        raise InputError(f"{path}: found 1 class folder ('{classes[0]}'); need at least 2")
    root = str(path)
    chosen = {"image_size": "given", "channels": "given"}
    if not image_size or not channels:
        seen = _images.inspect(path, [rel for rel, _ in images])
        if not image_size:
            image_size, chosen["image_size"] = seen.size, seen.size_reason
        if not channels:
            channels, chosen["channels"] = seen.channels, seen.channels_reason
        log.info("images: %dx%d, %d channel(s) (%s; %s)", image_size, image_size, channels,
                 chosen["image_size"], chosen["channels"])

    def build(pipeline: Any) -> tuple[Any, Any, Any]:
        import apache_beam as beam

        loaded = (
            pipeline
            | "Images" >> beam.Create(images)
            | "Spread" >> beam.Reshuffle()
            | "Decode"
            >> beam.FlatMap(
                lambda e: _pipeline.route(
                    _images.load_image(root, e[0], e[1], image_size, channels)
                )
            ).with_outputs("bad", main="items")
        )
        class_names = pipeline | "ClassFolders" >> beam.Create(classes)
        return loaded.items, loaded.bad, class_names

    shape = [image_size, image_size, channels]
    features = [{"name": _images.IMAGE_FEATURE, "dtype": "float", "shape": shape}]
    return Plan(build, features, {"image_size": image_size, "channels": channels,
                                  "image_shape_from": chosen})


def _no_training_examples(
    outcome: _pipeline.Outcome, empty: list[str], source: str, kind: str, window: int,
    recordings: str = "",
) -> str:
    """One sentence naming the classes without training examples, and what to do."""
    if kind == "sensor" and window and outcome.total("train") + outcome.total("eval") == 0:
        found = f": found {recordings}" if recordings else ""
        return (
            f"{source}: no recording has a run of one label at least window={window} rows "
            f"long, so no window could be cut; lower window, or leave it at 0 to take it from "
            f"the recordings (or check group_column){found}"
        )
    named = [f"'{c}' ({outcome.counts['eval'][c]} in eval)" for c in empty]
    subject = f"class {named[0]} has" if len(named) == 1 else f"classes {', '.join(named)} have"
    hint = f" (a window needs {window} rows of one label in one recording)"
    return (
        f"{source}: {subject} no examples in the train split; add data for "
        f"{'it' if len(named) == 1 else 'them'}" + (hint if kind == "sensor" and window else "")
    )


def _check_outcome(
    outcome: _pipeline.Outcome, max_bad_rows: int, source: str, kind: str, window: int,
    recordings: str = "",
) -> None:
    """Fail on what a later step could not use: too many bad rows, too few classes, gaps."""
    if outcome.fatal is not None:
        raise InputError(f"{outcome.fatal.where()}: {outcome.fatal.reason}")
    if outcome.bad_count > max_bad_rows:
        first = outcome.bad_examples[0]
        more = outcome.bad_count - 1
        tail = f" (and {more} more malformed)" if more else ""
        limit = (
            "; set max_bad_rows to drop malformed rows"
            if max_bad_rows == 0
            else f"; more than max_bad_rows={max_bad_rows}"
        )
        raise InputError(f"{first.where()}: {first.reason}{tail}{limit}")
    if outcome.bad_count:
        log.warning(
            "dropped %d malformed rows, e.g. %s",
            outcome.bad_count,
            "; ".join(f"{b.where()}: {b.reason}" for b in outcome.bad_examples),
        )
    classes = outcome.classes
    if len(classes) < 2:
        found = f"only class '{classes[0]}'" if classes else "no usable rows"
        raise InputError(f"{source}: found {found}; need at least 2 classes")
    empty = [c for c in classes if outcome.counts["train"][c] == 0]
    if empty:
        raise InputError(_no_training_examples(outcome, empty, source, kind, window, recordings))
    if outcome.total("eval") == 0:
        raise InputError(f"{source}: the eval split is empty; add data or raise eval_ratio")
    missing = [c for c in classes if outcome.counts["eval"][c] == 0]
    if missing:
        log.warning("classes with no eval examples: %s", ", ".join(missing))
