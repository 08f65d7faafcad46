"""Compile a registered pipeline to KFP IR YAML (what ``edgeship compile`` and ``submit`` use)."""

from __future__ import annotations

from pathlib import Path

from edgeship.errors import InputError
from edgeship.pipelines.registry import get_pipeline


def compile_pipeline(name: str, path: str | Path) -> Path:
    """Write the pipeline's IR YAML to ``path`` and return it; never imports TensorFlow."""
    from kfp import compiler

    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        raise InputError(f"{path}: the IR file name must end in .yaml (KFP's package format)")
    pipeline = get_pipeline(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        compiler.Compiler().compile(pipeline, str(path))
    except OSError as err:
        raise InputError(f"{path}: cannot write the IR ({err.strerror or err})") from None
    return path
