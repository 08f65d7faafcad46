"""Ingest: a CSV table, a CSV time series or a folder of images -> an Examples artifact
(TFX's layout: ``Split-<name>/`` gzipped TFRecords, plus ``examples_meta.json``).

Public here, each imported only when first used (importing this package imports neither kfp
nor TensorFlow)::

    IngestParams    the step's parameters: names, types, defaults and checks, declared once
    run_ingest      the executor: plain Python on local paths (no kfp, no TFX)
    ingest          the KFP component (``component.yaml`` is its compiled form)

See this folder's README.md; ``edgeship.tfx`` wraps the same executor as a TFX component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeship.lazy import lazy_exports

if TYPE_CHECKING:
    from edgeship.components.ingest.component import ingest
    from edgeship.components.ingest.executor import IngestParams, run_ingest

__all__ = ["IngestParams", "run_ingest", "ingest"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"IngestParams": "executor", "run_ingest": "executor", "ingest": "component"}
)
