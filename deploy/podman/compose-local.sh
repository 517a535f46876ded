#!/usr/bin/env bash
# The single-host compose (deploy/compose-local.yaml) with podman-compose, tiers in order:
#   deploy/podman/compose-local.sh up                 # infrastructure, then the FLTS services
#   deploy/podman/compose-local.sh preprocess --train A.csv --test B.csv [ARGS]   # one run
#   deploy/podman/compose-local.sh ps|logs SERVICE|down
# Settings come from the environment or ENV_FILE (default deploy/.env; see deploy/.env.example:
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, API_TOKEN, GATEWAY_TOKEN). podman-compose 1.0.3 has
# no --env-file, so the file is exported into the environment here.
# PROJECT (default flts-local) names the containers, network and volumes.
source "$(dirname "$0")/env.sh"
COMPOSE_FILE="${REPO_ROOT}/deploy/compose-local.yaml"
PROJECT="${PROJECT:-flts-local}"
ENV_FILE="${ENV_FILE:-${REPO_ROOT}/deploy/.env}"
FLTS=(gateway preprocess train_gru train_lstm nonml_prophet eval inference)

if [ "${ENGINE}" = podman ]; then
    command -v podman-compose >/dev/null 2>&1 \
        || apt_install podman-compose golang-github-containernetworking-plugin-dnsname dnsmasq-base
    # Service names resolve through the dnsname CNI plugin.
    [ -e /usr/lib/cni/dnsname ] || apt_install golang-github-containernetworking-plugin-dnsname dnsmasq-base
    compose() { podman-compose --no-ansi -p "${PROJECT}" -f "${COMPOSE_FILE}" "$@"; }
else
    compose() { docker compose -p "${PROJECT}" -f "${COMPOSE_FILE}" "$@"; }
fi
if [ -f "${ENV_FILE}" ]; then
    set -a
    # shellcheck disable=SC1090
    source "${ENV_FILE}"
    set +a
fi

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
    python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=3)
        sys.exit(0)
    except Exception:
        time.sleep(1)
sys.exit(f"{url} did not answer within {sys.argv[2]} s")
PY
}

# wait_done SERVICE SECONDS: until the one-shot SERVICE has exited 0.
wait_done() {
    local name="${PROJECT}_$1_1" deadline=$((SECONDS + $2)) state
    while [ "${SECONDS}" -lt "${deadline}" ]; do
        state="$(${ENGINE} inspect --format '{{.State.Status}} {{.State.ExitCode}}' "${name}" 2>/dev/null || true)"
        [ "${state}" = "exited 0" ] && return 0
        sleep 1
    done
    echo "$1 did not finish within $2 s (state: ${state:-none}); its log:" >&2
    ${ENGINE} logs --tail 30 "${name}" >&2 || true
    return 1
}

cmd_up() {
    # podman-compose 1.0.3 starts everything at once (no `condition:`); services restart until
    # their dependencies answer, and this waits for each tier in turn.
    compose up -d >> "${COMPOSE_LOG:-/dev/stdout}" 2>&1
    wait_http "http://127.0.0.1:${FLTS_LOCAL_S3_PORT:-18333}/healthz" 180
    wait_done s3-init 180
    wait_done topics-init 300
    wait_http "http://127.0.0.1:${FLTS_LOCAL_MLFLOW_PORT:-15000}/health" 300
    wait_http "http://127.0.0.1:${FLTS_LOCAL_GATEWAY_PORT:-18080}/healthz" 180
    wait_http "http://127.0.0.1:${FLTS_LOCAL_INFERENCE_PORT:-18000}/healthz" 300
    echo "up: inference http://127.0.0.1:${FLTS_LOCAL_INFERENCE_PORT:-18000}, MLflow http://127.0.0.1:${FLTS_LOCAL_MLFLOW_PORT:-15000}"
}

# cmd_preprocess --train FILE --test FILE [ARGS]: one run of local CSVs, inside the preprocess
# container (the files are copied in; paths of other arguments are passed on unchanged).
cmd_preprocess() {
    local args=() container="${PROJECT}_preprocess_1" dest
    while [ $# -gt 0 ]; do
        case "$1" in
            --train|--test)
                dest="/tmp/$(basename "$2")"
                ${ENGINE} cp "$2" "${container}:${dest}"
                args+=("$1" "${dest}")
                shift 2 ;;
            *) args+=("$1"); shift ;;
        esac
    done
    ${ENGINE} exec "${container}" flts service preprocess "${args[@]}"
}

cmd_down() {
    compose down -v >> "${COMPOSE_LOG:-/dev/stdout}" 2>&1 || true
    # podman-compose 1.0.3 leaves the project's named volumes and network behind on some paths.
    if [ "${ENGINE}" = podman ]; then
        ${ENGINE} volume ls -q --filter "label=io.podman.compose.project=${PROJECT}" \
            | xargs -r ${ENGINE} volume rm -f >/dev/null
        ${ENGINE} network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
    fi
}

# Sourced (by compose-smoke.sh): functions only.
[[ "${BASH_SOURCE[0]}" != "$0" ]] && return 0
case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    preprocess) shift; cmd_preprocess "$@" ;;
    ps) compose ps ;;
    logs) shift; compose logs "$@" ;;
    *) echo "usage: $0 up|down|preprocess [ARGS]|ps|logs SERVICE" >&2; exit 2 ;;
esac
