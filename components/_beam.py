"""Beam pipeline options shared by the data-parallel steps (ingest, validate, evaluate).

``beam_pipeline_args`` pass straight through, so ``--runner=FlinkRunner ...`` or Dataflow flags
scale a step out. With no runner given we pick Beam's in-process FnApiRunner: it is what
DirectRunner itself falls back to, minus DirectRunner's first attempt to download the Prism
runner binary at run time (no step may download anything, and offline it only costs a timeout).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeship.components import progress

LOCAL_RUNNER = "FnApiRunner"  # Beam resolves the short name to its in-process runner


def runner_named(beam_pipeline_args: list[str] | None) -> bool:
    """Whether the caller chose a Beam runner (then a step never skips Beam for a lean path)."""
    return any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_pipeline_args or [])


def beam_args(beam_pipeline_args: list[str] | None) -> list[str]:
    """The caller's Beam arguments, with the local runner added when none is named."""
    args = list(beam_pipeline_args or [])
    if not runner_named(args):
        args.append(f"--runner={LOCAL_RUNNER}")
    return args


def pipeline_options(beam_pipeline_args: list[str] | None):
    """``PipelineOptions`` for a step's Beam pipeline (imports Beam only when called)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(beam_args(beam_pipeline_args))


def count_progress(step: str, what: str, size: Callable[[Any], int] | None = None) -> Any:
    """A pass-through Beam step adding what passes to the step's count of ``what``
    (``edgeship.components.progress``: a line at most every 30 s). ``size`` counts an element
    (e.g. the rows of a record batch); by default each element is one. In-process, every
    thread adds to one count; a multi-process runner's workers count (and print) each their
    own."""
    import apache_beam as beam

    def counted(element: Any) -> Any:
        progress.of(step).count(what, size(element) if size else 1)
        return element

    return beam.Map(counted)
