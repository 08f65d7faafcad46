#!/usr/bin/env bash
# Delete the edgeship kind cluster. Keys and bucket credentials in the state folder are kept
# (they identify your device fleet); pass --purge to delete them too.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need kind

if cluster_exists; then
  log "deleting kind cluster ${CLUSTER}"
  kind delete cluster --name "${CLUSTER}"
else
  log "no kind cluster named ${CLUSTER}"
fi
if [[ "${1:-}" == "--purge" ]]; then
  log "removing ${STATE_DIR}"
  rm -rf "${STATE_DIR}"
fi
