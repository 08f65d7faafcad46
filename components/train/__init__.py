"""Train: a small Keras classifier on an Examples artifact, exported as a SavedModel that
converts to a full-integer TFLite model.

Public here, each imported only when first used (importing this package imports neither kfp
nor TensorFlow)::

    TrainParams     the step's parameters: names, types, defaults and checks, declared once
    run_train       the executor: plain Python on local paths (no kfp, no TFX)
    train           the KFP component (``component.yaml`` is its compiled form)

See this folder's README.md; ``edgeship.tfx`` wraps the same executor as a TFX component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeship.lazy import lazy_exports

if TYPE_CHECKING:
    from edgeship.components.train.component import train
    from edgeship.components.train.executor import TrainParams, run_train

__all__ = ["TrainParams", "run_train", "train"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"TrainParams": "executor", "run_train": "executor", "train": "component"}
)
