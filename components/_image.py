"""The container image every component runs in, and the paths it provides, named in one place.

Set ``EDGESHIP_IMAGE`` before compiling to point pipelines at a registry; the default is the
tag that ``make image`` builds and ``make kind-load`` loads into a kind cluster.
"""

import os

from edgeship._version import VERSION

IMAGE: str = os.environ.get("EDGESHIP_IMAGE", f"edgeship:{VERSION}")

# Where the image expects the OTA keys folder: the Dockerfile links the public root there and the
# cluster wiring (pipelines/cluster.py) mounts the online keys under it.
KEYS_DIR = "/opt/edgeship/keys"
