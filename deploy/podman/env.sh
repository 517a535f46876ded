# Sourced by the deploy/podman scripts: pick the container engine, install podman if there is
# none (Debian/Ubuntu, as root), and point podman at the settings this host needs.
# Exports ENGINE (podman or docker) and COMPOSE (podman-compose or "docker compose").
set -euo pipefail

PODMAN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${PODMAN_DIR}/../.." && pwd)"
export PODMAN_DIR REPO_ROOT

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing $*: install them (as root: apt-get install -y $*)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# A docker client without a reachable engine (this build host has one) does not count.
if [ "${ENGINE:-}" = "" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        ENGINE=podman
    fi
fi
export ENGINE

if [ "${ENGINE}" = podman ]; then
    command -v podman >/dev/null 2>&1 || apt_install podman runc
    command -v runc >/dev/null 2>&1 || apt_install runc
    # Honour a site's own settings; otherwise the ones this kind of host needs.
    export CONTAINERS_CONF="${CONTAINERS_CONF:-${PODMAN_DIR}/containers.conf}"
    COMPOSE="podman-compose"
else
    COMPOSE="docker compose"
fi
export COMPOSE
