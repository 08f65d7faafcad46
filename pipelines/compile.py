"""Compile a registered pipeline to KFP IR YAML (what ``edgeship compile`` and ``submit`` use)."""

from __future__ import annotations

from pathlib import Path

from pipelines.registry import get_pipeline


def compile_pipeline(name: str, path: str | Path) -> Path:
    """Write the pipeline's IR YAML to ``path`` and return it; never imports TensorFlow."""
    from kfp import compiler

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(get_pipeline(name), str(path))
    return path
