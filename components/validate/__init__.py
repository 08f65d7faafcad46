"""Validate: statistics, schema and anomalies of an Examples artifact (TFDV), as TFX's
StatisticsGen, SchemaGen and ExampleValidator do.

Public here, each imported only when first used (importing this package imports neither kfp
nor TensorFlow)::

    ValidateParams  the step's parameters: names, types, defaults and checks, declared once
    run_validate    the executor: plain Python on local paths (no kfp, no TFX)
    validate        the KFP component (``component.yaml`` is its compiled form)

See this folder's README.md; ``edgeship.tfx`` wraps the same executor as a TFX component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeship.lazy import lazy_exports

if TYPE_CHECKING:
    from edgeship.components.validate.component import validate
    from edgeship.components.validate.executor import ValidateParams, run_validate

__all__ = ["ValidateParams", "run_validate", "validate"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"ValidateParams": "executor", "run_validate": "executor", "validate": "component"}
)
