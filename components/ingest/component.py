"""KFP interface of the ingest step; the work is in ``edgeship.components.ingest.executor``."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from edgeship.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(
    kind: str,
    data_path: str,
    examples: Output[Dataset],
    label: str = "label",
    group_column: str = "",
    time_column: str = "",
    window: int = 0,
    stride: int = 0,
    image_size: int = 0,
    channels: int = 0,
    eval_ratio: float = 0.2,
    max_bad_rows: int = 0,
    column_types: dict = {},  # noqa: B006 - KFP needs a literal default; it is never mutated
    exclude_columns: str = "",
    beam_pipeline_args: list = [],  # noqa: B006
) -> str:
    """Turn a CSV table, CSV time series or image folder into a TFX-layout Examples artifact.

    Args:
        kind: "tabular" (one example per CSV row), "sensor" (fixed windows cut from a CSV time
            series, or whole recordings) or "image" (one example per image file).
        data_path: a CSV file, a folder of CSV files with one header, a folder of
            ``<class>/*.png|*.jpg|*.jpeg``, or ``builtin:sensor`` / ``builtin:vision`` /
            ``builtin:tabular`` for the bundled data. Example: ``/data/vibration.csv``.
        examples: output Examples folder: ``Split-train/`` and ``Split-eval/`` holding gzipped
            TFRecord ``tf.Example`` files (``data-*.tfrecord.gz``) and ``examples_meta.json``
            (kind, classes, features with dtype and shape, counts per split and class,
            bad_rows). Every example has an int64 ``label``: an index into meta ``classes``.
        label: CSV column holding the class name (tabular, sensor). Example: "species".
        group_column: sensor: recording/machine/session id column; windows never cross a group
            and a group's windows all land in one split. Example: "machine_id".
        time_column: sensor: column the rows of a group are sorted by (numbers or ISO-8601);
            empty keeps file order. Example: "time".
        window: sensor: rows per window; each channel becomes a float feature of this length.
            0 takes it from the recordings (label runs per group): 128 when most are that
            long; else the shortest when they are of about one length; else each recording
            is one example, resampled to the longest's length (at most 128).
        stride: sensor: rows between the starts of consecutive windows; 0 is half the window.
        image_size: image: images are resized to image_size x image_size pixels; 0 takes the
            most common longer side of the images, at most 64 (16 for ``builtin:vision``).
        channels: image: 1 for grey, 3 for RGB, 0 for colour when any image has it; the
            feature ``image`` has shape [image_size, image_size, channels], values 0..255.
        eval_ratio: share of examples (by a stable hash of row content, image path, or group)
            that goes to the eval split. Example: 0.2.
        max_bad_rows: malformed rows (wrong field count, non-number in a numeric column,
            missing label, undecodable image) to drop and count before failing; 0 fails on the
            first one, naming its file and line.
        column_types: tabular/sensor: override inferred column types, {column: "float"|"string"}.
            Example: {"zip_code": "string"}.
        exclude_columns: tabular: columns to leave out, separated by commas. Identifiers,
            free text and dates are found without it (dates become numeric parts); each
            column left out or parsed is one line of the summary's "columns".
            Example: "customer_name,notes".
        beam_pipeline_args: Apache Beam pipeline options; without --runner, Beam's in-process
            FnApiRunner (DirectRunner would first try to download the Prism runner).
            Example: ["--direct_num_workers=2"].

    Returns:
        JSON summary, e.g. {"rows": {"train": 357, "eval": 91}, "bad_rows": 0,
        "classes": ["bearing_fault", "imbalance", "misalignment", "normal"], "examples": "..."}.
    """
    import json
    import logging

    from edgeship.components.ingest.executor import IngestParams, run_ingest
    from edgeship.components.progress import heartbeat
    from edgeship.errors import step_errors

    logging.basicConfig(level=logging.INFO)
    with step_errors("ingest"), heartbeat("ingest"):
        params = IngestParams.of(locals())
        summary = run_ingest(kind, data_path, examples.path, params)
    examples.metadata.update({"kind": kind, "classes": summary["classes"], **summary["rows"]})
    return json.dumps(summary, sort_keys=True)
