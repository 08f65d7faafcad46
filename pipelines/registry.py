"""Name -> pipeline function, for the CLI, compilation and submission (imports kfp's DSL)."""

from __future__ import annotations

from collections.abc import Callable

from components.errors import InputError
from pipelines.sensor import sensor_pipeline
from pipelines.tabular import tabular_pipeline
from pipelines.vision import vision_pipeline

PIPELINES: dict[str, Callable] = {
    "sensor": sensor_pipeline,
    "vision": vision_pipeline,
    "tabular": tabular_pipeline,
}


def get_pipeline(name: str) -> Callable:
    """Return the ``@dsl.pipeline`` function registered under ``name``."""
    if name not in PIPELINES:
        raise InputError(f"unknown pipeline '{name}' (choose from {', '.join(PIPELINES)})")
    return PIPELINES[name]
