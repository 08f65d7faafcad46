"""The compiled IR that ``edgeship submit`` sends: our image everywhere, nothing installed at run
time, and bucket credentials only through the Kubernetes Secret (never a parameter or a literal).
"""

import re
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from edgeship.image import IMAGE
from edgeship.pipelines import cluster
from edgeship.pipelines.compile import compile_pipeline
from edgeship.pipelines.registry import PIPELINES

# Names that must never be pipeline parameters nor appear as literal values in the pipeline spec.
_CREDENTIAL = re.compile(r"secret|password|access_key|aws_secret|token", re.IGNORECASE)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def _publish(bucket_url: str, keys_dir: str) -> str:
    return bucket_url + keys_dir


@dsl.pipeline(name="cluster-demo")
def _cluster_pipeline(bucket_url: str = cluster.CLUSTER_BUCKET_URL) -> None:
    cluster.apply_cluster_settings(_publish(bucket_url=bucket_url, keys_dir=cluster.KEYS_DIR))


def _docs(path: Path) -> tuple[dict, dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    spec = docs[0]
    platform = docs[1]["platforms"]["kubernetes"] if len(docs) > 1 else {}
    return spec, platform


def _check_ir(path: Path) -> None:
    """Assertions shared by the demo pipeline and every registered pipeline."""
    _check_images_and_parameters(path)
    _check_credentials_from_secret(path)


def _check_images_and_parameters(path: Path) -> None:
    text = path.read_text()
    spec, platform = _docs(path)
    executors = spec["deploymentSpec"]["executors"]
    images = {name: e["container"]["image"] for name, e in executors.items()}
    assert set(images.values()) == {IMAGE}, f"tasks not on our image: {images}"
    assert "pip install" not in text, "a task installs packages at run time"
    params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    bad = [p for p in params if _CREDENTIAL.search(p)]
    assert not bad, f"credentials must not be pipeline parameters: {bad}"
    assert not re.search(r"AWS_(SECRET_ACCESS_KEY|ACCESS_KEY_ID)", yaml.safe_dump(spec)), (
        "bucket credentials appear in the pipeline spec itself"
    )


def _check_credentials_from_secret(path: Path) -> None:
    _, platform = _docs(path)
    with_secret = {
        name: cfg for name, cfg in platform.get("deploymentSpec", {}).get("executors", {}).items()
        if any(s["secretName"] == cluster.OTA_WRITER_SECRET for s in cfg.get("secretAsEnv", []))
    }
    assert with_secret, f"no task reads the bucket credentials from {cluster.OTA_WRITER_SECRET}"
    for cfg in with_secret.values():
        envs = {
            kv["envVar"]
            for s in cfg["secretAsEnv"] if s["secretName"] == cluster.OTA_WRITER_SECRET
            for kv in s["keyToEnv"]
        }
        assert envs == set(cluster.OTA_WRITER_ENV)
        mounts = {v["mountPath"]: v["secretName"] for v in cfg.get("secretAsVolume", [])}
        assert mounts == {f"{cluster.KEYS_DIR}/online": cluster.ONLINE_KEYS_SECRET}
        cms = {v["mountPath"]: v["configMapName"] for v in cfg.get("configMapAsVolume", [])}
        assert cms == {cluster.ROOT_DIR: cluster.ROOT_CONFIGMAP}


def test_apply_cluster_settings_wires_secret_env_and_key_volumes(tmp_path):
    path = tmp_path / "demo.yaml"
    compiler.Compiler().compile(_cluster_pipeline, str(path))
    _check_ir(path)


def test_ir_check_rejects_a_credential_parameter(tmp_path):
    @dsl.pipeline(name="leaky")
    def leaky(aws_secret_access_key: str = "x") -> None:
        cluster.apply_cluster_settings(_publish(bucket_url=aws_secret_access_key, keys_dir="k"))

    path = tmp_path / "leaky.yaml"
    compiler.Compiler().compile(leaky, str(path))
    with pytest.raises(AssertionError, match="must not be pipeline parameters"):
        _check_ir(path)


@pytest.fixture(scope="module", params=list(PIPELINES))
def registered_ir(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ir") / f"{request.param}.yaml"
    compile_pipeline(request.param, path)
    return path


def test_registered_pipeline_runs_our_image_and_takes_no_credentials(registered_ir):
    _check_images_and_parameters(registered_ir)


def test_registered_pipeline_reads_bucket_credentials_from_the_secret(registered_ir):
    # The pipeline must call edgeship.pipelines.cluster.apply_cluster_settings on its push task.
    _check_credentials_from_secret(registered_ir)
