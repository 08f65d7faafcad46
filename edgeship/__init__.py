"""edgeship: from data to signed, quantized models on a fleet of edge devices.

One import root, four packages with one job each (``docs/architecture.md``)::

    edgeship.components   the pipeline steps: ingest, validate, train, evaluate, quantize
    edgeship.pipelines    the pipelines built from them, the local runner, compile and submit
    edgeship.edge_pusher  the publisher: signed repository, keys, buckets, the push step
    edgeship.device       the device agent: poll, verify, self-test, switch A/B

and, here at the root, what they share: the command line (``edgeship.cli``), the one error model
(``edgeship.errors``), the OTA contract between publisher and device (``edgeship.contract``) and
the one LiteRT module (``edgeship.litert``). Importing ``edgeship`` imports none of them.
"""

from edgeship._version import VERSION as __version__

__all__ = ["__version__"]
