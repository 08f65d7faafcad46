#!/usr/bin/env bash
# Create the edgeship kind cluster with KFP standalone and the OTA bucket, then wait until
# KFP's API answers and print the URLs. Safe to run again: every step is idempotent.
#
#   EDGESHIP_KEYS=DIR   signing keys folder (default: STATE_DIR/keys, created if missing)
#   KFP_WAIT_SECONDS=N  how long to wait for KFP (default 1500: first start pulls ~3 GB)
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind kubectl curl
KEYS="${EDGESHIP_KEYS:-${STATE_DIR}/keys}"
KFP_WAIT_SECONDS="${KFP_WAIT_SECONDS:-1500}"

have_kind="$(kind version 2>/dev/null | awk '{print $2}')"
[[ "${have_kind}" == "${KIND_VERSION}" ]] ||
  log "warning: kind ${have_kind:-?} found; kind-config.yaml's node image was built for ${KIND_VERSION}"

# 1. The cluster.
if cluster_exists; then
  log "kind cluster ${CLUSTER} exists; reusing it"
else
  log "creating kind cluster ${CLUSTER} from kind-config.yaml"
  kind create cluster --config "${ROOT}/kind-config.yaml" --wait 180s
fi
# kindnet forwards every packet when NetworkPolicies are on; KFP's own CI lifts its CPU
# limit so bursts (image pulls, many pods starting) do not stall pod networking.
kc -n kube-system patch daemonset/kindnet --type=strategic -p \
  '{"spec":{"template":{"spec":{"containers":[{"name":"kindnet-cni","resources":{"limits":{"cpu":null}}}]}}}}' \
  >/dev/null || log "warning: could not patch kindnet (non-default CNI?)"

# 2. KFP: cluster-scoped resources first, then wait for their CRDs, then the namespaced install.
log "applying KFP ${KFP_VERSION} cluster-scoped resources"
kc apply -k "${ROOT}/manifests/kfp-cluster-scoped"
kc wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kc wait --for condition=established --timeout=120s crd --all
log "applying KFP ${KFP_VERSION} (env/platform-agnostic)"
for attempt in 1 2 3; do
  # A webhook or CRD that is not served yet fails the first apply now and then; retry.
  kc apply -k "${ROOT}/manifests/kfp" && break
  [[ ${attempt} -lt 3 ]] || die "kubectl apply -k manifests/kfp failed 3 times"
  sleep 15
done

# 3. Our objects: NodePorts for KFP, the OTA bucket, the fleet broker, their policies and the
# refresh and rollout-watch CronJobs.
log "applying manifests/local (OTA bucket, fleet broker, NodePorts, CronJobs)"
kc apply -k "${ROOT}/manifests/local"

# 4. Secrets, generated here and never committed.
"$(dirname "${BASH_SOURCE[0]}")/ota-secrets.sh" "${KEYS}"

# 5. The component image, if it was built (the refresh CronJob and every pipeline step use it).
if IMAGE="$(image_name 2>/dev/null)" && docker image inspect "${IMAGE}" >/dev/null 2>&1; then
  "$(dirname "${BASH_SOURCE[0]}")/kind-load.sh"
else
  log "image not built yet: run 'make image kind-load' before submitting pipelines"
fi

# 6. Wait for KFP's API. Pods restarting a few times here is expected: the API server and the
# metadata server start before MySQL accepts connections and crash until it does
# (kubeflow/pipelines#12702). Only a server stuck on a half-initialised MLMD schema needs a
# nudge (kubeflow/pipelines#12086), which we give once.
log "waiting for KFP at ${KFP_URL}/apis/v2beta1/healthz (up to ${KFP_WAIT_SECONDS}s; restarts are normal)"
half=$(( KFP_WAIT_SECONDS / 2 ))
if ! wait_http "${KFP_URL}/apis/v2beta1/healthz" "${half}"; then
  if kc -n kubeflow logs deploy/metadata-grpc-deployment --tail=50 2>/dev/null |
      grep -q "no schema_version can be found"; then
    log "metadata-grpc is stuck on a half-initialised schema; restarting it once"
    kc -n kubeflow rollout restart deploy/metadata-grpc-deployment
  fi
  kc -n kubeflow get pods >&2 || true
  wait_http "${KFP_URL}/apis/v2beta1/healthz" "$(( KFP_WAIT_SECONDS - half ))" ||
    die "KFP did not answer in ${KFP_WAIT_SECONDS}s; see 'kubectl --context ${CTX} -n kubeflow get pods' and docs/kind.md"
fi
kc -n kubeflow wait --for=condition=Available --timeout=600s deploy --all

# 7. The bucket and the broker.
kc -n edgeship-ota rollout status deploy/ota-bucket --timeout=300s
kc -n edgeship-ota rollout status deploy/fleet-broker --timeout=300s
wait_http "${BUCKET_URL}/status" 120 || die "OTA bucket did not answer at ${BUCKET_URL}"

cat <<MSG

edgeship on kind is up (KFP ${KFP_VERSION}, cluster ${CLUSTER}, context ${CTX})
  KFP UI and API:   ${KFP_URL}
  KFP API direct:   ${KFP_API_URL}
  OTA bucket (S3):  ${BUCKET_URL}/ota   (anonymous read-only; devices poll this)
  signing keys:     ${KEYS}   (ship ${KEYS}/root.json with device firmware)
  fleet broker:     fleet-broker.edgeship-ota.svc:1883   (in-cluster only; users in ${STATE_DIR}/fleet-broker)
Submit a run:
  .venv/bin/edgeship submit sensor --host ${KFP_URL} --wait \\
      --param bucket_url=s3://ota --param keys_dir=/opt/edgeship/keys
MSG
