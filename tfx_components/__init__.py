"""edgeship.tfx: edgeship's steps as TFX components, and its three pipelines as TFX pipelines
(``edgeship.tfx.pipeline``; ``edgeship run PIPELINE --orchestrator tfx``).

Needs TFX (``pip install 'edgeship[tfx]'`` on Python 3.10: TFX 1.16, the newest that installs
on glibc 2.36, supports Python < 3.11). TFX and kfp cannot share one environment (protobuf 3
against 4), so this package never imports kfp, and the KFP components never import it.

    from edgeship.tfx import Ingest, Validate, Train, Evaluate, Quantize, EdgePusher

See ``docs/tfx.md``.
"""

from edgeship.tfx.components import EdgePusher, Evaluate, Ingest, Quantize, Train, Validate

__all__ = ["EdgePusher", "Evaluate", "Ingest", "Quantize", "Train", "Validate"]
