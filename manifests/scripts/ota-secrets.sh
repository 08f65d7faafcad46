#!/usr/bin/env bash
# Create (or update) the Secrets and ConfigMaps the OTA bucket, the push step, the refresh and
# rollout-watch CronJobs and the fleet broker read, from a keys folder (`edgeship keys init`),
# generated S3 credentials and the broker folder STATE_DIR/fleet-broker.
# Nothing here is committed: credentials live in STATE_DIR (mode 0600) so re-runs reuse them.
#
#   ota-secrets.sh KEYS_DIR
# Names must match pipelines/cluster.py and manifests/local/{ota,fleet} (a test checks).
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KEYS="${1:?usage: ota-secrets.sh KEYS_DIR}"
CREDS="${STATE_DIR}/ota-writer.env"
BROKER="${STATE_DIR}/fleet-broker"
ENDPOINT="http://ota-bucket.edgeship-ota.svc.cluster.local:8333"

need kubectl openssl
mkdir -p "${STATE_DIR}"
if [[ ! -f "${KEYS}/root.json" ]]; then
  log "creating signing keys in ${KEYS}"
  "${VENV_BIN}/edgeship" keys init "${KEYS}"
fi
[[ -f "${KEYS}/online/signers.json" ]] || die "${KEYS}: no online/signers.json (not an 'edgeship keys init' folder?)"

if [[ ! -f "${CREDS}" ]]; then
  log "generating the bucket's publisher credentials in ${CREDS}"
  # Plain assignments first: a failing openssl stops the script here (set -e), where inside
  # printf's arguments it would leave an empty secret in the file.
  key_id="edgeship-$(openssl rand -hex 6)"
  secret="$(openssl rand -hex 24)"
  ( umask 077
    printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "${key_id}" "${secret}" > "${CREDS}" )
fi
# shellcheck disable=SC1090
source "${CREDS}"

apply() { kc apply -f - >/dev/null; }
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
chmod 700 "${tmp}"

# SeaweedFS identities: the publisher may read, list and write the ota bucket; anonymous
# clients (devices) may only read objects from it.
cat > "${tmp}/s3.json" <<JSON
{
  "identities": [
    {
      "name": "edgeship-publisher",
      "credentials": [{"accessKey": "${AWS_ACCESS_KEY_ID}", "secretKey": "${AWS_SECRET_ACCESS_KEY}"}],
      "actions": ["Read:ota", "Write:ota", "List:ota", "Tagging:ota"]
    },
    {"name": "anonymous", "actions": ["Read:ota"]}
  ]
}
JSON
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "${AWS_ACCESS_KEY_ID}" "${AWS_SECRET_ACCESS_KEY}" > "${tmp}/credentials"

# The root metadata is public: a ConfigMap with root.json and every N.root.json of its history.
root_args=(--from-file="root.json=${KEYS}/root.json")
for f in "${KEYS}"/root_history/*.root.json; do
  [[ -e "${f}" ]] && root_args+=(--from-file="$(basename "${f}")=${f}")
done

log "creating OTA secrets in namespaces edgeship-ota and kubeflow"
kc -n edgeship-ota create secret generic ota-bucket-s3-config \
  --from-file=s3.json="${tmp}/s3.json" --dry-run=client -o yaml | apply
kc -n edgeship-ota create secret generic ota-writer-credentials \
  --from-file=credentials="${tmp}/credentials" --dry-run=client -o yaml | apply
for ns_name in "edgeship-ota ota" "kubeflow edgeship-ota"; do
  read -r ns prefix <<<"${ns_name}"
  kc -n "${ns}" create secret generic "${prefix}-online-keys" \
    --from-file="${KEYS}/online" --dry-run=client -o yaml | apply
  kc -n "${ns}" create configmap "${prefix}-root" "${root_args[@]}" \
    --dry-run=client -o yaml | apply
done
kc -n kubeflow create secret generic edgeship-ota-writer \
  --from-literal=AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID}" \
  --from-literal=AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY}" \
  --from-literal=AWS_ENDPOINT_URL="${ENDPOINT}" \
  --dry-run=client -o yaml | apply
# The broker's password file (hashes) and the fleet reader's password. broker-config keeps the
# users already in BROKER (devices from `edgeship fleet add-device ID --hardware H --dir BROKER`), so a re-run
# rotates nothing. Its mosquitto.conf and acl stay unused: manifests/local/fleet has their
# in-cluster equivalents.
log "creating fleet broker secrets in namespace edgeship-ota"
"${VENV_BIN}/edgeship" fleet broker-config "${BROKER}" >/dev/null
kc -n edgeship-ota create secret generic fleet-broker-passwords \
  --from-file=passwords="${BROKER}/passwords" --dry-run=client -o yaml | apply
# The device registry (`add-device --hardware H --channel C`) goes beside the reader's
# password, where `rollout watch` looks for it; without one the watcher refuses to run.
registry=()
[[ -e "${BROKER}/devices.json" ]] && registry=(--from-file=devices.json="${BROKER}/devices.json")
kc -n edgeship-ota create secret generic fleet-reader-password \
  --from-file=fleet.password="${BROKER}/fleet.password" ${registry[@]+"${registry[@]}"} \
  --dry-run=client -o yaml | apply
# SeaweedFS reads s3.json at start: restart it so rotated credentials take effect.
kc -n edgeship-ota rollout restart deploy/ota-bucket >/dev/null
# Mosquitto reads its password file at start too (retained reports return as devices report).
kc -n edgeship-ota rollout restart deploy/fleet-broker >/dev/null
