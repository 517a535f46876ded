#!/usr/bin/env bash
# Makes the local base image BASE_IMAGE (default localhost/flts-base:bookworm): a Debian
# bookworm minbase root file system with python3 and venv, built by mmdebstrap from the host's
# own apt sources and imported into podman. Needed where no image registry can be reached;
# elsewhere build with the Dockerfile's default base (python:3.11-slim) instead.
# Does nothing when the image exists (FORCE=1 rebuilds it).
source "$(dirname "$0")/env.sh"
BASE_IMAGE="${BASE_IMAGE:-localhost/flts-base:bookworm}"

if [ "${FORCE:-0}" != 1 ] && ${ENGINE} image exists "${BASE_IMAGE}" 2>/dev/null; then
    echo "base image ${BASE_IMAGE} exists"
    exit 0
fi
command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
# ca-certificates: HTTPS from inside the image (MLflow, S3 over TLS); tini is not needed
# (compose's init and Kubernetes reap zombies).
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "${work}/rootfs.tar"
${ENGINE} import --change 'CMD ["/bin/bash"]' "${work}/rootfs.tar" "${BASE_IMAGE}" >/dev/null
echo "base image ${BASE_IMAGE}: $(${ENGINE} image inspect --format '{{.Size}}' "${BASE_IMAGE}") bytes"
