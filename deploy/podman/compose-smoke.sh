#!/usr/bin/env bash
# `make compose-smoke`: deploy/compose-local.yaml up under podman-compose, one pipeline end to
# end on a small slice of the bundled data set (GRU, LSTM, PROPHET trained in their containers,
# a champion promoted by eval, /predict answered by the inference container), then down,
# checking that nothing of the project is left. Writes deploy/results/compose_smoke.json.
# Not part of `make test`: it takes minutes (image start-up, training, MLflow).
# Random credentials and free loopback ports for each run; nothing is written to deploy/.env.
PROJECT="${PROJECT:-flts-smoke}"
export PROJECT
ENV_FILE=/nonexistent
source "$(dirname "$0")/compose-local.sh"
IMAGE="${FLTS_IMAGE:-localhost/flts:0.1.0}"
RESULT="${RESULT:-${REPO_ROOT}/deploy/results/compose_smoke.json}"
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
export FLTS_EPOCHS="${FLTS_EPOCHS:-3}"
# podman-compose 1.0.3 echoes every podman command, env values (the secrets) included: keep
# that out of the terminal.
export COMPOSE_LOG="${work}/compose.log"
export FLTS_IMAGE="${IMAGE}"

cleanup() {
    local rc=$?
    if [ "${rc}" != 0 ]; then
        # Kept for diagnosis (mode 0600: it holds this run's throw-away secrets).
        install -m 600 "${COMPOSE_LOG}" "/tmp/${PROJECT}-compose.log" 2>/dev/null || true
        echo "smoke failed (rc ${rc}); podman-compose output: /tmp/${PROJECT}-compose.log" >&2
        echo "last service logs:" >&2
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

# The e2e test's slice and config (tests/e2e/test_pipeline_e2e.py): small, and the RNNs beat
# persistence on it with 3 epochs, so eval's gate promotes a champion.
head -n 6001 "${REPO_ROOT}/src/flts/datasets/barcelona_lte/PobleSec.csv" > "${work}/train.csv"
head -n 1001 "${REPO_ROOT}/src/flts/datasets/barcelona_lte/PobleSec_test.csv" > "${work}/test.csv"
chmod 644 "${work}"/*.csv
identifier="smoke-$(date -u +%Y%m%d%H%M%S)"
t1=${SECONDS}
cmd_preprocess --train "${work}/train.csv" --test "${work}/test.csv" --identifier "${identifier}" \
    --config '{"lookback": 30, "season_steps": 360}'
t_pre=$((SECONDS - t1))

# The inference container answers once it has loaded a model (a trained one can come first,
# RUN_INFERENCE_ON_TRAIN_SUCCESS); the run is done when it serves the promoted champion.
api="http://127.0.0.1:${FLTS_LOCAL_INFERENCE_PORT}"
mlflow_url="http://127.0.0.1:${FLTS_LOCAL_MLFLOW_PORT}"
wait_http "${api}/readyz" "${TIMEOUT_S}"
t_ready=$((SECONDS - t1))
containers_up="$(${ENGINE} ps --filter "label=io.podman.compose.project=${PROJECT}" --format '{{.Names}}' | sort | tr '\n' ' ')"
python3 - "${api}" "${API_TOKEN}" "${work}/test.csv" "${work}/result.json" "${mlflow_url}" \
    "${identifier}" "${TIMEOUT_S}" "${t_ready}" <<'PY'
import csv, json, sys, time, urllib.error, urllib.parse, urllib.request
api, token, test_csv, out, mlflow, identifier, timeout_s, t_ready = sys.argv[1:]
auth = {"Authorization": f"Bearer {token}"}
def call(url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    hdrs = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
    t = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=hdrs), timeout=60) as r:
        return r.status, json.loads(r.read()), time.perf_counter() - t
t0 = time.monotonic()
deadline = t0 + float(timeout_s)
while True:
    _, model, _ = call(api + "/model", headers=auth)
    if model.get("source") == "promotion" and model.get("identifier") == identifier:
        break
    if time.monotonic() > deadline:
        sys.exit(f"no promoted champion served within {timeout_s} s; last /model: {model}")
    time.sleep(2)
promoted_after = float(t_ready) + time.monotonic() - t0
# The registry agrees: the champion alias points at the run the container serves.
q = urllib.parse.urlencode({"name": "flts-forecaster", "alias": "champion"})
_, alias, _ = call(f"{mlflow}/api/2.0/mlflow/registered-models/alias?{q}")
version = alias["model_version"]
assert version["run_id"] == model["run_id"], (version, model)
_, exp, _ = call(f"{mlflow}/api/2.0/mlflow/experiments/get-by-name?experiment_name=flts")
_, runs, _ = call(f"{mlflow}/api/2.0/mlflow/runs/search",
                  {"experiment_ids": [exp["experiment"]["experiment_id"]], "max_results": 100})
finished = [r for r in runs.get("runs", []) if r["info"]["status"] == "FINISHED"]
with open(test_csv) as f:
    rows = list(csv.DictReader(f))[-200:]
obs = [{k: (v if k == "time" else float(v)) for k, v in r.items()} for r in rows]
status, forecast, seconds = call(api + "/predict", {"observations": obs}, auth)
points = forecast.get("forecast", [])
assert status == 200 and points, forecast
try:  # unauthenticated calls are refused by the container's API
    urllib.request.urlopen(urllib.request.Request(api + "/model"), timeout=10)
    unauth = 200
except urllib.error.HTTPError as exc:
    unauth = exc.code
assert unauth == 401, unauth
json.dump({"model": model, "registry_champion": {"version": version["version"],
           "run_id": version["run_id"]}, "mlflow_finished_runs": len(finished),
           "forecast_points": len(points), "first_point": points[0],
           "predict_seconds": round(seconds, 3), "unauthenticated_model_status": unauth,
           "preprocess_to_champion_served_s": round(promoted_after, 1)}, open(out, "w"))
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
champion_s = res.pop("preprocess_to_champion_served_s")
summary = {
    "what": "make compose-smoke: deploy/compose-local.yaml under podman-compose, one pipeline "
            "end to end on the bundled data's first 6000/1000 rows, then down",
    "engine": "${ENGINE}",
    "image": "${IMAGE}",
    "image_bytes": int("$(${ENGINE} image inspect --format '{{.Size}}' "${IMAGE}")"),
    "identifier": "${identifier}",
    "epochs": int("${FLTS_EPOCHS}"),
    "containers_running": "${containers_up}".split(),
    "champion": {"model_type": model["model_type"], "run_id": model["run_id"],
                 "served_source": model["source"], **res.pop("registry_champion")},
    "model_endpoint": {k: v for k, v in model.items() if k not in ("spec",)},
    **res,
    "seconds": {"up": ${t_up}, "preprocess": ${t_pre}, "preprocess_to_first_model_served": ${t_ready},
                "preprocess_to_champion_served": champion_s,
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
