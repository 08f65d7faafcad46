"""Name -> pipeline function, for the CLI, compilation and submission (imports kfp's DSL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from edgeship.errors import InputError
from edgeship.pipelines.sensor import sensor_pipeline
from edgeship.pipelines.tabular import tabular_pipeline
from edgeship.pipelines.vision import vision_pipeline

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent

# @dsl.pipeline makes each a pipeline component (kfp types the decorator as returning a Callable)
PIPELINES = cast("dict[str, BaseComponent]", {
    "sensor": sensor_pipeline,
    "vision": vision_pipeline,
    "tabular": tabular_pipeline,
})


def default_parameters(name: str) -> dict[str, Any]:
    """The pipeline's parameters with their defaults: what ``edgeship run NAME`` runs with."""
    inputs = get_pipeline(name).component_spec.inputs or {}
    return {key: spec.default for key, spec in inputs.items()}


def default_ingest(name: str) -> tuple[str, str, dict[str, Any]]:
    """What ``edgeship run NAME`` ingests by default (a bundled dataset): kind, data path and the
    other ingest arguments, for running the bundled steps outside a pipeline (benchmarks, tests).
    """
    from edgeship.components.ingest import datasets
    from edgeship.components.ingest.executor import IngestParams

    defaults = default_parameters(name)
    data_path = defaults["data_path"]
    kind = datasets.KIND[data_path.removeprefix(datasets.BUILTIN_PREFIX)]
    accepted = set(IngestParams.names()) - {"kind", "data_path"}
    return kind, data_path, {k: defaults[k] for k in accepted & set(defaults)}


def get_pipeline(name: str) -> BaseComponent:
    """Return the ``@dsl.pipeline`` function registered under ``name``."""
    if name not in PIPELINES:
        raise InputError(f"unknown pipeline '{name}' (choose from {', '.join(PIPELINES)})")
    return PIPELINES[name]
