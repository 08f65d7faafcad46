"""Our Kubernetes objects, checked without a cluster: they render offline with kustomize, validate
against the JSON schemas of the Kubernetes version kind-config.yaml pins, pass checkov (every skip
carries a reason), and agree with pipelines/cluster.py and the kind scripts on every name.

The checkers come from manifests/tools/requirements.txt (manifests/scripts/tools-venv.sh makes
.venv-tools/); a test whose tool is missing skips and says so.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgeship._version import VERSION
from edgeship.edge_pusher.fleet.broker import FLEET_READER, acl, config, password_hash
from edgeship.pipelines import cluster
from tests.helpers import REPO
from tests.helpers.tools import tool

MANIFESTS = REPO / "manifests"
SCRIPTS = MANIFESTS / "scripts"


def kind_node_version() -> str:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    image = config["nodes"][0]["image"]
    match = re.fullmatch(r"kindest/node:v(\d+\.\d+\.\d+)@sha256:[0-9a-f]{64}", image)
    assert match, f"kind node image must be pinned by tag and digest: {image}"
    return match.group(1)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS / "local")],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    path = tmp_path_factory.mktemp("render") / "local.yaml"
    path.write_text(out)
    return path, [d for d in yaml.safe_load_all(out) if d]


def _by(objs: list[dict], kind: str, name: str) -> dict:
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def _pod(obj: dict) -> dict:
    spec = obj["spec"]
    return (spec["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else spec)["template"]["spec"]


def _mounted(pod: dict, container: dict, path: str) -> tuple[dict, str]:
    """The volume under which ``path`` lies in ``container``, and path's rest inside it."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    path = path.rstrip("/")
    for m in container["volumeMounts"]:
        root = m["mountPath"].rstrip("/")
        if path == root or path.startswith(root + "/"):
            return volumes[m["name"]], path[len(root) + 1:]
    raise AssertionError(f"{path} is on no volume of {container['name']}")


def _directives(conf: str) -> list[tuple[str, str]]:
    lines = [line.split(None, 1) for line in conf.splitlines() if line and line[0] != "#"]
    return [(key, value) for key, value in lines]


def test_local_overlay_renders_offline_with_our_objects(rendered):
    _, objs = rendered
    names = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs}
    assert {
        ("Namespace", None, "edgeship-ota"),
        ("Deployment", "edgeship-ota", "ota-bucket"),
        ("Service", "edgeship-ota", "ota-bucket"),
        ("NetworkPolicy", "edgeship-ota", "ota-bucket-s3-only"),
        ("CronJob", "edgeship-ota", "ota-timestamp-refresh"),
        ("Deployment", "edgeship-ota", "fleet-broker"),
        ("Service", "edgeship-ota", "fleet-broker"),
        ("NetworkPolicy", "edgeship-ota", "fleet-broker-mqtt-only"),
        ("NetworkPolicy", "edgeship-ota", "rollout-watch-egress"),
        ("CronJob", "edgeship-ota", "rollout-watch"),
        ("Service", "kubeflow", "ml-pipeline-ui-nodeport"),
        ("Service", "kubeflow", "ml-pipeline-api-nodeport"),
    } <= names
    assert not [o for o in objs if o["kind"] == "Secret"], "no Secret may be committed"


def test_remote_bases_are_kfp_standalone_pinned_not_env_dev():
    cs = (MANIFESTS / "kfp-cluster-scoped" / "kustomization.yaml").read_text()
    ns = (MANIFESTS / "kfp" / "kustomization.yaml").read_text()
    assert "kustomize/cluster-scoped-resources?ref=2.5.0" in cs
    assert "kustomize/env/platform-agnostic?ref=2.5.0" in ns
    assert "env/dev" not in yaml.safe_dump(yaml.safe_load(ns))
    assert 'KFP_VERSION="2.5.0"' in (SCRIPTS / "lib.sh").read_text()


def test_kind_ports_match_the_nodeports(rendered):
    _, objs = rendered
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    mapped = {m["containerPort"]: m for m in config["nodes"][0]["extraPortMappings"]}
    node_ports = {
        p["nodePort"]
        for o in objs if o["kind"] == "Service" and o["spec"].get("type") == "NodePort"
        for p in o["spec"]["ports"]
    }
    assert node_ports == set(mapped) == {31380, 31388, 30833}
    assert all(m["hostPort"] == port for port, m in mapped.items())
    # The bucket's S3 port is the only one of the bucket pod that any Service exposes.
    bucket = _by(objs, "Service", "ota-bucket")
    assert [p["nodePort"] for p in bucket["spec"]["ports"]] == [30833]
    assert cluster.DEVICE_REPO_URL.startswith("http://localhost:30833/")


def test_bucket_network_policy_admits_the_s3_port_only(rendered):
    _, objs = rendered
    policy = _by(objs, "NetworkPolicy", "ota-bucket-s3-only")["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app": "ota-bucket"}
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 8333, "protocol": "TCP"}]
    assert "from" not in rule  # devices come from outside the cluster
    pod = _by(objs, "Deployment", "ota-bucket")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [8333]
    assert "-s3.config=/etc/seaweedfs/s3/s3.json" in container["args"]


def test_refresh_cronjob_runs_our_image_with_keys_from_secrets(rendered):
    _, objs = rendered
    job = _by(objs, "CronJob", "ota-timestamp-refresh")["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"edgeship:{VERSION}", "CronJob image drifted from the package"
    assert container["command"][:3] == ["edgeship", "repo", "refresh"]
    assert container["command"][container["command"].index("--keys") + 1] == cluster.KEYS_DIR
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    online = volumes[mounts[f"{cluster.KEYS_DIR}/online"]]
    assert online["secret"]["secretName"] == "ota-online-keys"
    assert volumes[mounts[cluster.ROOT_DIR]]["configMap"]["name"] == "ota-root"
    env = {e["name"]: e for e in container["env"]}
    assert "AWS_SECRET_ACCESS_KEY" not in env, "credentials come from a mounted file"
    assert env["AWS_ENDPOINT_URL"]["value"] == cluster.CLUSTER_S3_ENDPOINT


def test_fleet_broker_refuses_anonymous_clients_and_runs_broker_configs_acl(rendered):
    _, objs = rendered
    pod = _pod(_by(objs, "Deployment", "fleet-broker"))
    (container,) = pod["containers"]
    assert re.fullmatch(r"eclipse-mosquitto:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", container["image"])
    conf_path = container["command"][container["command"].index("-c") + 1]
    volume, key = _mounted(pod, container, conf_path)
    configmap = _by(objs, "ConfigMap", volume["configMap"]["name"])["data"]
    ours = _directives(configmap[key])
    # The same directives, in the same order, as `edgeship fleet broker-config` writes; only
    # the paths differ, and each one lies on the volume that holds that file.
    theirs = _directives(config(Path("/broker"), "0.0.0.0:1883", None))
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    paths = {"password_file", "acl_file", "persistence_location"}
    assert [d for d in ours if d[0] not in paths] == [d for d in theirs if d[0] not in paths]
    assert ("allow_anonymous", "false") in ours
    ours = dict(ours)
    passwords, name = _mounted(pod, container, ours["password_file"])
    assert (passwords["secret"]["secretName"], name) == ("fleet-broker-passwords", "passwords")
    acl_volume, name = _mounted(pod, container, ours["acl_file"])
    assert acl_volume == volume and configmap[name] == acl("edgeship")
    data, name = _mounted(pod, container, ours["persistence_location"])
    assert "emptyDir" in data and name == ""
    for v in (volume["configMap"], passwords["secret"]):  # Mosquitto warns on world-readable
        assert v["defaultMode"] & 0o007 == 0
    assert [p["containerPort"] for p in container["ports"]] == [1883]
    assert ours["listener"] == "1883 0.0.0.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_fleet_broker_network_policy_admits_mqtt_only_and_denies_egress(rendered):
    _, objs = rendered
    policy = _by(objs, "NetworkPolicy", "fleet-broker-mqtt-only")["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app": "fleet-broker"}
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 1883, "protocol": "TCP"}]
    assert "from" not in rule  # devices come from wherever they are, as for the bucket
    assert policy["egress"] == []
    service = _by(objs, "Service", "fleet-broker")["spec"]
    assert service["selector"] == {"app": "fleet-broker"}
    assert [p["port"] for p in service["ports"]] == [1883]
    assert service.get("type", "ClusterIP") == "ClusterIP"  # kind publishes no port for it


def test_rollout_watch_cronjob_reads_the_broker_and_publishes_like_the_refresh(rendered):
    _, objs = rendered
    cronjob = _by(objs, "CronJob", "rollout-watch")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["schedule"] == "*/10 * * * *"
    pod = _pod(cronjob)
    (container,) = pod["containers"]
    assert container["image"] == f"edgeship:{VERSION}", "CronJob image drifted from the package"
    command = container["command"]
    assert command[:4] == ["edgeship", "rollout", "watch", "--once"]
    flag = {k: command[command.index(k) + 1] for k in
            ("--broker", "--password-file", "--bucket", "--keys", "--channel")}
    service = _by(objs, "Service", "fleet-broker")["metadata"]
    assert flag["--broker"] == f"mqtt://fleet-broker.{service['namespace']}.svc.cluster.local:1883"
    secret, key = _mounted(pod, container, flag["--password-file"])
    assert (secret["secret"]["secretName"], key) == ("fleet-reader-password", "fleet.password")
    assert (flag["--bucket"], flag["--keys"]) == (cluster.CLUSTER_BUCKET_URL, cluster.KEYS_DIR)
    # Same keys, root and S3 credentials as the refresh CronJob.
    refresh = _pod(_by(objs, "CronJob", "ota-timestamp-refresh"))
    (refresh_container,) = refresh["containers"]
    assert container["env"] == refresh_container["env"]
    for mount in refresh_container["volumeMounts"]:
        path = mount["mountPath"]
        assert _mounted(pod, container, path) == _mounted(refresh, refresh_container, path)
    # Its egress reaches exactly the broker's and the bucket's ports (and DNS).
    policy = _by(objs, "NetworkPolicy", "rollout-watch-egress")["spec"]
    labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"] == []
    reached = {
        (to["podSelector"]["matchLabels"]["app"], p["port"])
        for rule in policy["egress"] for to in rule["to"] if "podSelector" in to
        for p in rule["ports"]
    }
    assert reached == {("fleet-broker", 1883), ("ota-bucket", 8333)}


def test_objects_validate_against_the_pinned_kubernetes_schemas(rendered):
    path, objs = rendered
    validate = tool("kubernetes-validate")
    version = kind_node_version()
    proc = subprocess.run(
        [validate, "--strict", "-k", version, str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" passed ") == len(objs)


def test_schema_validation_catches_a_broken_object(tmp_path):
    validate = tool("kubernetes-validate")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec: {ports: [{port: eighty}], tpye: NodePort}\n"
    )
    proc = subprocess.run(
        [validate, "--strict", "-k", kind_node_version(), str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 2 would be a usage error
    assert "'eighty' is not of type 'integer'" in proc.stdout + proc.stderr


def test_checkov_has_no_unjustified_failures(rendered):
    path, objs = rendered
    checkov = tool("checkov")
    proc = subprocess.run(
        [checkov, "-f", str(path), "--framework", "kubernetes", "--skip-download", "--quiet",
         "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=300,
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 50
    for obj in objs:  # every skip names its check and says why
        for key, value in (obj["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 20, value


@pytest.fixture
def fake_kubectl(tmp_path: Path) -> tuple[Path, Path]:
    """A kubectl on PATH that records each `create ... --dry-run` with its files' contents."""
    log = tmp_path / "kubectl.jsonl"
    script = tmp_path / "bin" / "kubectl"
    script.parent.mkdir()
    script.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
if "create" in args:
    files = {{}}
    for a in args:
        if a.startswith("--from-file="):
            spec = a.split("=", 1)[1]
            key, _, path = spec.rpartition("=") if spec.count("=") else ("", "", spec)
            import os
            paths = [os.path.join(path, f) for f in sorted(os.listdir(path))] \\
                if os.path.isdir(path) else [path]
            for p in paths:
                files[key or os.path.basename(p)] = open(p).read()
    with open({str(log)!r}, "a") as f:
        f.write(json.dumps({{"args": args, "files": files}}) + "\\n")
""")
    script.chmod(0o755)
    return script.parent, log


def test_ota_secrets_script_creates_what_manifests_and_push_step_read(rendered, fake_kubectl,
                                                                       tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    from edgeship.edge_pusher.keys import init_keys

    _, objs = rendered
    bindir, log = fake_kubectl
    keys = tmp_path / "keys"
    init_keys(keys)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}",
               EDGESHIP_STATE_DIR=str(tmp_path / "state"))
    subprocess.run(["bash", str(SCRIPTS / "ota-secrets.sh"), str(keys)], env=env, check=True,
                   capture_output=True, text=True, timeout=60)
    created = {}
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        args = rec["args"]
        ns = args[args.index("-n") + 1]
        kind = args[args.index("create") + 1]
        name = args[args.index("create") + (3 if kind == "secret" else 2)]
        created[(ns, kind, name)] = rec
    # What the push step mounts (pipelines/cluster.py) exists in KFP's namespace.
    writer = created[(cluster.NAMESPACE, "secret", cluster.OTA_WRITER_SECRET)]["args"]
    literals = dict(a.split("=", 2)[1:] for a in writer if a.startswith("--from-literal="))
    assert set(literals) == set(cluster.OTA_WRITER_ENV)
    assert literals["AWS_ENDPOINT_URL"] == cluster.CLUSTER_S3_ENDPOINT
    online = created[(cluster.NAMESPACE, "secret", cluster.ONLINE_KEYS_SECRET)]["files"]
    assert set(online) == {p.name for p in (keys / "online").iterdir()}
    root = created[(cluster.NAMESPACE, "configmap", cluster.ROOT_CONFIGMAP)]["files"]
    assert root["root.json"] == (keys / "root.json").read_text()
    assert "1.root.json" in root
    # What our manifests mount exists in the bucket's namespace, or is one of our objects.
    referenced = {
        ("secret", v["secret"]["secretName"]) if "secret" in v
        else ("configmap", v["configMap"]["name"])
        for o in objs if o["kind"] in ("Deployment", "CronJob")
        for spec in [o["spec"]["template"]["spec"] if o["kind"] == "Deployment"
                     else o["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
        for v in spec["volumes"] if "secret" in v or "configMap" in v
    }
    committed = {("configmap", o["metadata"]["name"]) for o in objs if o["kind"] == "ConfigMap"}
    assert {(k, n) for ns, k, n in created if ns == "edgeship-ota"} == referenced - committed
    # Devices read anonymously; only the publisher (with the generated keys) may write.
    s3 = json.loads(created[("edgeship-ota", "secret", "ota-bucket-s3-config")]["files"]["s3.json"])
    ids = {i["name"]: i for i in s3["identities"]}
    assert ids["anonymous"]["actions"] == [f"Read:{cluster.OTA_BUCKET}"]
    (cred,) = ids["edgeship-publisher"]["credentials"]
    assert cred["secretKey"] == literals["AWS_SECRET_ACCESS_KEY"] and len(cred["secretKey"]) >= 32
    assert f"Write:{cluster.OTA_BUCKET}" in ids["edgeship-publisher"]["actions"]
    creds_file = tmp_path / "state" / "ota-writer.env"
    assert oct(creds_file.stat().st_mode & 0o777) == "0o600"
    # The broker's password file holds the fleet reader's hash; its password is in the reader's
    # Secret, and a second run keeps it (devices added in between keep theirs too).
    passwords = created[("edgeship-ota", "secret", "fleet-broker-passwords")]["files"]["passwords"]
    users = dict(line.split(":", 1) for line in passwords.splitlines())
    reader = created[("edgeship-ota", "secret", "fleet-reader-password")]["files"]
    password = reader["fleet.password"].strip()
    _, _, _, salt, _ = users[FLEET_READER].split("$")
    assert password_hash(password, base64.b64decode(salt)) == users[FLEET_READER]
    assert password not in passwords
    log.unlink()
    subprocess.run(["bash", str(SCRIPTS / "ota-secrets.sh"), str(keys)], env=env, check=True,
                   capture_output=True, text=True, timeout=60)
    again = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"fleet.password": reader["fleet.password"]} in [r["files"] for r in again]
