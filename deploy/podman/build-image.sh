#!/usr/bin/env bash
# `make image`: builds the FLTS image IMAGE (default localhost/flts:0.1.0) with podman (docker
# where an engine answers) from a locally made base and a host wheelhouse, then checks that it
# runs `flts --version` as a non-root user and reports its size and the build time.
#   BASE_IMAGE=python:3.11-slim NO_WHEELHOUSE=1 deploy/podman/build-image.sh   # registry base
source "$(dirname "$0")/env.sh"
IMAGE="${IMAGE:-localhost/flts:0.1.0}"
EXTRAS="${EXTRAS:-ml,kfp,stack}"
export BASE_IMAGE="${BASE_IMAGE:-localhost/flts-base:bookworm}"
export EXTRAS

start=$(date +%s)
if [[ "${BASE_IMAGE}" == localhost/* ]]; then
    "${PODMAN_DIR}/make-base.sh"
fi
if [ "${NO_WHEELHOUSE:-0}" != 1 ]; then
    "${PODMAN_DIR}/wheelhouse.sh"
fi
# docker format keeps the HEALTHCHECK (podman's default OCI format drops it).
format=()
[ "${ENGINE}" = podman ] && format=(--format docker)
build_start=$(date +%s)
${ENGINE} build "${format[@]}" --tag "${IMAGE}" \
    --build-arg BASE_IMAGE="${BASE_IMAGE}" --build-arg EXTRAS="${EXTRAS}" \
    --file "${REPO_ROOT}/Dockerfile" "${REPO_ROOT}"
end=$(date +%s)

# --no-healthcheck: podman schedules healthchecks with systemd timers, which this host lacks.
run=(run --rm)
[ "${ENGINE}" = podman ] && run+=(--no-healthcheck)
version="$(${ENGINE} "${run[@]}" "${IMAGE}" --version)"
uid="$(${ENGINE} "${run[@]}" --entrypoint id "${IMAGE}" -u)"
if [ "${uid}" = 0 ]; then
    echo "the image runs as root" >&2
    exit 1
fi
size="$(${ENGINE} image inspect --format '{{.Size}}' "${IMAGE}")"
echo "image ${IMAGE}: ${version}, uid ${uid}, $((size / 1000000)) MB;" \
    "build $((end - build_start)) s (with base and wheelhouse $((end - start)) s)"
