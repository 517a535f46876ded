"""Evaluate stage: champion selection, persistence gate, tie-break, records, validation."""

from __future__ import annotations

import orjson
import pytest

from flts.adapters.memory import FixedClock, InMemoryObjectStore, InMemoryTracker, RecordingSink
from flts.domain.messages import BaselineScores, DayBreakdown, DayError, ModelTrained
from flts.errors import DataValidationError, MessageError
from flts.stages import evaluate
from flts.stages.contracts import EvaluateRequest, EvaluateStageConfig
from flts.stages.ports import BUCKET_PROMOTION, StageContext

HASH = "abc123"
IDENT = "run-xyz"
BASELINES = {
    "PERSISTENCE": BaselineScores(rmse=10.0, mae=8.0, mse=100.0, mape=5.0),
    "SEASONAL_NAIVE": BaselineScores(rmse=12.0, mae=9.0, mse=144.0, mape=6.0),
}


def result(model_type: str, rmse: float, mae: float, **extra: object) -> ModelTrained:
    fields: dict[str, object] = {
        "model_type": model_type,
        "config_hash": HASH,
        "run_id": f"run-{model_type.lower()}",
        "test_rmse": rmse,
        "test_mae": mae,
        "test_mse": rmse**2,
        "train_start": "2025-11-24T12:00:00Z",
        "train_end": "2025-11-24T12:05:00Z",
        "identifier": IDENT,
        "artifact_uri": f"memory://run-{model_type.lower()}/artifacts",
        "model_uri": f"runs:/run-{model_type.lower()}/model",
        "test_windows": 100,
        "horizon": 1,
        "baselines": BASELINES,
    }
    fields.update(extra)
    return ModelTrained.model_validate(fields)


def context() -> tuple[StageContext, InMemoryObjectStore, InMemoryTracker]:
    store, tracker = InMemoryObjectStore(), InMemoryTracker()
    return (
        StageContext(store=store, tracker=tracker, events=RecordingSink(), clock=FixedClock()),
        store,
        tracker,
    )


def request(*results: ModelTrained) -> EvaluateRequest:
    return EvaluateRequest(identifier=IDENT, config_hash=HASH, results=results)


def test_best_model_that_beats_persistence_is_promoted_and_recorded() -> None:
    ctx, store, tracker = context()
    out = evaluate.run(
        request(result("GRU", 8.0, 7.0), result("LSTM", 6.0, 5.0), result("PROPHET", 9.0, 7.5)),
        EvaluateStageConfig(),
        ctx,
    )
    assert out.selected is not None
    sel = out.selected
    assert (sel.model_type, sel.run_id, sel.model_uri) == (
        "LSTM",
        "run-lstm",
        "runs:/run-lstm/model",
    )
    assert sel.composite_score == pytest.approx((6 / 10 + 5 / 8) / 2)
    assert sel.promotion_time == "2025-11-24T12:00:00.000Z"
    assert (sel.registered_model, sel.model_version) == ("flts-forecaster", "1")
    assert tracker.model_uri_for_alias("flts-forecaster", "champion") == "runs:/run-lstm/model"
    # Rows for every model and both baselines.
    assert {r.model_type for r in out.report.rows} == {
        "GRU",
        "LSTM",
        "PROPHET",
        "PERSISTENCE",
        "SEASONAL_NAIVE",
    }
    keys = store.list_keys(BUCKET_PROMOTION)
    assert keys == [
        f"{IDENT}/{HASH}/20251124T120000Z.json",
        f"{IDENT}/{HASH}/current.json",
        f"{IDENT}/champion.json",  # what the identifier's next lineage must beat
    ]
    assert out.promotion_record is not None
    assert out.promotion_record.key == keys[0]
    record = orjson.loads(store.get_bytes(BUCKET_PROMOTION, keys[1]))
    assert record["model_type"] == "LSTM"
    assert record["model_version"] == "1"
    assert record["decided_at"] == "2025-11-24T12:00:00.000Z"
    assert record["report"]["champion"] == "LSTM"


def test_replayed_evaluation_does_not_register_again() -> None:
    ctx, _, tracker = context()
    req = request(result("GRU", 8.0, 7.0), result("LSTM", 6.0, 5.0), result("PROPHET", 9.0, 7.5))
    first = evaluate.run(req, EvaluateStageConfig(), ctx)
    second = evaluate.run(req, EvaluateStageConfig(), ctx)
    assert tracker.versions["flts-forecaster"] == ["runs:/run-lstm/model"]
    assert second.selected is not None
    assert first.selected is not None
    assert second.selected.model_version == first.selected.model_version


def test_nothing_promoted_when_no_model_beats_persistence() -> None:
    ctx, store, tracker = context()
    out = evaluate.run(
        # PROPHET has a lower composite than 1 but a worse RMSE than persistence.
        request(result("GRU", 10.0, 8.0), result("LSTM", 11.0, 9.0), result("PROPHET", 10.5, 2.0)),
        EvaluateStageConfig(),
        ctx,
    )
    assert out.selected is None
    assert out.report.champion is None
    assert "persistence" in out.report.reason
    # It says what came closest and which free forecast is the better one here.
    assert ". Closest: PROPHET, MAE " in out.report.reason
    assert "is the better forecast here" in out.report.reason
    assert tracker.versions == {}
    record = orjson.loads(store.get_bytes(BUCKET_PROMOTION, f"{IDENT}/{HASH}/current.json"))
    assert record["champion"] is None
    assert record["reason"] == out.report.reason


def test_tie_breaks_deterministically_whatever_the_arrival_order() -> None:
    a, b = result("LSTM", 6.0, 5.0), result("GRU", 6.0, 5.0)
    config = EvaluateStageConfig(expected_model_types=())
    for order in ((a, b), (b, a)):
        ctx, _, _ = context()
        out = evaluate.run(request(*order), config, ctx)
        assert out.selected is not None
        assert out.selected.model_type == "GRU"


def test_missing_model_types_are_named() -> None:
    ctx, _, _ = context()
    with pytest.raises(MessageError, match=r"\['LSTM', 'PROPHET'\]"):
        evaluate.run(request(result("GRU", 8.0, 7.0)), EvaluateStageConfig(), ctx)


def test_results_scored_on_different_windows_are_refused() -> None:
    ctx, _, _ = context()
    other = {**BASELINES, "PERSISTENCE": BaselineScores(rmse=10.5, mae=8.0, mse=110.25)}
    with pytest.raises(DataValidationError, match="different test windows"):
        evaluate.run(
            request(
                result("GRU", 8.0, 7.0),
                result("LSTM", 6.0, 5.0, baselines=other),
                result("PROPHET", 9.0, 7.5),
            ),
            EvaluateStageConfig(),
            ctx,
        )
    with pytest.raises(DataValidationError):
        evaluate.run(
            request(
                result("GRU", 8.0, 7.0),
                result("LSTM", 6.0, 5.0, test_windows=99),
                result("PROPHET", 9.0, 7.5),
            ),
            EvaluateStageConfig(),
            ctx,
        )


def test_result_without_baselines_is_refused() -> None:
    ctx, _, _ = context()
    with pytest.raises(MessageError, match="baselines"):
        evaluate.run(
            request(result("GRU", 8.0, 7.0, baselines=None)),
            EvaluateStageConfig(expected_model_types=()),
            ctx,
        )


def test_model_worse_than_seasonal_naive_is_not_promoted_and_steps_are_reported() -> None:
    """Day ahead: beating persistence is not enough when seasonal naive is better."""
    baselines = {
        "PERSISTENCE": BaselineScores(rmse=700.0, mae=521.0, mse=4.9e5, mae_by_step=[400.0, 642.0]),
        "SEASONAL_NAIVE": BaselineScores(rmse=450.0, mae=334.0, mse=2.0e5),
    }
    lstm = result(
        "LSTM", 560.0, 419.0, baselines=baselines, horizon=2, test_mae_by_step=[300.0, 538.0]
    )
    ctx, _store, tracker = context()
    out = evaluate.run(request(lstm), EvaluateStageConfig(expected_model_types=()), ctx)
    assert out.selected is None
    assert "better of persistence and seasonal naive" in out.report.reason
    assert (
        ". Closest: LSTM, MAE 1.25x and RMSE 1.24x the better baseline; SEASONAL_NAIVE is the "
        "better forecast here (the value one season earlier is hard to beat"
    ) in out.report.reason
    rows = {r.model_type: r for r in out.report.rows}
    assert rows["LSTM"].beats_persistence
    assert not rows["LSTM"].beats_baselines
    assert rows["LSTM"].mae_by_step == (300.0, 538.0)
    assert rows["PERSISTENCE"].mae_by_step == (400.0, 642.0)
    with pytest.raises(KeyError):  # nothing was registered
        tracker.model_uri_for_alias("flts-forecaster", "champion")


def test_each_model_days_reach_its_report_row_and_the_promotion_record() -> None:
    days = DayBreakdown(
        days=5,
        pairs=480,
        median_ratio=0.9,
        worst=(
            DayError(
                date="2016-03-28",
                weekday="Mon",
                pairs=96,
                mae=3.0,
                persistence_mae=2.0,
                excess_mae=0.2,
            ),
        ),
    )
    ctx, store, _ = context()
    out = evaluate.run(
        request(result("GRU", 8.0, 7.0, test_days=days), result("LSTM", 6.0, 5.0)),
        EvaluateStageConfig(expected_model_types=()),
        ctx,
    )
    rows = {r.model_type: r for r in out.report.rows}
    assert rows["GRU"].days == days
    assert rows["LSTM"].days is None
    assert rows["PERSISTENCE"].days is None
    record = orjson.loads(store.get_bytes(BUCKET_PROMOTION, f"{IDENT}/{HASH}/current.json"))
    gru = next(r for r in record["report"]["rows"] if r["model_type"] == "GRU")
    assert gru["days"]["worst"][0]["date"] == "2016-03-28"
