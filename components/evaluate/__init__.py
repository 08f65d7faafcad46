"""Evaluate: the trained model on the eval split (TFMA), and a blessing only with evidence.

Public here, each imported only when first used (importing this package imports neither kfp
nor TensorFlow)::

    EvaluateParams  the step's parameters: names, types, defaults and checks, declared once
    run_evaluate    the executor: plain Python on local paths (no kfp, no TFX)
    evaluate        the KFP component (``component.yaml`` is its compiled form)

See this folder's README.md; ``edgeship.tfx`` wraps the same executor as a TFX component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeship.lazy import lazy_exports

if TYPE_CHECKING:
    from edgeship.components.evaluate.component import evaluate
    from edgeship.components.evaluate.executor import EvaluateParams, run_evaluate

__all__ = ["EvaluateParams", "run_evaluate", "evaluate"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"EvaluateParams": "executor", "run_evaluate": "executor", "evaluate": "component"}
)
