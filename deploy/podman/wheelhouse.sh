#!/usr/bin/env bash
# Fills deploy/wheelhouse/ with a wheel of every package the image installs (EXTRAS, pinned by
# constraints.txt), on the host, so that the image build installs offline (--no-index).
# Why: pip inside a container build cannot verify this host's TLS interception proxy without
# the host's CA bundle, and the bundle must not end up in the image; a host wheelhouse avoids
# both. Torch comes from TORCH_INDEX_URL (CPU build) or a local wheel in PIP_FIND_LINKS.
source "$(dirname "$0")/env.sh"
EXTRAS="${EXTRAS:-ml,kfp,stack}"
# A CPU torch wheel already on disk (PIP_FIND_LINKS) wins; otherwise the CPU wheel index.
torch_index=()
if ! ls "${PIP_FIND_LINKS:-/nonexistent}"/torch-*+cpu-*.whl >/dev/null 2>&1; then
    torch_index=(--extra-index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}")
fi
WHEELHOUSE="${REPO_ROOT}/deploy/wheelhouse"
stamp="${WHEELHOUSE}/.complete-$(cat "${REPO_ROOT}/constraints.txt" "${REPO_ROOT}/pyproject.toml" \
    | sha256sum | cut -c1-16)-${EXTRAS//,/-}"

if [ -f "${stamp}" ]; then
    echo "wheelhouse up to date ($(du -sh "${WHEELHOUSE}" | cut -f1))"
    exit 0
fi
python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || { echo "the wheelhouse needs the image's Python, 3.11, on the host" >&2; exit 1; }
venv="${REPO_ROOT}/build/wheelhouse-venv"
[ -x "${venv}/bin/pip" ] || python3 -m venv "${venv}"
rm -f "${WHEELHOUSE}"/.complete-*
# The build backend (setuptools, wheel) too: the image builds the flts wheel without network.
"${venv}/bin/pip" download --quiet --dest "${WHEELHOUSE}" "setuptools>=77" wheel
"${venv}/bin/pip" wheel --quiet --wheel-dir "${WHEELHOUSE}" "${torch_index[@]}" \
    -c "${REPO_ROOT}/constraints.txt" "${REPO_ROOT}[${EXTRAS}]"
# The flts wheel itself is built from the sources inside the image, never taken from here.
rm -f "${WHEELHOUSE}"/flts-*.whl
if ls "${WHEELHOUSE}"/nvidia_* >/dev/null 2>&1; then
    echo "the wheelhouse holds CUDA libraries: torch must be the CPU build" >&2
    exit 1
fi
touch "${stamp}"
echo "wheelhouse ready: $(ls "${WHEELHOUSE}"/*.whl | wc -l) wheels, $(du -sh "${WHEELHOUSE}" | cut -f1)"
