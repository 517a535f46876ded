"""``flts bench live``: observation-to-forecast latency and sustained observations per second.

On a fresh local stack (tansu on SeaweedFS, MLflow), one inference service on private topics
answers for one identifier with a LINEAR champion fitted on the bundled data (logged to MLflow,
promoted by a ``model-selected`` event, so the service loads it as in production). Then:

- latency: observations one at a time (the next after the previous one's forecast arrived),
  from the producer's send to this process receiving the forecast on ``forecasts``;
  p50/p99 (target p99 < 100 ms, the issue's);
- throughput: a burst of observations sent as fast as possible; sustained rate = burst size /
  (time until the service counted the burst's forecasts, from ``/live/state``).
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from flts import kafka_utils
from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, make_result, percentile

log = logging.getLogger(__name__)
TARGET_P99_MS = 100.0
#: librdkafka fetch.wait.max.ms of the service's observations consumer and of this reader.
FETCH_WAIT_MS = 25
#: Observations sent one at a time before the recorded ones (the path's first fetches).
WARMUP_SAMPLES = 5


def run(options: BenchOptions) -> list[BenchResult]:
    from flts.bench.kafka_bench import memory_broker
    from flts.infra.stack import LocalStack, StackPorts

    timer = Timer()
    n_latency, n_burst = (50, 300) if options.quick else (300, 3000)
    with tempfile.TemporaryDirectory(prefix="flts-bench-live-") as tmp:
        work = Path(tmp)
        stack = LocalStack(work / "stack", StackPorts.free())
        endpoints = stack.up()
        try:
            frame, selected = _champion(endpoints.mlflow_uri, f"bench-{uuid.uuid4().hex[:8]}")
            figures = _measure(
                endpoints, endpoints.kafka_bootstrap, work, frame, selected, n_latency, n_burst
            )
            # The same service on a broker that keeps its log in memory: what the service and
            # the client path cost without tansu's S3 round trip per write.
            with memory_broker() as bootstrap:
                figures["memory_broker"] = _measure(
                    endpoints, bootstrap, work, frame, selected, n_latency, n_burst
                )
        finally:
            stack.down()
    notes = [
        "latency: send -> forecast received by this process, one observation at a time "
        f"(producer flush per send included), after {WARMUP_SAMPLES} unrecorded ones that warm "
        "the path (first fetch, metadata of new topics)",
        "observation_acked: send -> the broker confirmed the observation (one produce hop)",
        f"OBSERVATIONS_FETCH_WAIT_MS={FETCH_WAIT_MS} for the service and the reader (tansu holds "
        "a fetch for its whole wait; the default 500 ms suits Kafka)",
        "memory_broker: the same run against a bare tansu with memory:// storage (the service "
        "still uses the stack's S3 and MLflow); the default stack's tansu writes every batch "
        "to S3 (SeaweedFS)",
    ]
    return [
        make_result(
            "live",
            timer,
            quick=options.quick,
            config={
                "model": "LINEAR",
                "identifiers": 1,
                "latency_n": n_latency,
                "burst_n": n_burst,
            },
            figures=figures,
            target={"description": "observation-to-forecast p99 < 100 ms", "p99_ms": TARGET_P99_MS},
            target_met=figures["latency_p99_ms"] < TARGET_P99_MS,
            notes=notes,
        )
    ]


def _measure(
    endpoints: Any,
    bootstrap: str,
    work: Path,
    frame: pd.DataFrame,
    selected: dict[str, Any],
    n_latency: int,
    n_burst: int,
) -> dict[str, Any]:
    """One inference service on ``bootstrap``: latency one observation at a time, then a burst."""
    from flts.infra import procs
    from flts.services.wiring import private_inference_topics, service_command, service_env

    u = uuid.uuid4().hex[:8]
    topics = private_inference_topics(u)
    kafka_utils.ensure_topics(bootstrap, list(topics.values()))
    port = procs.free_port()
    env = service_env(
        "inference",
        {**endpoints.service_env(), "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        **topics,
        CONSUMER_GROUP_ID=f"bench-live-{u}",
        OBSERVATIONS_GROUP_ID=f"bench-live-obs-{u}",
        API_PORT=str(port),
        REGISTERED_MODEL_NAME=f"bench-live-{u}",
        # Latency of forecasts, not retraining: a drift would also send a retraining request
        # that no preprocess service here consumes.
        LIVE_RETRAIN="false",
        # tansu holds a fetch for its whole wait (Kafka answers when data arrives): the
        # documented low-latency setting for it, fine for a run of this length.
        OBSERVATIONS_FETCH_WAIT_MS=str(FETCH_WAIT_MS),
    )
    service = procs.start("inference", service_command("inference"), env, work / f"logs-{u}")
    identifier = selected["identifier"]
    try:
        producer = kafka_utils.create_producer(bootstrap_servers=bootstrap)
        kafka_utils.produce_message(producer, topics["PROMOTION_TOPIC"], selected, "promotion")
        _wait_champion(port, identifier, service)
        consumer = _consumer(bootstrap, topics["FORECASTS_TOPIC"])
        rows = _rows(frame, identifier)
        wanted = WARMUP_SAMPLES + n_latency + n_burst
        # Warm-up: the window must hold the champion's history before forecasts come.
        warm, rest = rows[:-wanted], rows[-wanted:]
        for obs in warm:
            producer.produce(topics["OBSERVATIONS_TOPIC"], _with_flag(obs), key=identifier)
            producer.poll(0)
        producer.flush(30)
        latencies: list[float] = []
        acked: list[float] = []  # send -> the broker confirmed the observation
        for obs in rest[: WARMUP_SAMPLES + n_latency]:
            sent = time.perf_counter()
            producer.produce(topics["OBSERVATIONS_TOPIC"], orjson.dumps(obs), key=identifier)
            producer.flush(10)
            acked.append((time.perf_counter() - sent) * 1000.0)
            _await_forecasts(consumer, 1, 30)
            latencies.append((time.perf_counter() - sent) * 1000.0)
        latencies, acked = latencies[WARMUP_SAMPLES:], acked[WARMUP_SAMPLES:]
        burst = rest[WARMUP_SAMPLES + n_latency :]
        made = _forecasts_made(port, identifier)
        started = time.perf_counter()
        for obs in burst:
            producer.produce(topics["OBSERVATIONS_TOPIC"], orjson.dumps(obs), key=identifier)
            producer.poll(0)
        producer.flush(30)
        _await_made(port, identifier, made + len(burst), 300)
        burst_s = time.perf_counter() - started
        consumer.close()
    finally:
        service.stop()
    return {
        "latency_p50_ms": round(percentile(latencies, 50), 2),
        "latency_p90_ms": round(percentile(latencies, 90), 2),
        "latency_p99_ms": round(percentile(latencies, 99), 2),
        "latency_max_ms": round(max(latencies), 2),
        "observation_acked_p50_ms": round(percentile(acked, 50), 2),
        "observation_acked_p99_ms": round(percentile(acked, 99), 2),
        "latency_samples": len(latencies),
        "burst_observations": len(burst),
        "burst_s": round(burst_s, 3),
        "sustained_obs_per_s": round(len(burst) / burst_s, 1),
    }


def _champion(mlflow_uri: str, identifier: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A LINEAR model fitted in-process on the bundled data, logged, as a promotion event."""
    from flts.adapters.mlflow_tracker import MlflowTracker
    from flts.datasets import bundled_test_csv, bundled_train_csv
    from flts.domain.config import ModelType, PreprocessConfig
    from flts.forecasting.models import create_forecaster
    from flts.forecasting.prepare import prepare_datasets

    config = PreprocessConfig(lookback=30, horizon=1)
    data = prepare_datasets(
        bundled_train_csv().read_bytes(),
        bundled_test_csv().read_bytes(),
        config,
        config_hash="bench",
    )
    model = create_forecaster(ModelType.LINEAR, data.spec)
    model.fit(data.train)
    tracker = MlflowTracker(mlflow_uri)
    run_id = tracker.start_run("flts-bench-live", "linear", {})
    uri = tracker.log_forecaster(run_id, model, "model").model_uri
    raw = pd.read_csv(bundled_train_csv())
    selected = {
        "model_uri": uri,
        "model_type": "LINEAR",
        "run_id": run_id,
        "config_hash": "bench",
        "composite_score": 0.9,
        "test_rmse": 1.0,
        "test_mae": 1.0,
        "test_mse": 1.0,
        "promotion_time": "2025-01-01T00:00:00Z",
        "identifier": identifier,
    }
    return raw, selected


def _rows(frame: pd.DataFrame, identifier: str) -> list[dict[str, Any]]:
    numeric = [c for c in frame.columns if c != "time"]
    stamps = pd.to_datetime(frame["time"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for stamp, values in zip(stamps, frame[numeric].to_dict("records"), strict=True):
        if all(pd.notna(v) for v in values.values()):  # a row with a gap would be dead-lettered
            out.append({"identifier": identifier, "timestamp": stamp, "values": values})
    return out


def _with_flag(obs: dict[str, Any]) -> bytes:
    return orjson.dumps({**obs, "warmup": True})


def _consumer(bootstrap: str, topic: str) -> Consumer:
    """A reader of every partition of ``topic`` from its start, assigned rather than subscribed:
    a group join takes seconds on tansu and would land in the first latency sample."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-live-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            # As the service's (at 5 ms this reader's fetches alone loaded tansu-over-S3 until
            # forecasts took seconds to arrive).
            "fetch.wait.max.ms": FETCH_WAIT_MS,
        }
    )
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
    return consumer


def _await_forecasts(consumer: Consumer, n: int, timeout_s: float) -> None:
    """Until ``n`` more forecasts arrived (counted, not matched by origin: the service snaps
    an off-grid timestamp to its grid)."""
    deadline = time.monotonic() + timeout_s
    seen = 0
    while seen < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{seen} of {n} forecasts within {timeout_s:g} s")
        msg = consumer.poll(0.01)
        if msg is not None and not msg.error():
            seen += 1


def _forecasts_made(port: int, identifier: str) -> int:
    state = httpx.get(f"http://127.0.0.1:{port}/live/state", timeout=5).json()
    return int(state["identifiers"][identifier]["forecasts_made"])


def _await_made(port: int, identifier: str, total: int, timeout_s: float) -> None:
    """Until the service made ``total`` forecasts (its own count: the burst measures the
    service's sustained rate, not a reader's)."""
    deadline = time.monotonic() + timeout_s
    while (made := _forecasts_made(port, identifier)) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{made} of {total} forecasts within {timeout_s:g} s")
        time.sleep(0.05)


def _wait_champion(port: int, identifier: str, service: Any) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            state = httpx.get(f"http://127.0.0.1:{port}/live/state", timeout=2).json()
            if identifier in state.get("identifiers", {}):
                return
        except httpx.HTTPError:
            pass
        if service.exited() is not None:
            raise RuntimeError(f"inference exited: {service.log_tail()}")
        time.sleep(0.5)
    raise TimeoutError("the champion never reached the live loop")
