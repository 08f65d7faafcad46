#!/usr/bin/env bash
# End to end on a machine with Docker and kind: build the image, bring the cluster up, load
# the image, run the sensor pipeline on KFP to success, then play a device on this host that
# polls the in-cluster OTA bucket through its NodePort and activates the published model.
#
#   SKIP_BUILD=1        reuse an already built image
#   E2E_DELETE=1        delete the cluster at the end (default: keep it for inspection)
#   E2E_TIMEOUT=S       how long the pipeline run may take (default 3600)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind kubectl curl
HERE="$(dirname "${BASH_SOURCE[0]}")"
IMAGE="$(image_name)"
KEYS="${EDGESHIP_KEYS:-${STATE_DIR}/keys}"
DEVICE_DIR="${STATE_DIR}/e2e-device"
EDGESHIP="${VENV_BIN}/edgeship"

if [[ "${E2E_DELETE:-0}" == "1" ]]; then
  trap '"${HERE}/kind-down.sh"' EXIT
fi

# 1. Image.
if [[ "${SKIP_BUILD:-0}" != "1" ]]; then
  log "building ${IMAGE}"
  make -C "${ROOT}" image
fi

# 2. Cluster, KFP, bucket and secrets (kind-up also loads the image when it exists).
EDGESHIP_KEYS="${KEYS}" "${HERE}/kind-up.sh"

# 3. A pipeline run, followed to its end (edgeship submit exits 1 unless it SUCCEEDED).
log "submitting the sensor pipeline"
"${EDGESHIP}" submit sensor --host "${KFP_URL}" --experiment edgeship-e2e \
  --param bucket_url=s3://ota --param keys_dir=/opt/edgeship/keys \
  --param channel=stable --param rollout_percent=100 \
  --wait --timeout "${E2E_TIMEOUT:-3600}"

# 4. The model is in the in-cluster bucket: read the signed timestamp anonymously.
curl -fsS "${BUCKET_URL}/ota/metadata/timestamp.json" >/dev/null ||
  die "no metadata/timestamp.json in the OTA bucket after the run"
# Anonymous writes must be refused (the bucket is read-only for devices).
code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data x "${BUCKET_URL}/ota/e2e-anonymous-write")"
[[ "${code}" == "403" ]] || die "anonymous PUT to the bucket answered ${code}, expected 403"

# 5. The refresh CronJob works: run it once now.
job="e2e-refresh-$(date +%s)"
kc -n edgeship-ota create job "${job}" --from=cronjob/ota-timestamp-refresh >/dev/null
kc -n edgeship-ota wait --for=condition=complete --timeout=300s "job/${job}" ||
  { kc -n edgeship-ota logs "job/${job}" >&2 || true; die "timestamp refresh job failed"; }

# 6. A device on this host: trusts only the firmware root, polls through the NodePort.
log "polling as a device from ${BUCKET_URL}/ota"
rm -rf "${DEVICE_DIR}"
"${EDGESHIP}" device poll --repo "${BUCKET_URL}/ota" --trusted-root "${KEYS}/root.json" \
  --state-dir "${DEVICE_DIR}" --device-id e2e-device-1 --hardware cpu --channel stable --once
status="$("${EDGESHIP}" device status --state-dir "${DEVICE_DIR}")"
echo "${status}"
"${VENV_BIN}/python" - "${status}" <<'PY'
import json, sys
status = json.loads(sys.argv[1])
active = status.get("active")
if not (active and active.get("verified") and active.get("name") == "sensor-fault"):
    sys.exit(f"device has no verified sensor-fault model active: {status}")
print(f"device activated {active}")
PY
log "kind e2e passed"
