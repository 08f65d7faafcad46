#!/usr/bin/env bash
# Load the component image (built by `make image`) into the kind node: no registry needed,
# and components use imagePullPolicy IfNotPresent for tags other than :latest.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind
IMAGE="$(image_name)"
cluster_exists || die "no kind cluster ${CLUSTER}: run 'make kind-up' first"
docker image inspect "${IMAGE}" >/dev/null 2>&1 || die "image ${IMAGE} not built: run 'make image'"
[[ "${IMAGE}" != *:latest ]] || die "${IMAGE}: a :latest tag makes Kubernetes pull from a registry"
log "loading ${IMAGE} into kind cluster ${CLUSTER}"
kind load docker-image "${IMAGE}" --name "${CLUSTER}"
