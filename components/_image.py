"""The container image every component runs in, named in one place.

Set ``EDGESHIP_IMAGE`` before compiling to point pipelines at a registry; the default is the
tag that ``make image`` builds and ``make kind-load`` loads into a kind cluster.
"""

import os

from components._version import VERSION

IMAGE: str = os.environ.get("EDGESHIP_IMAGE", f"edgeship:{VERSION}")
