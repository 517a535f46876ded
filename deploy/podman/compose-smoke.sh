#!/usr/bin/env bash
# `make compose-smoke`: deploy/compose-local.yaml up under podman-compose, one pipeline end to
# end on a small slice of the bundled data set (GRU, LSTM, PROPHET trained in their containers,
# a champion promoted by eval, /predict answered by the inference container), then down,
# checking that nothing of the project is left. Writes bench/results/compose_smoke.json.
# Not part of `make test`: it takes minutes (image start-up, training, MLflow).
# Random credentials and free loopback ports for each run; nothing is written to deploy/.env.
PROJECT="${PROJECT:-flts-smoke}"
export PROJECT
ENV_FILE=/nonexistent
source "$(dirname "$0")/compose-local.sh"
IMAGE="${FLTS_IMAGE:-localhost/flts:0.1.0}"
RESULT="${RESULT:-${REPO_ROOT}/bench/results/compose_smoke.json}"
TIMEOUT_S="${TIMEOUT_S:-1200}"

${ENGINE} image exists "${IMAGE}" || { echo "no image ${IMAGE}: run make image first" >&2; exit 1; }
work="$(mktemp -d)"
chmod 755 "${work}"

# Secrets and ports of this run only.
eval "$(python3 - <<'PY'
import secrets, socket
def free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
values = {
    "AWS_ACCESS_KEY_ID": "flts" + secrets.token_hex(8),
    "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    "API_TOKEN": secrets.token_urlsafe(24),
    "GATEWAY_TOKEN": secrets.token_urlsafe(24),
}
for name in ("S3", "MLFLOW", "GATEWAY", "INFERENCE"):
    values[f"FLTS_LOCAL_{name}_PORT"] = str(free())
for k, v in values.items():
    print(f"export {k}={v}")
PY
)"
export FLTS_EPOCHS="${FLTS_EPOCHS:-1}"
# podman-compose 1.0.3 echoes every podman command, env values (the secrets) included: keep
# that out of the terminal.
export COMPOSE_LOG="${work}/compose.log"
export FLTS_IMAGE="${IMAGE}"

cleanup() {
    local rc=$?
    if [ "${rc}" != 0 ]; then
        echo "smoke failed (rc ${rc}); last logs:" >&2
        for s in "${FLTS[@]}"; do
            echo "--- ${s}" >&2
            ${ENGINE} logs --tail 15 "${PROJECT}_${s}_1" >&2 2>&1 || true
        done
    fi
    cmd_down > "${work}/down.log" 2>&1
    rm -rf "${work}"
}
trap cleanup EXIT

t0=${SECONDS}
cmd_down > /dev/null 2>&1  # leftovers of an interrupted run
cmd_up
t_up=$((SECONDS - t0))

# A small slice (the quick benchmark's sizes) and a preprocess config to match.
head -n 3001 "${REPO_ROOT}/src/flts/datasets/barcelona_lte/PobleSec.csv" > "${work}/train.csv"
head -n 1001 "${REPO_ROOT}/src/flts/datasets/barcelona_lte/PobleSec_test.csv" > "${work}/test.csv"
chmod 644 "${work}"/*.csv
identifier="smoke-$(date -u +%Y%m%d%H%M%S)"
t1=${SECONDS}
cmd_preprocess --train "${work}/train.csv" --test "${work}/test.csv" --identifier "${identifier}" \
    --config '{"season_steps": 30, "lookback": 12}'
t_pre=$((SECONDS - t1))

# The inference container is ready once it has loaded a promoted champion.
api="http://127.0.0.1:${FLTS_LOCAL_INFERENCE_PORT}"
wait_http "${api}/readyz" "${TIMEOUT_S}"
t_promoted=$((SECONDS - t1))

containers_up="$(${ENGINE} ps --filter "label=io.podman.compose.project=${PROJECT}" --format '{{.Names}}' | sort | tr '\n' ' ')"
python3 - "${api}" "${API_TOKEN}" "${work}/test.csv" "${work}/result.json" <<'PY'
import csv, json, sys, time, urllib.request
api, token, test_csv, out = sys.argv[1:]
auth = {"Authorization": f"Bearer {token}"}
def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {**auth, **({"Content-Type": "application/json"} if data else {})}
    req = urllib.request.Request(api + path, data=data, headers=headers)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read()), time.perf_counter() - t
_, model, _ = call("/model")
with open(test_csv) as f:
    rows = list(csv.DictReader(f))[-200:]
obs = [{k: (v if k == "time" else float(v)) for k, v in r.items()} for r in rows]
status, forecast, seconds = call("/predict", {"observations": obs})
points = forecast.get("forecast", [])
assert status == 200 and points, forecast
# Unauthenticated calls are refused by the container's API.
try:
    urllib.request.urlopen(urllib.request.Request(api + "/model"), timeout=10)
    unauth = 200
except urllib.error.HTTPError as exc:
    unauth = exc.code
json.dump({"model": model, "forecast_points": len(points), "first_point": points[0],
           "predict_seconds": round(seconds, 3), "unauthenticated_model_status": unauth},
          open(out, "w"))
PY

cmd_down > "${work}/down.log" 2>&1
left_containers="$(${ENGINE} ps -a --filter "label=io.podman.compose.project=${PROJECT}" -q | wc -l)"
left_volumes="$(${ENGINE} volume ls -q --filter "label=io.podman.compose.project=${PROJECT}" | wc -l)"
left_pods="$(${ENGINE} pod ls -q --filter "name=pod_${PROJECT}" 2>/dev/null | wc -l)"
t_total=$((SECONDS - t0))

python3 - "${work}/result.json" "${RESULT}" <<PY
import json, sys
res = json.load(open(sys.argv[1]))
model = res.pop("model")
summary = {
    "what": "make compose-smoke: deploy/compose-local.yaml under podman-compose, one pipeline "
            "end to end on the bundled data's first 3000/1000 rows, then down",
    "engine": "${ENGINE}",
    "image": "${IMAGE}",
    "image_bytes": int("$(${ENGINE} image inspect --format '{{.Size}}' "${IMAGE}")"),
    "identifier": "${identifier}",
    "epochs": int("${FLTS_EPOCHS}"),
    "containers_running": "${containers_up}".split(),
    "champion": {k: model.get(k) for k in ("model_type", "run_id", "model_version", "registered_model", "alias") if k in model},
    "model_endpoint": {k: v for k, v in model.items() if k not in ("spec",)},
    **res,
    "seconds": {"up": ${t_up}, "preprocess": ${t_pre}, "preprocess_to_champion_served": ${t_promoted},
                "total_with_down": ${t_total}},
    "left_after_down": {"containers": ${left_containers}, "volumes": ${left_volumes}, "pods": ${left_pods}},
    "note": "shared 2-core machine (other engineers running tests): timings are indicative",
}
json.dump(summary, open(sys.argv[2], "w"), indent=2, sort_keys=True)
print(json.dumps(summary, indent=2, sort_keys=True))
PY
if [ "${left_containers}${left_volumes}${left_pods}" != "000" ]; then
    echo "down left containers/volumes/pods of ${PROJECT} behind" >&2
    exit 1
fi
echo "compose smoke passed in ${t_total} s"
