"""Train stage with in-memory doubles: events, idempotency, metrics in original units."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _stage_data import CONFIG_HASH, SEASON, Setup
from flts.domain.config import ModelType, TrainConfig
from flts.domain.messages import ModelTrained, ModelTrainingRunning, ProgressEvent
from flts.errors import DataValidationError, MessageError
from flts.forecasting.models import baselines as baseline_models
from flts.stages import train
from flts.stages.contracts import TrainStageConfig


def test_train_emits_running_then_returns_success_with_original_unit_metrics() -> None:
    s = Setup()
    config = TrainStageConfig(model_type=ModelType.SEASONAL_NAIVE)
    result = train.run(s.claim, config, s.ctx)

    events = [e for e, _ in s.sink.events]
    assert isinstance(events[0], ModelTrainingRunning)
    assert s.sink.events[0][1] is None  # RUNNING is produced without a key, as in the spec
    assert events[0].run_id == result.run_id
    assert isinstance(result, ModelTrained)
    assert result.status == "SUCCESS"

    # Hand computation on the test frame: y_hat[i + k] = y[i + k - SEASON].
    y = s.test["down"].to_numpy()
    origins = np.arange(SEASON, len(y) - s.spec.horizon + 1)
    idx = origins[:, None] + np.arange(s.spec.horizon)
    err = y[idx - SEASON] - y[idx]
    assert result.test_rmse == pytest.approx(float(np.sqrt(np.mean(err**2))))
    assert result.test_mae == pytest.approx(float(np.mean(np.abs(err))))
    assert result.test_windows == len(origins)
    assert result.horizon == s.spec.horizon
    assert result.baselines is not None
    assert set(result.baselines) == {
        "PERSISTENCE",
        "SEASONAL_NAIVE",
    }
    assert result.baselines["SEASONAL_NAIVE"].rmse == pytest.approx(result.test_rmse)
    assert result.train_start == "2025-11-24T12:00:00.000Z"
    assert result.train_end.endswith("Z")
    assert result.config_hash == CONFIG_HASH
    assert result.model_uri

    run = s.tracker.runs[result.run_id]
    assert run.status == "FINISHED"
    assert run.tags["flts.stage"] == "train"
    assert run.tags["model_type"] == "SEASONAL_NAIVE"
    assert run.params["spec.lookback"] == "8"
    report = json.loads(run.artifacts[train.SCORE_REPORT])
    assert report["scores"]["windows"] == len(origins)
    # The logged model reloads and predicts like the original.
    reloaded = s.tracker.load_forecaster(result.model_uri or "")
    assert reloaded.model_type is ModelType.SEASONAL_NAIVE


def test_replayed_claim_does_not_train_again(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup()
    fits = {"n": 0}
    original = baseline_models.PersistenceForecaster.fit

    def counting_fit(self, frame, progress=None, unobserved=None):  # type: ignore[no-untyped-def]
        fits["n"] += 1
        return original(self, frame, progress)

    monkeypatch.setattr(baseline_models.PersistenceForecaster, "fit", counting_fit)
    config = TrainStageConfig(model_type=ModelType.PERSISTENCE)
    first = train.run(s.claim, config, s.ctx)
    second = train.run(s.claim, config, s.ctx)
    assert fits["n"] == 1
    assert len(s.tracker.runs) == 1
    assert second.run_id == first.run_id
    assert second.model_dump() == first.model_dump()
    # Only the first call announced RUNNING.
    assert len(s.sink.of_type(ModelTrainingRunning)) == 1


def test_gru_one_epoch_reports_progress_per_epoch() -> None:
    s = Setup(train_rows=300, test_rows=80)
    config = TrainStageConfig(
        model_type=ModelType.GRU,
        train=TrainConfig(epochs=2, hidden_size=8, num_layers=1, batch_size=64, patience=5),
    )
    result = train.run(s.claim, config, s.ctx)
    progress = s.sink.of_type(ProgressEvent)
    assert [p.epoch for p in progress] == [1, 2]  # type: ignore[attr-defined]
    kinds = [type(e).__name__ for e, _ in s.sink.events]
    assert kinds[0] == "ModelTrainingRunning"
    history = s.tracker.runs[result.run_id].history["train_loss"]
    assert [step for step, _ in history] == [1, 2]
    assert result.test_rmse > 1.0  # original units of a ~1e3 target
    assert s.tracker.runs[result.run_id].metrics["epochs_run"] == 2


def test_claim_without_test_object_is_refused() -> None:
    s = Setup()
    claim = s.claim.model_copy(update={"test_object": None})
    with pytest.raises(MessageError, match="no test_object"):
        train.run(claim, TrainStageConfig(model_type=ModelType.PERSISTENCE), s.ctx)


def test_config_hash_mismatch_is_refused_and_no_run_is_left_running() -> None:
    s = Setup()
    claim = s.claim.model_copy(update={"config_hash": "other"})
    with pytest.raises(DataValidationError, match="config_hash"):
        train.run(claim, TrainStageConfig(model_type=ModelType.PERSISTENCE), s.ctx)
    assert all(r.status != "RUNNING" for r in s.tracker.runs.values())


def test_failure_during_training_marks_run_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup()

    def broken_fit(self, frame, progress=None, unobserved=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(baseline_models.PersistenceForecaster, "fit", broken_fit)
    with pytest.raises(RuntimeError, match="boom"):
        train.run(s.claim, TrainStageConfig(model_type=ModelType.PERSISTENCE), s.ctx)
    (run,) = s.tracker.runs.values()
    assert run.status == "FAILED"


def test_a_claim_the_trainer_cannot_use_is_announced_failed_but_an_outage_is_not() -> None:
    """The trainer service's failure hook: a claim of a known lineage whose data cannot be
    trained on gets a FAILED event (key and lineage of the SUCCESS it replaces); a platform
    outage, an undecodable record and a claim without a lineage get none."""
    from flts.domain.messages import ModelTrainingFailed
    from flts.errors import StorageError
    from flts.messaging.records import Record
    from flts.services import train as svc_train
    from flts.settings import TrainSettings, load_settings
    from flts.stages.ports import BUCKET_PROCESSED

    s = Setup()
    settings = load_settings(TrainSettings, model_type="LINEAR", consumer_group_id="g")
    s.store.put_bytes(BUCKET_PROCESSED, "corrupt.parquet", b"this is not parquet")
    bad = s.claim.model_copy(update={"object": "corrupt.parquet"})
    record = Record("training-data", 0, 7, "train-claim", bad.to_json_bytes())
    with pytest.raises(DataValidationError) as failure:
        svc_train.build_handler(settings, s.ctx)(record)

    announce = svc_train.build_failure_outputs(settings)
    [out] = announce(record, failure.value, "DLQ-model-training")
    assert (out.topic, out.key) == ("model-training", "trained-LINEAR")
    event = out.value
    assert isinstance(event, ModelTrainingFailed)
    assert (event.model_type, event.identifier, event.config_hash) == (
        "LINEAR",
        s.claim.identifier,
        CONFIG_HASH,
    )
    assert event.error_type == "DataValidationError"
    assert "corrupt.parquet" in event.error_details
    assert event.dlq_topic == "DLQ-model-training"
    assert event.to_wire()["status"] == "FAILED"

    assert announce(record, StorageError("S3 unreachable"), "DLQ-model-training") == []
    garbage = Record("training-data", 0, 8, None, b"not json")
    assert announce(garbage, MessageError("not valid JSON"), "DLQ-training-data") == []
    no_lineage = bad.model_copy(update={"config_hash": None}).to_json_bytes()
    orphan = Record("training-data", 0, 9, None, no_lineage)
    assert announce(orphan, failure.value, "DLQ-model-training") == []
