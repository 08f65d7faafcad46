"""edgeship: from data to signed, quantized models on a fleet of edge devices.

One import root, four packages with one job each (``docs/architecture.md``)::

    edgeship.components   the pipeline steps: ingest, validate, train, evaluate, quantize
    edgeship.pipelines    the pipelines built from them, the local runner, compile and submit
    edgeship.edge_pusher  the publisher: signed repository, keys, buckets, the push step
    edgeship.device       the device agent: poll, verify, self-test, switch A/B

and, here at the root, what they share: the command line (``edgeship.cli``), the one error model
(``edgeship.errors``), the OTA contract between publisher and device (``edgeship.contract``),
the quantize -> push contract (``edgeship.quantization_report``), the one LiteRT module
(``edgeship.litert``), the image the steps run in (``edgeship.image``) and the steps' KFP
artifact types (``edgeship.artifact_types``). Importing ``edgeship`` imports none of them.
"""

from os import path as _path
from pkgutil import extend_path as _extend_path

from edgeship._version import VERSION as __version__

# A development checkout: `make install` links every package into build/__editable__.*/edgeship/
# (setuptools' strict editable mode: real files on a path entry, which editors and type checkers
# read). Run from the checkout, Python finds this folder first and it holds only the root
# modules, so the linked tree joins the package's path. An installed wheel has every subpackage
# here and is left alone.
if not _path.isdir(_path.join(_path.dirname(__file__), "components")):
    __path__ = _extend_path(__path__, __name__)
del _path, _extend_path

__all__ = ["__version__"]
