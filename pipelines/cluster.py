"""Cluster wiring for the push step: bucket credentials and signing keys from Kubernetes objects.

On a cluster nothing secret is a pipeline parameter (parameters are stored in KFP's database and
shown in its UI). The push task instead reads:

- the OTA bucket's write credentials as environment variables from the Secret
  ``OTA_WRITER_SECRET`` (what ``edge_pusher``'s S3 backend reads: AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL);
- the online signing keys (``online/`` of a keys folder) from the Secret ``ONLINE_KEYS_SECRET``,
  mounted at ``KEYS_DIR/online``;
- the public root metadata (``root.json`` and ``N.root.json`` history) from the ConfigMap
  ``ROOT_CONFIGMAP``, mounted at ``ROOT_DIR``. The image links ``KEYS_DIR/root.json`` and
  ``KEYS_DIR/root_history`` there, so ``KEYS_DIR`` is a complete keys folder (Secret volumes
  are flat, and a volume cannot be mounted inside another one).

``manifests/scripts/kind-up.sh`` creates these objects from a keys folder; the names here and in
``manifests/`` must match (a test checks).
"""

from __future__ import annotations

from typing import Any

from edgeship.image import KEYS_DIR

NAMESPACE = "kubeflow"  # where KFP standalone runs pipeline pods
OTA_WRITER_SECRET = "edgeship-ota-writer"
OTA_WRITER_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")
ONLINE_KEYS_SECRET = "edgeship-ota-online-keys"
ROOT_CONFIGMAP = "edgeship-ota-root"
ROOT_DIR = "/opt/edgeship/root"
OTA_BUCKET = "ota"
# The bucket URL as seen from pipeline pods (in-cluster DNS), and from devices on the host.
CLUSTER_BUCKET_URL = f"s3://{OTA_BUCKET}"
CLUSTER_S3_ENDPOINT = "http://ota-bucket.edgeship-ota.svc.cluster.local:8333"
DEVICE_REPO_URL = f"http://localhost:30833/{OTA_BUCKET}"


def apply_cluster_settings(task: Any) -> Any:
    """Give the push ``task`` its bucket credentials and keys from Kubernetes; return the task.

    The pipelines' defaults already are ``keys_dir=KEYS_DIR`` and
    ``bucket_url=CLUSTER_BUCKET_URL``. Only the platform config of the compiled IR changes, which
    ``kfp.local`` ignores, so local runs are unaffected. The object names are fixed: they must
    match what ``manifests/`` and ``kind-up.sh`` create.
    """
    from kfp import kubernetes

    kubernetes.use_secret_as_env(
        task, secret_name=OTA_WRITER_SECRET, secret_key_to_env={k: k for k in OTA_WRITER_ENV}
    )
    kubernetes.use_secret_as_volume(
        task, secret_name=ONLINE_KEYS_SECRET, mount_path=f"{KEYS_DIR}/online"
    )
    kubernetes.use_config_map_as_volume(task, config_map_name=ROOT_CONFIGMAP, mount_path=ROOT_DIR)
    return task
