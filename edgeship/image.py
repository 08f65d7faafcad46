"""The container image every pipeline step runs in, and the paths it provides, named in one place.

Deployment facts that the steps (each component's ``base_image``), the publisher (the push
step's image and its keys folder) and the cluster wiring (``edgeship.pipelines.cluster``, which
mounts the online keys) all need, so they live in the root package that each of them may import.

Set ``EDGESHIP_IMAGE`` before compiling to point pipelines at a registry; the default is the
tag that ``make image`` builds and ``make kind-load`` loads into a kind cluster.
"""

from __future__ import annotations

import os

from edgeship._version import VERSION

__all__ = ["IMAGE", "KEYS_DIR"]

#: The image of every component: ``EDGESHIP_IMAGE``, else ``edgeship:<package version>``.
IMAGE: str = os.environ.get("EDGESHIP_IMAGE", f"edgeship:{VERSION}")

#: Where the image expects the OTA keys folder: the Dockerfile links the public root there and
#: the cluster wiring (``edgeship.pipelines.cluster``) mounts the online keys under it.
KEYS_DIR = "/opt/edgeship/keys"
