# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared settings for the kind scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER="${EDGESHIP_CLUSTER:-edgeship}"       # must match `name:` in kind-config.yaml
KFP_VERSION="2.5.0"                            # must match the ?ref= of manifests/kfp*
KIND_VERSION="v0.29.0"                         # the release the pinned node image was built for
CTX="kind-${CLUSTER}"
KFP_URL="http://localhost:31380"
KFP_API_URL="http://localhost:31388"
BUCKET_URL="http://localhost:30833"
STATE_DIR="${EDGESHIP_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/edgeship/kind-${CLUSTER}}"
VENV_BIN="${ROOT}/.venv/bin"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
kc() { kubectl --context "${CTX}" "$@"; }

need() {
  local tool
  for tool in "$@"; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} not found on PATH (see docs/kind.md, step 1)"
  done
}

image_name() {
  # One source of truth for the image name: edgeship/image.py (EDGESHIP_IMAGE wins).
  [[ -x "${VENV_BIN}/python" ]] || die "no ${ROOT}/.venv: run 'make install' first"
  (cd "${ROOT}" && "${VENV_BIN}/python" -c 'from edgeship.image import IMAGE; print(IMAGE)')
}

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx "${CLUSTER}"
}

# Wait until URL answers 2xx, for at most $2 seconds; return non-zero on timeout.
wait_http() {
  local url="$1" timeout="$2" start
  start=$(date +%s)
  until curl -fsS -o /dev/null --max-time 5 "${url}"; do
    (( $(date +%s) - start < timeout )) || return 1
    sleep 5
  done
}
