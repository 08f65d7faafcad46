"""edgeship.components: the pipeline steps, one package each, and what they share.

The steps, each exporting its parameters, executor and KFP component (imported when first
used)::

    edgeship.components.ingest     IngestParams, run_ingest, ingest
    edgeship.components.validate   ValidateParams, run_validate, validate
    edgeship.components.train      TrainParams, run_train, train
    edgeship.components.evaluate   EvaluateParams, run_evaluate, evaluate
    edgeship.components.quantize   QuantizeParams, run_quantize, quantize

(push, the last step, is the publisher's: ``edgeship.edge_pusher``). Public modules shared with
the other packages: ``artifacts`` (the artifacts' folder layouts, and outputs written whole or
not at all), ``params`` (``StepParams``: how a step declares and checks its parameters),
``progress`` (the progress lines of long steps, which the local runner shows) and
``summaries`` (each step's result in one line). Modules named ``_x`` are the steps' own; no
other package imports them (an import-linter contract). The KFP artifact types are
``edgeship.artifact_types``, the image ``edgeship.image``.
"""
