"""KFP interface of the validate step; the work is in ``edgeship.components.validate.executor``."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

from edgeship.artifact_types import ExampleAnomalies, ExampleStatistics, Schema
from edgeship.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate(
    examples: Input[Dataset],
    statistics: Output[ExampleStatistics],
    schema: Output[Schema],
    anomalies: Output[ExampleAnomalies],
    report: Output[Markdown],
    schema_path: str = "",
    baseline_statistics_path: str = "",
    drift_linf_threshold: float = 0.0,
    drift_js_threshold: float = 0.0,
    fail_on_anomalies: bool = True,
    beam_pipeline_args: list = [],  # noqa: B006 - KFP needs a literal default; never mutated
) -> str:
    """Validate examples with TFDV: statistics per split, a schema, anomalies and optional drift.

    Statistics are computed per split in one Beam pipeline; the schema is inferred from the train
    statistics (the label bounded to the known classes) unless a curated one is given; every
    split is then checked against the schema, and the train split against baseline statistics
    when drift is checked. With ``fail_on_anomalies`` the step fails on any anomaly, naming each
    by feature and split, and writes no output.

    Args:
        examples: Examples artifact written by ingest: ``Split-<name>/`` folders of gzipped
            TFRecord ``tf.Example``s (``Split-train`` required) plus ``examples_meta.json``.
            Example: the ``examples`` output of ``ingest``.
        statistics: Output folder in TFX's StatisticsGen layout:
            ``Split-<name>/FeatureStats.pb``, a binary ``DatasetFeatureStatisticsList`` (load with
            ``tfdv.load_stats_binary``). Pass it as a later run's ``baseline_statistics_path``.
        schema: Output folder holding ``schema.pbtxt``, a TFMD ``Schema`` text proto: the one
            used for validation (inferred, or the curated one with any drift comparators set).
        anomalies: Output folder in TFX's ExampleValidator layout: ``Split-<name>/SchemaDiff.pb``,
            a binary ``Anomalies`` proto per split (empty ``anomaly_info`` when clean).
        report: Markdown table of anomalies per split and feature, with measured drift, for the
            KFP UI.
        schema_path: Curated schema to validate against instead of inferring one: a
            ``schema.pbtxt`` file or a schema artifact folder holding one. Empty: infer.
            Example: ``"/data/schemas/sensor/schema.pbtxt"``.
        baseline_statistics_path: Statistics of earlier data to check drift against: a
            statistics artifact folder (its ``Split-train`` is used) or a ``FeatureStats.pb``
            file. Empty: no drift check. Example: ``"/runs/2024-05-01/statistics"``.
        drift_linf_threshold: L-infinity distance allowed between the baseline's and the train
            split's value distributions of each string feature; 0 leaves string features unchecked
            (unless the curated schema sets a comparator). Range 0..1. Example: ``0.1``.
        drift_js_threshold: Approximate Jensen-Shannon divergence allowed for each numeric
            feature; 0 leaves them unchecked (unless the schema sets one). Range 0..1.
            Example: ``0.1``.
        fail_on_anomalies: Fail the step, with every anomaly in the message, when any is found.
            False: write all outputs and report the anomalies in ``summary``.
        beam_pipeline_args: Apache Beam options for the statistics pipeline; without --runner,
            Beam's in-process FnApiRunner (DirectRunner would first try to download the Prism
            runner). Example: ``["--runner=FlinkRunner", "--flink_master=flink:8081"]``.

    Returns:
        The summary as JSON ``{"anomalies": {"train": ["'x': ..."], "eval": []}, "num_anomalies": 0,
            "features": 4, "statistics": {"train": 300, "eval": 100}, "schema": "inferred",
            "drift": {"x": {"JENSEN_SHANNON_DIVERGENCE": 0.01}}}``; ``statistics`` counts
            examples per split.
    """
    import json
    from pathlib import Path

    from edgeship.components.progress import heartbeat
    from edgeship.components.validate.executor import (
        ValidateParams,
        anomalies_markdown,
        run_validate,
    )
    from edgeship.errors import step_errors

    with step_errors("validate"), heartbeat("validate"):
        params = ValidateParams.of(locals())
        result = run_validate(examples.path, statistics.path, schema.path, anomalies.path, params)
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text(anomalies_markdown(result))
    splits = sorted(result["statistics"])
    statistics.metadata.update({"split_names": json.dumps(splits), "format": "FeatureStats.pb"})
    schema.metadata.update({"source": result["schema"], "features": result["features"]})
    anomalies.metadata.update(
        {"split_names": json.dumps(splits), "num_anomalies": result["num_anomalies"]}
    )
    return json.dumps(result, sort_keys=True)
