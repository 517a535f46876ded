"""The live loop in the inference service, with in-memory doubles: routing, DLQ, forecasts,
live metrics, drift -> retraining request, and the page's JSON."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pandas as pd
import pytest
from tests._stage_data import IDENTIFIER, STEP, Setup, synthetic_frame
from tests.unit.test_inference_service import logged_model, selected_event

from flts.domain.messages import LiveForecast, Observation, PerformanceEval, PreprocessRequested
from flts.errors import MessageError
from flts.messaging.records import Output, Record
from flts.services.inference import InferenceService
from flts.services.live import LiveLoop
from flts.services.wiring import route_dlq
from flts.serving.model_state import ModelState
from flts.settings import InferenceSettings, LiveSettings
from flts.stages.ports import BUCKET_DATASET, BUCKET_INFERENCE_LOGS


@pytest.fixture
def setup() -> Iterator[Setup]:
    s = Setup()
    yield s
    s.tracker.close()


def live_settings(**overrides: object) -> LiveSettings:
    values: dict[str, object] = {
        "metrics_every": 10,
        "drift_min_points": 10,
        "drift_cooldown_steps": 100,
        "retrain_window_steps": 200,
        "retrain_test_steps": 30,
    }
    values.update(overrides)
    return LiveSettings(**values)  # type: ignore[arg-type]


def service_with_champion(setup: Setup, **overrides: object) -> InferenceService:
    live = LiveLoop(live_settings(**overrides), setup.ctx, "performance-eval")
    service = InferenceService(InferenceSettings(), setup.ctx, ModelState(), live=live)
    service.on_selected(selected_event(logged_model(setup, "champion")))
    return service


def observations(rows: int, start: str = "2025-02-01") -> list[Observation]:
    frame = synthetic_frame(rows, start=start, seed=3)
    return [
        Observation(
            identifier=IDENTIFIER,
            timestamp=ts.to_pydatetime(),
            values={"down": float(d), "up": float(u)},
        )
        for ts, d, u in zip(frame["ds"], frame["down"], frame["up"], strict=True)
    ]


def record(obs: Observation | bytes) -> Record:
    body = obs if isinstance(obs, bytes) else obs.to_json_bytes()
    return Record("observations", 0, 0, IDENTIFIER, body)


def outputs_of(service: InferenceService, items: list[Observation]) -> list[Output]:
    return [out for obs in items for out in service.handle(record(obs))]


def test_observations_become_forecasts_and_live_metrics(setup: Setup) -> None:
    service = service_with_champion(setup, drift_min_points=10_000)
    outs = outputs_of(service, observations(60))
    forecasts = [o.value for o in outs if o.topic == "forecasts"]
    metrics = [o.value for o in outs if o.topic == "performance-eval"]
    # Persistence reads one row: every observation gets a forecast of the next 2 steps.
    assert len(forecasts) == 60
    first = forecasts[0]
    assert isinstance(first, LiveForecast)
    assert first.identifier == IDENTIFIER
    assert len(first.steps) == 2
    assert all(o.key == IDENTIFIER for o in outs)
    assert len(metrics) == 6  # every 10 forecasts
    last = metrics[-1]
    assert isinstance(last, PerformanceEval)
    assert last.kind == "live"
    assert last.live_points is not None
    assert last.live_points > 0
    # The champion is persistence: its live MAE equals the persistence MAE on the same points.
    assert last.live_mae == pytest.approx(last.live_persistence_mae)
    log_lines = setup.store.get_bytes(BUCKET_INFERENCE_LOGS, last.output_object).splitlines()
    assert len(log_lines) == 10 * 2
    assert orjson.loads(log_lines[0])["identifier"] == IDENTIFIER


def test_unknown_identifier_and_bad_fields_go_to_dlq_observations(setup: Setup) -> None:
    service = service_with_champion(setup)
    route = route_dlq(service.dlq_topic)
    stranger = Observation(identifier="nobody", timestamp="2025-02-01T00:00:00", values={"x": 1})
    with pytest.raises(MessageError, match="unknown identifier 'nobody'") as unknown:
        service.handle(record(stranger))
    assert route("observations", unknown.value) == "DLQ-observations"
    text = (
        b'{"identifier": "run-test", "timestamp": "2025-02-01T00:00:00", "values": {"down": "x"}}'
    )
    with pytest.raises(MessageError, match=r"values\.down"):
        service.handle(record(text))
    partial = Observation(
        identifier=IDENTIFIER, timestamp="2025-02-01T00:00:00", values={"down": 1}
    )
    with pytest.raises(MessageError, match=r"lack \['up'\]"):
        service.handle(record(partial))
    # The service keeps going: a good observation still gets its forecast.
    assert [o.topic for o in outputs_of(service, observations(1))] == ["forecasts"]


def test_duplicates_are_dropped_without_output(setup: Setup) -> None:
    service = service_with_champion(setup)
    items = observations(3)
    outputs_of(service, items)
    assert service.handle(record(items[1])) == []
    assert service.live is not None
    view = service.live.snapshot()["identifiers"][IDENTIFIER]
    assert view["dropped_duplicate"] == 1


def test_drift_requests_one_retraining_on_recent_data_then_cools_down(setup: Setup) -> None:
    # The logged champion's test MAE is 1.0; live errors on the synthetic series are ~50.
    service = service_with_champion(setup)
    outs = outputs_of(service, observations(260))
    requests = [o.value for o in outs if o.topic == "preprocess-requests"]
    assert len(requests) == 2  # at 140 and 240 observations: cooldown 100 steps
    request = requests[0]
    assert isinstance(request, PreprocessRequested)
    assert request.identifier == IDENTIFIER
    assert request.config["target"] == "down"
    assert request.config["step_seconds"] == STEP
    train = pd.read_csv(io.BytesIO(setup.store.get_bytes(BUCKET_DATASET, request.train_object)))
    test = pd.read_csv(io.BytesIO(setup.store.get_bytes(BUCKET_DATASET, request.test_object)))
    # Drift showed early; the request waited for the 139 rows preprocessing needs (at 140).
    assert (len(train), len(test)) == (110, 30)
    assert list(train.columns) == ["time", "down", "up"]
    assert pd.Timestamp(test["time"].iloc[0]) - pd.Timestamp(train["time"].iloc[-1]) == timedelta(
        seconds=STEP
    )
    assert service.live is not None
    (first, _) = service.live.retrains
    assert "test MAE" in first.reason
    # A promotion for the identifier closes the request in the history.
    service.on_selected(selected_event(logged_model(setup, "challenger")))
    assert service.live.retrains[0].promoted_run_id is not None


def test_retraining_disabled_only_reports(setup: Setup) -> None:
    service = service_with_champion(setup, retrain_enabled=False)
    outs = outputs_of(service, observations(260))
    assert not [o for o in outs if o.topic == "preprocess-requests"]


def test_the_observation_stream_dead_letters_with_the_reason_and_keeps_going(
    setup: Setup,
) -> None:
    import threading

    from flts.domain.messages import DlqRecord
    from flts.services.live_stream import ObservationStream

    service = service_with_champion(setup)
    assert service.live is not None
    stream = ObservationStream(service.live, {}, None, threading.Event())  # type: ignore[arg-type]
    (bad,) = stream.handle(record(b"not json"))
    assert bad.topic == "DLQ-observations"
    assert isinstance(bad.value, DlqRecord)
    assert "not valid JSON" in bad.value.error_details
    assert bad.value.source_topic == "observations"
    stranger = Observation(identifier="nobody", timestamp="2025-02-01T00:00:00", values={"x": 1})
    (unknown,) = stream.handle(record(stranger))
    assert isinstance(unknown.value, DlqRecord)
    assert "unknown identifier" in unknown.value.error_details
    assert [o.topic for o in stream.handle(record(observations(1)[0]))] == ["forecasts"]
    assert (stream.handled, stream.dead_lettered) == (1, 2)


def test_a_flush_waits_for_the_forecast_and_survives_an_s3_outage(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = service_with_champion(setup, drift_min_points=10_000)
    live = service.live
    assert live is not None
    items = observations(10)
    # observe(): only forecasts, even for the observation that makes a flush due.
    topics = [o.topic for obs in items for o in live.observe(obs)]
    assert topics == ["forecasts"] * 10
    store = setup.ctx.store
    real_put = store.put_bytes

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("S3 unreachable")

    monkeypatch.setattr(store, "put_bytes", unreachable)
    with pytest.raises(ConnectionError):
        live.complete_deferred()
    monkeypatch.setattr(store, "put_bytes", real_put)
    (event,) = live.complete_deferred()  # kept, and done once S3 answers again
    assert isinstance(event.value, PerformanceEval)
    lines = store.get_bytes(BUCKET_INFERENCE_LOGS, event.value.output_object).splitlines()
    assert len(lines) == 10 * 2
    assert live.complete_deferred() == []


def test_a_failed_flush_is_retried_without_waiting_for_another_observation(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from flts.services import live_stream

    monkeypatch.setattr(live_stream, "FLUSH_RETRY_S", 0.05)
    service = service_with_champion(setup, drift_min_points=10_000)
    live = service.live
    assert live is not None
    for obs in observations(10):
        live.observe(obs)
    store = setup.ctx.store
    real_put = store.put_bytes
    attempts: list[str] = []

    def down_once(*args: object, **kwargs: object) -> None:
        attempts.append("down")
        monkeypatch.setattr(store, "put_bytes", real_put)  # S3 is back for the retry
        raise ConnectionError("S3 unreachable")

    monkeypatch.setattr(store, "put_bytes", down_once)
    sent: list[str] = []

    class Producer:
        def produce(self, topic: str, **kwargs: object) -> None:
            sent.append(topic)

        def poll(self, timeout: float) -> int:
            return 0

    stream = live_stream.ObservationStream(live, {}, Producer(), threading.Event())  # type: ignore[arg-type]
    stream._flusher.start()
    stream._flush_due.set()  # the one batch: its flush fails, and nothing else arrives
    deadline = time.monotonic() + 10
    while "performance-eval" not in sent and time.monotonic() < deadline:
        time.sleep(0.01)
    retried_on_its_own = list(sent)  # before the stop's own final flush
    stream._closing = True
    stream._flush_due.set()
    stream._flusher.join(5)
    assert attempts == ["down"]
    assert retried_on_its_own == ["performance-eval"]
    assert sent == ["performance-eval"]


def test_a_restarted_service_recovers_its_champion_and_windows_from_the_replay(
    setup: Setup,
) -> None:
    """The stream's recovery path without Kafka: the promotion history gives the restarted
    service its champion on the first record, the replayed records refill the window (no
    output, no dead letter), and the next new observation is forecast at once, exactly as the
    service that never restarted forecasts it."""
    import threading

    from flts.services.live_stream import ObservationStream

    selected = selected_event(logged_model(setup, "champion"))
    before = InferenceService(
        InferenceSettings(),
        setup.ctx,
        ModelState(),
        live=LiveLoop(live_settings(), setup.ctx, "performance-eval"),
    )
    before.on_selected(selected)
    history = observations(80)
    outputs_of(before, history)
    (expected,) = [o for o in outputs_of(before, observations(81)[80:]) if o.topic == "forecasts"]

    live = LiveLoop(live_settings(), setup.ctx, "performance-eval")
    restarted = InferenceService(InferenceSettings(), setup.ctx, ModelState(), live=live)
    restarted.promotion_history = {IDENTIFIER: selected}
    stream = ObservationStream(
        live,
        {},
        None,
        threading.Event(),
        recover=restarted.recover_live_champion,  # type: ignore[arg-type]
    )
    stream.replay(record(b"not json"))  # dead-lettered the first time: skipped, no output
    for obs in history:
        stream.replay(record(obs))
    assert (stream.replayed, stream.handled, stream.dead_lettered) == (80, 0, 0)
    assert restarted.promotion_history == {}  # loaded once, on the first record
    (forecast,) = stream.handle(record(observations(81)[80]))
    assert forecast.topic == "forecasts"
    got, want = forecast.value, expected.value
    assert isinstance(got, LiveForecast)
    assert isinstance(want, LiveForecast)
    assert got.origin_timestamp == want.origin_timestamp
    assert [s.model_dump() for s in got.steps] == [s.model_dump() for s in want.steps]


def test_without_a_promotion_history_a_stranger_is_still_refused(setup: Setup) -> None:
    import threading

    from flts.services.live_stream import ObservationStream

    live = LiveLoop(live_settings(), setup.ctx, "performance-eval")
    service = InferenceService(InferenceSettings(), setup.ctx, ModelState(), live=live)
    stream = ObservationStream(
        live,
        {},
        None,
        threading.Event(),
        recover=service.recover_live_champion,  # type: ignore[arg-type]
    )
    (dead,) = stream.handle(record(observations(1)[0]))
    assert dead.topic == "DLQ-observations"
    assert not live.has_champion(IDENTIFIER)
