"""The live loop on the real local stack: a promoted LINEAR champion, observations in, forecasts
out, a bad observation dead-lettered with its reason, the /live/state page data. Kept small:
a model fitted in-process on a few hundred rows, private topics, one inference process."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from tests.integration._services_helpers import TopicReader, spawn, uid

from flts import kafka_utils as ku
from flts.domain.config import ModelType
from flts.domain.messages import LiveForecast, ModelSelected, Observation, decode
from flts.forecasting.features import build_features, feature_order_for
from flts.forecasting.models import create_forecaster
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec, ScalerParams
from flts.forecasting.time_step import TimeStep
from flts.infra.procs import free_port
from flts.infra.stack import StackEndpoints
from flts.services.wiring import private_inference_topics
from flts.settings import KafkaSettings

pytestmark = [pytest.mark.integration]

STEP = 120
ROWS = 400


def _series() -> pd.DataFrame:
    import numpy as np

    t = np.arange(ROWS)
    down = 1000.0 + 200.0 * np.sin(2 * np.pi * t / 30)
    ds = pd.date_range("2025-03-01", periods=ROWS, freq=f"{STEP}s")
    return pd.DataFrame({TIME_COLUMN: ds, "down": down})


def _logged_linear(mlflow_uri: str) -> tuple[str, str]:
    from flts.adapters.mlflow_tracker import MlflowTracker

    raw = _series()
    order = feature_order_for(target="down", raw_columns=("down",), time_features=False, lags=())
    processed = build_features(
        raw, target="down", raw_columns=("down",), time_features=False, lags=(), step=TimeStep(STEP)
    )
    spec = ForecastSpec(
        target="down",
        feature_order=order,
        lookback=8,
        horizon=3,
        step_seconds=STEP,
        season_steps=30,
        scaler=ScalerParams.fit(order, processed[list(order)].to_numpy()),
        config_hash=f"live-{uid()}",
        raw_columns=("down",),
        time_features=False,
    )
    model = create_forecaster(ModelType.LINEAR, spec)
    model.fit(processed)
    tracker = MlflowTracker(mlflow_uri)
    run_id = tracker.start_run("flts-live-test", "linear", {})
    return run_id, tracker.log_forecaster(run_id, model, "model").model_uri


def test_observations_become_forecasts_on_the_real_stack(
    stack: StackEndpoints, kafka_settings: KafkaSettings, mlflow_uri: str, tmp_path: Path
) -> None:
    u = uid()
    topics = _private_topics(kafka_settings, u)
    run_id, uri = _logged_linear(mlflow_uri)
    port = free_port()
    env = {
        **topics,
        "CONSUMER_GROUP_ID": f"live-{u}",
        "API_PORT": str(port),
        "REGISTERED_MODEL_NAME": f"flts-live-{u}",
        "LIVE_METRICS_EVERY": "5",
    }
    service = spawn("inference", stack.service_env(), tmp_path, **env)
    forecasts = TopicReader(kafka_settings, topics["FORECASTS_TOPIC"])
    dead = TopicReader(kafka_settings, f"DLQ-{topics['OBSERVATIONS_TOPIC']}")
    producer = ku.create_producer(settings=kafka_settings)
    identifier = f"site-{u}"
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", service.log)
        selected = _promotion(identifier, run_id, uri)
        assert ku.produce_message(producer, topics["PROMOTION_TOPIC"], selected, key="promotion")
        # Observations before the promotion is consumed would be dead-lettered: wait for it.
        _wait_state(port, identifier, service.log)
        rows = _series().tail(40)
        items = _observations(identifier, rows)
        for obs in items:
            assert ku.produce_message(producer, topics["OBSERVATIONS_TOPIC"], obs, key=identifier)
        # A row with a non-numeric value: refused by the wire model, dead-lettered.
        raw = {
            "identifier": identifier,
            "timestamp": "2025-03-02T00:00:00",
            "values": {"down": "x"},
        }
        assert ku.produce_message(producer, topics["OBSERVATIONS_TOPIC"], raw, key=identifier)
        # 40 rows; LINEAR reads one season (30 rows): forecasts from the 30th row on.
        seen = forecasts.wait_for(lambda s: len(s) >= 11, 120, "11 forecasts", logs=service.log)
        dead.wait_for(lambda s: len(s) >= 1, 60, "the dead letter", logs=service.log)
        state = httpx.get(f"http://127.0.0.1:{port}/live/state", timeout=10).json()
    finally:
        assert service.stop() == 0
        forecasts.close()
        dead.close()
    first = decode(LiveForecast, seen[0][1])
    assert seen[0][0] == identifier
    assert (first.run_id, first.horizon, len(first.steps)) == (run_id, 3, 3)
    thirtieth = rows[TIME_COLUMN].iloc[29].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first.origin_timestamp == thirtieth
    reason = dead.seen[0][1]
    assert "values.down" in reason["error_details"]
    assert reason["payload"]["values"] == {"down": "x"}
    view = state["identifiers"][identifier]
    assert view["observations"] == 40
    assert view["metrics"]["points"] > 0


def test_a_restarted_service_forecasts_at_once_from_its_recovered_window(
    stack: StackEndpoints, kafka_settings: KafkaSettings, mlflow_uri: str, tmp_path: Path
) -> None:
    """SIGTERM and restart the inference service after 35 observations: the next observation is
    forecast at once. Its champion comes from the promotion topic's history (the group already
    committed the promotion) and its window from the replay of the observations before the
    committed offset; without either it would be dead-lettered or need 30 more rows."""
    u = uid()
    topics = _private_topics(kafka_settings, u)
    run_id, uri = _logged_linear(mlflow_uri)
    port = free_port()
    env = {
        **topics,
        "CONSUMER_GROUP_ID": f"live-{u}",
        "OBSERVATIONS_GROUP_ID": f"live-obs-{u}",
        "API_PORT": str(port),
        "REGISTERED_MODEL_NAME": f"flts-live-{u}",
    }
    forecasts = TopicReader(kafka_settings, topics["FORECASTS_TOPIC"])
    dead = TopicReader(kafka_settings, f"DLQ-{topics['OBSERVATIONS_TOPIC']}")
    producer = ku.create_producer(settings=kafka_settings)
    identifier = f"site-{u}"
    rows = _series().tail(40)
    items = _observations(identifier, rows)
    service = spawn("inference", stack.service_env(), tmp_path, **env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", service.log)
        selected = _promotion(identifier, run_id, uri)
        assert ku.produce_message(producer, topics["PROMOTION_TOPIC"], selected, key="promotion")
        _wait_state(port, identifier, service.log)
        for obs in items[:35]:
            assert ku.produce_message(producer, topics["OBSERVATIONS_TOPIC"], obs, key=identifier)
        # LINEAR reads one season (30 rows): forecasts from the 30th row, 6 of them.
        forecasts.wait_for(lambda s: len(s) >= 6, 120, "6 forecasts", logs=service.log)
    finally:
        assert service.stop() == 0
    restarted = spawn("inference", stack.service_env(), tmp_path, **env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", restarted.log)
        assert ku.produce_message(producer, topics["OBSERVATIONS_TOPIC"], items[35], key=identifier)
        seen = forecasts.wait_for(
            lambda s: len(s) >= 7, 120, "the forecast after the restart", logs=restarted.log
        )
        dead.poll_for(2.0)
    finally:
        assert restarted.stop() == 0
        forecasts.close()
        dead.close()
    log_text = restarted.log()
    after = decode(LiveForecast, seen[-1][1])
    assert after.origin_timestamp == rows[TIME_COLUMN].iloc[35].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert after.run_id == run_id
    assert dead.seen == []
    assert "recovered the live champion" in log_text
    assert "replaying offsets 0-34 as warm-up" in log_text
    assert "replayed 35 records as warm-up" in log_text


def _private_topics(kafka_settings: KafkaSettings, u: str) -> dict[str, str]:
    """The inference service's topics under names of this test's own (env name -> topic)."""
    topics = private_inference_topics(u)
    ku.ensure_topics(kafka_settings.bootstrap_servers, list(topics.values()))
    return topics


def _promotion(identifier: str, run_id: str, uri: str) -> ModelSelected:
    return ModelSelected(
        model_uri=uri,
        model_type="LINEAR",
        run_id=run_id,
        config_hash="live",
        composite_score=0.5,
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        promotion_time="2025-03-01T00:00:00Z",
        identifier=identifier,
    )


def _observations(identifier: str, rows: pd.DataFrame) -> list[Observation]:
    return [
        Observation(identifier=identifier, timestamp=ts.to_pydatetime(), values={"down": v})
        for ts, v in zip(rows[TIME_COLUMN], rows["down"], strict=True)
    ]


def _wait_ready(url: str, logs: object) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"inference not up: {logs() if callable(logs) else ''}")


def _wait_state(port: int, identifier: str, logs: object) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = httpx.get(f"http://127.0.0.1:{port}/live/state", timeout=5).json()
        if identifier in state["identifiers"]:
            return
        time.sleep(0.5)
    raise AssertionError(
        f"champion never reached the live loop: {logs() if callable(logs) else ''}"
    )
