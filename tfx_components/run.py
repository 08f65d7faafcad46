"""``edgeship run sensor|tabular|vision --orchestrator tfx``: the pipeline under TFX's
LocalDagRunner.

Everything the run writes lands under the work folder: ``pipeline_root/``, ML Metadata in
``metadata.sqlite`` (so a second run into the same folder reuses TFX's cache) and, unless
``--bucket``/``--keys`` are given, a demo bucket and keys as ``edgeship run`` makes them. The
summary lists each step's status (``COMPLETE`` or ``CACHED``) and time, from ML Metadata.

``--param`` takes the KFP route's grammar: ``epochs=5`` goes to the step that declares
``epochs``; a name two steps declare with different meanings (``eval_examples``) is given as
``STEP__NAME=VALUE`` (``evaluate__eval_examples=1000``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from edgeship.components.evaluate.executor import EvaluateParams
from edgeship.components.ingest.executor import IngestParams
from edgeship.components.quantize.executor import QuantizeParams
from edgeship.components.train.executor import TrainParams
from edgeship.components.validate.executor import ValidateParams
from edgeship.edge_pusher.push import PushParams
from edgeship.params import StepParams, parse_step_params

STEP_PARAMS: dict[str, type[StepParams]] = {
    "ingest": IngestParams, "validate": ValidateParams, "train": TrainParams,
    "evaluate": EvaluateParams, "quantize": QuantizeParams, "push": PushParams}
COMPONENTS = ("Ingest", "Validate", "Train", "Evaluate", "Quantize", "EdgePusher")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as ``STEP__NAME`` keys for the pipeline functions, each value read
    as its step's parameter type: the grammar of the KFP route
    (:func:`edgeship.params.parse_step_params`)."""
    return parse_step_params(pairs, STEP_PARAMS)


def run_pipeline(kind: str, workdir: Path, data_path: str | None, label: str | None,
                 bucket_url: str, keys_dir: str, params: dict[str, Any]) -> str:
    """Run pipeline ``kind`` (``sensor``, ``tabular`` or ``vision``: the KFP route's names);
    return the summary table. ``label`` is ingest's label column (a CSV's)."""
    from edgeship.tfx.pipeline import PIPELINES, run_local

    data = {"data_path": data_path} if data_path else {}
    if label:  # --label wins over a --param, as on the KFP route
        params = {**params, "ingest__label": label}
    started = time.monotonic()
    run_local(PIPELINES[kind](str(workdir / "pipeline_root"), str(workdir / "metadata.sqlite"),
                              bucket_url=bucket_url, keys_dir=keys_dir, **data, **params))
    return summary(workdir / "metadata.sqlite", time.monotonic() - started)


def summary(metadata_path: Path, seconds: float) -> str:
    """Each step's state, time and key result in the newest run, from ML Metadata (the result
    as ``edgeship run``'s KFP route shows it: the summary each executor recorded on its
    outputs), then the quantized variants."""
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration import metadata

    from edgeship.components.summaries import step_line
    from edgeship.tfx._base import SUMMARY_PROPERTY

    config = metadata.sqlite_metadata_connection_config(str(metadata_path))
    with metadata.Metadata(config) as store:
        executions = store.store.get_executions()
        types = {t.id: t.name for t in store.store.get_execution_types()}
        newest: dict[str, Any] = {}
        for execution in executions:
            name = types[execution.type_id].rsplit(".", 1)[-1]
            if name in COMPONENTS and (name not in newest or execution.id > newest[name].id):
                newest[name] = execution
        summaries = _summaries(store.store, newest, SUMMARY_PROPERTY)
    lines = [f"{'step':<11}{'state':<10}{'seconds':>8}  result"]
    for name, step in zip(COMPONENTS, STEP_PARAMS, strict=True):
        execution = newest.get(name)
        if execution is None:
            lines.append(f"{name:<11}{'-':<10}{'':>8}")
            continue
        state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
        took = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3
        result = step_line(step, summaries.get(name))
        lines.append(f"{name:<11}{state:<10}{took:>8.1f}  {result}".rstrip())
    lines.append(f"{'total':<21}{seconds:>8.1f}")
    table = (summaries.get("Quantize") or {}).get("table")
    if table:
        lines += ["", "quantized variants:", table]
    return "\n".join(lines)


def _summaries(store: Any, executions: dict[str, Any], prop: str) -> dict[str, dict[str, Any]]:
    """Component name -> the summary its execution recorded on its outputs (a cached
    execution's outputs are the run's that made them)."""
    from ml_metadata.proto import metadata_store_pb2

    found: dict[str, dict[str, Any]] = {}
    for name, execution in executions.items():
        events = store.get_events_by_execution_ids([execution.id])
        outputs = [e.artifact_id for e in events
                   if e.type == metadata_store_pb2.Event.OUTPUT]
        for artifact in store.get_artifacts_by_id(outputs):
            if prop in artifact.custom_properties:
                found[name] = json.loads(artifact.custom_properties[prop].string_value)
                break
    return found
