"""Quantize: the TFLite files devices run, each measured with LiteRT, and the int8 model's
blessing and quantization report.

Public here, each imported only when first used (importing this package imports neither kfp
nor TensorFlow)::

    QuantizeParams  the step's parameters: names, types, defaults and checks, declared once
    run_quantize    the executor: plain Python on local paths (no kfp, no TFX)
    quantize        the KFP component (``component.yaml`` is its compiled form)

See this folder's README.md; ``edgeship.tfx`` wraps the same executor as a TFX component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeship.lazy import lazy_exports

if TYPE_CHECKING:
    from edgeship.components.quantize.component import quantize
    from edgeship.components.quantize.executor import QuantizeParams, run_quantize

__all__ = ["QuantizeParams", "run_quantize", "quantize"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"QuantizeParams": "executor", "run_quantize": "executor", "quantize": "component"}
)
