"""Eval's persistent completion tracker and the eval handler, with in-memory doubles."""

from __future__ import annotations

from typing import Any

import pytest

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker, RecordingSink
from flts.domain.config import ModelType
from flts.domain.messages import ModelSelected, ModelTrained, ModelTrainingFailed, ProgressEvent
from flts.errors import MessageError, UnknownModelTypeError
from flts.messaging.records import Output, Record
from flts.services import eval as svc_eval
from flts.services.completion import CompletionTracker
from flts.settings import EvalSettings
from flts.stages.contracts import EvaluateResult, EvaluationReport
from flts.stages.ports import BUCKET_PROMOTION, StageContext
from flts.stages.promotion import record_success


class WorkerStandIn:
    """Does what the worker does with a handler's outputs: send (here: keep) each one, then run
    its ``on_confirmed`` hook, as after the broker's confirmation."""

    def __init__(self) -> None:
        self.sent: list[Output] = []

    def deliver(self, outputs: list[Output]) -> list[Output]:
        for out in outputs:
            self.sent.append(out)
            if out.on_confirmed is not None:
                out.on_confirmed()
        return outputs

    def selected(self) -> list[Output]:
        return [o for o in self.sent if o.topic == "model-selected"]


def trained(model_type: str, run_id: str | None = None, ident: str = "run-1") -> ModelTrained:
    return ModelTrained(
        model_type=model_type,
        config_hash="h1",
        run_id=run_id or f"run-{model_type.lower()}",
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        train_start="2025-11-24T12:00:00Z",
        train_end="2025-11-24T12:05:00Z",
        identifier=ident,
        artifact_uri="s3://mlflow/x",
    )


def _record(event: Any) -> Record:
    body = event if isinstance(event, bytes) else event.to_json_bytes()
    return Record("model-training", 0, 0, "trained-GRU", body)


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Any:
    store, sink, producer = InMemoryObjectStore(), RecordingSink(), WorkerStandIn()
    calls: list[Any] = []

    def fake_evaluate(request: Any, config: Any, ctx: Any) -> EvaluateResult:
        calls.append(request)
        best = request.results[0]
        selected = ModelSelected(
            model_uri=f"runs:/{best.run_id}/model",
            model_type=best.model_type,
            run_id=best.run_id,
            config_hash=best.config_hash,
            composite_score=0.5,
            test_rmse=1.0,
            test_mae=1.0,
            test_mse=1.0,
            promotion_time="2025-11-24T12:10:00Z",
            identifier=best.identifier,
        )
        report = EvaluationReport(
            identifier=request.identifier,
            config_hash=request.config_hash,
            rows=(),
            champion=best.model_type,
            reason="best composite",
        )
        return EvaluateResult(report=report, selected=selected, promotion_record=None)

    monkeypatch.setattr(svc_eval.evaluate, "run", fake_evaluate)
    tracker = InMemoryTracker()
    ctx = StageContext(store=store, tracker=tracker, events=sink)

    def make_service() -> svc_eval.EvalService:
        return svc_eval.EvalService(EvalSettings(), ctx)

    yield store, sink, producer, calls, make_service
    tracker.close()


def test_tracker_state_is_persisted_under_the_promotion_bucket() -> None:
    store = InMemoryObjectStore()
    tracker = CompletionTracker(store, [ModelType.GRU, ModelType.LSTM])
    state, changed = record_success(tracker.load("run-1", "h1"), trained("GRU"))
    assert changed
    assert state.missing() == ["LSTM"]
    tracker.save(state)
    assert store.exists(BUCKET_PROMOTION, "_state/run-1/h1.json")
    again = CompletionTracker(store, [ModelType.GRU, ModelType.LSTM]).load("run-1", "h1")
    assert list(again.results) == ["GRU"]
    _, changed = record_success(again, trained("GRU"))
    assert not changed  # the same run twice is a duplicate


def test_promotes_once_when_all_expected_models_succeeded(harness: Any) -> None:
    _store, sink, producer, calls, make_service = harness
    service = make_service()
    for model in ("GRU", "LSTM"):
        assert service.handle(_record(trained(model))) == []
    assert calls == []
    waiting = [e.message for e in sink.of_type(ProgressEvent)]
    assert "waiting for LSTM, PROPHET" in waiting
    assert "waiting for PROPHET" in waiting
    producer.deliver(service.handle(_record(trained("PROPHET"))))
    assert len(calls) == 1
    selected = producer.selected()
    assert len(selected) == 1
    assert selected[0].key == "promotion"
    assert isinstance(selected[0].value, ModelSelected)
    assert selected[0].value.model_type == "GRU"
    # Duplicates and replays after promotion change nothing.
    producer.deliver(service.handle(_record(trained("PROPHET"))))
    producer.deliver(service.handle(_record(trained("GRU", run_id="another-run"))))
    assert len(calls) == 1
    assert len(producer.selected()) == 1


def test_a_restarted_evaluator_continues_from_the_stored_state(harness: Any) -> None:
    _store, _sink, producer, calls, make_service = harness
    first = make_service()
    first.handle(_record(trained("GRU")))
    first.handle(_record(trained("LSTM")))
    restarted = make_service()  # a new process: only the object store survives
    producer.deliver(restarted.handle(_record(trained("PROPHET"))))
    assert len(calls) == 1
    assert {r.model_type for r in calls[0].results} == {"GRU", "LSTM", "PROPHET"}
    assert len(producer.selected()) == 1


def test_running_events_are_ignored(harness: Any) -> None:
    store, _sink, _producer, _calls, make_service = harness
    running = (
        b'{"model_type":"GRU","config_hash":"h1","run_id":"r",'
        b'"status":"RUNNING","identifier":"run-1"}'
    )
    assert make_service().handle(_record(running)) == []
    assert store.list_keys(BUCKET_PROMOTION) == []


def test_bad_events_raise_the_errors_that_route_them(harness: Any) -> None:
    *_, make_service = harness
    service = make_service()
    with pytest.raises(MessageError):
        service.handle(_record(b"not json"))
    with pytest.raises(MessageError):
        service.handle(_record(b'{"status":"SUCCESS","model_type":"GRU"}'))
    with pytest.raises(UnknownModelTypeError):
        service.handle(_record(trained("XGBOOST")))


def test_a_promotion_not_confirmed_by_the_broker_is_sent_again_on_redelivery(harness: Any) -> None:
    """The worker runs ``on_confirmed`` only after the broker confirmed the send; a crash before
    it leaves the state unpublished, so the redelivered SUCCESS promotes (once more) again."""
    _store, _sink, producer, calls, make_service = harness
    service = make_service()
    service.handle(_record(trained("GRU")))
    service.handle(_record(trained("LSTM")))
    lost = service.handle(_record(trained("PROPHET")))  # sent, then the process died
    assert [o.topic for o in lost] == ["model-selected"]
    again = make_service().handle(_record(trained("PROPHET")))
    assert [o.topic for o in again] == ["model-selected"]
    assert len(calls) == 1  # evaluated once; only the send is repeated
    producer.deliver(again)
    assert make_service().handle(_record(trained("PROPHET"))) == []


def test_a_series_left_out_of_the_global_fit_is_evaluated_on_its_local_candidates(
    harness: Any,
) -> None:
    """Eval expects GLOBAL_LINEAR for every fleet series; the global trainer's
    GlobalTrainingDone releases the series it left out (and only those)."""
    _store, _sink, producer, calls, _ = harness
    from flts.domain.messages import GlobalExclusion, GlobalTrainingDone

    settings = EvalSettings(EXPECTED_MODEL_TYPES="LINEAR,GLOBAL_LINEAR")
    service = svc_eval.EvalService(settings, _ctx_of(harness))
    assert service.topics == ["model-training", "global-training-results"]
    service.handle(_record(trained("LINEAR", ident="f/a")))
    service.handle(_record(trained("LINEAR", ident="f/b")))
    done = GlobalTrainingDone(
        identifier="f/_global",
        model_type="GLOBAL_LINEAR",
        members=["f/a"],
        excluded=[GlobalExclusion(identifier="f/b", config_hash="h1", reason="too short")],
    )
    record = Record("global-training-results", 0, 0, "f/_global", done.to_json_bytes())
    producer.deliver(service.handle(record))
    assert [r.identifier for r in calls] == ["f/b"]
    assert calls[0].waived == {"GLOBAL_LINEAR": "too short"}
    producer.deliver(service.handle(_record(trained("GLOBAL_LINEAR", ident="f/a"))))
    assert [r.identifier for r in calls] == ["f/b", "f/a"]
    assert {r.model_type for r in calls[1].results} == {"LINEAR", "GLOBAL_LINEAR"}


def _ctx_of(harness: Any) -> StageContext:
    service = harness[4]()
    ctx: StageContext = service.ctx
    return ctx


def failed(model_type: str, ident: str = "run-1") -> ModelTrainingFailed:
    return ModelTrainingFailed(
        model_type=model_type,
        config_hash="h1",
        identifier=ident,
        error_type="ForecastError",
        error_details="cannot fit",
        dlq_topic="DLQ-model-training",
        failed_at="2025-11-24T12:03:00Z",
    )


def test_a_failed_model_is_not_waited_for_and_the_others_are_ranked(harness: Any) -> None:
    """GRU's trainer dead-lettered the claim: its FAILED event releases GRU, and the evaluation
    runs on LSTM and PROPHET alone, with the reason kept next to them."""
    _store, sink, producer, calls, make_service = harness
    service = make_service()
    service.handle(_record(trained("LSTM")))
    assert service.handle(_record(failed("GRU"))) == []
    assert calls == []  # PROPHET still to come
    producer.deliver(service.handle(_record(trained("PROPHET"))))
    assert len(calls) == 1
    assert {r.model_type for r in calls[0].results} == {"LSTM", "PROPHET"}
    assert calls[0].waived == {"GRU": "training failed (ForecastError: cannot fit)"}
    assert [o.value.model_type for o in producer.selected()] == ["LSTM"]  # type: ignore[union-attr]
    messages = [e.message for e in sink.of_type(ProgressEvent)]
    assert "GRU training failed (ForecastError: cannot fit); ranking the other models" in messages
    # A replayed FAILED, or a late SUCCESS of the failed type, changes nothing now.
    assert make_service().handle(_record(failed("GRU"))) == []
    assert make_service().handle(_record(trained("GRU"))) == []
    assert len(calls) == 1


def test_a_success_after_a_failure_of_the_same_type_counts(harness: Any) -> None:
    """A replayed claim trained after all (e.g. the DLQ was replayed): the SUCCESS wins."""
    _store, _sink, producer, calls, make_service = harness
    service = make_service()
    service.handle(_record(failed("GRU")))
    service.handle(_record(trained("GRU")))
    service.handle(_record(trained("LSTM")))
    producer.deliver(service.handle(_record(trained("PROPHET"))))
    assert {r.model_type for r in calls[0].results} == {"GRU", "LSTM", "PROPHET"}


def test_when_every_model_failed_nothing_is_evaluated_and_the_reason_says_why(
    harness: Any,
) -> None:
    store, sink, producer, calls, make_service = harness
    service = make_service()
    for model in ("GRU", "LSTM", "PROPHET"):
        producer.deliver(service.handle(_record(failed(model))))
    assert calls == []
    assert producer.selected() == []
    state = CompletionTracker(store, [ModelType.GRU]).load("run-1", "h1")
    assert state.evaluated
    assert state.selected is None
    assert state.reason is not None
    assert state.reason.startswith("no model was trained (GRU: ")
    assert any(
        e.message.startswith("no champion promoted: no model was trained")
        for e in sink.of_type(ProgressEvent)
    )


def test_a_failure_of_an_unexpected_type_is_ignored(harness: Any) -> None:
    store, _sink, _producer, _calls, make_service = harness
    assert make_service().handle(_record(failed("LINEAR"))) == []
    assert store.list_keys(BUCKET_PROMOTION) == []
