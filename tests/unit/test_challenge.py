"""Champion against challenger on the new lineage's most recent windows (flts.stages.challenge),
alone and inside the evaluate stage."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from tests._stage_data import IDENTIFIER, Setup, processed_bytes, synthetic_frame

from flts.domain.config import ModelType
from flts.domain.messages import BaselineScores, ModelSelected, ModelTrained
from flts.forecasting.models import create_forecaster
from flts.stages import challenge, evaluate
from flts.stages.contracts import EvaluateRequest, EvaluateStageConfig
from flts.stages.ports import BUCKET_PROCESSED, BUCKET_PROMOTION
from flts.stages.preprocess import processed_keys

NEW_HASH = "new-lineage"
OLD_HASH = "old-lineage"


@pytest.fixture
def setup() -> Iterator[Setup]:
    s = Setup()
    # The new lineage: one continuous series cut into training and test. Its test object
    # carries no training context, so a champion's history comes from the training object's
    # tail (as for a weekly-season champion against a short retraining).
    series = synthetic_frame(len(s.train) + len(s.test), seed=5)
    new_train, new_test = series.iloc[: len(s.train)], series.iloc[len(s.train) :]
    train_key, test_key = processed_keys(IDENTIFIER, NEW_HASH)
    test_bytes = processed_bytes(new_test.reset_index(drop=True), s.spec, "test", NEW_HASH)
    s.store.put_bytes(BUCKET_PROCESSED, test_key, test_bytes)
    s.store.put_bytes(
        BUCKET_PROCESSED, train_key, processed_bytes(new_train, s.spec, "train", NEW_HASH)
    )
    yield s
    s.tracker.close()


def logged(setup: Setup, model_type: ModelType) -> tuple[str, str]:
    model = create_forecaster(model_type, setup.spec)
    model.fit(setup.train)
    run_id = setup.tracker.start_run("flts", model_type.value, {})
    return run_id, setup.tracker.log_forecaster(run_id, model, "model").model_uri


def champion_of(setup: Setup, model_type: ModelType) -> ModelSelected:
    run_id, uri = logged(setup, model_type)
    selected = ModelSelected(
        model_uri=uri,
        model_type=model_type.value,
        run_id=run_id,
        config_hash=OLD_HASH,
        composite_score=0.9,
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        promotion_time="2025-01-01T00:00:00Z",
        identifier=IDENTIFIER,
    )
    challenge.record_champion(setup.ctx, selected)
    return selected


def candidate(setup: Setup, model_type: ModelType, rmse: float = 1.0) -> ModelTrained:
    run_id, uri = logged(setup, model_type)
    baselines = {
        "PERSISTENCE": BaselineScores(rmse=100.0, mae=100.0, mse=1e4),
        "SEASONAL_NAIVE": BaselineScores(rmse=100.0, mae=100.0, mse=1e4),
    }
    return ModelTrained(
        model_type=model_type.value,
        config_hash=NEW_HASH,
        run_id=run_id,
        test_rmse=rmse,
        test_mae=rmse,
        test_mse=rmse**2,
        train_start="2025-01-01T00:00:00Z",
        train_end="2025-01-02T00:00:00Z",
        identifier=IDENTIFIER,
        artifact_uri="memory://x",
        model_uri=uri,
        test_windows=100,
        horizon=2,
        baselines=baselines,
    )


def test_a_challenger_worse_on_recent_windows_is_not_promoted(setup: Setup) -> None:
    # The synthetic series is seasonal: seasonal naive beats persistence on it.
    champion_of(setup, ModelType.SEASONAL_NAIVE)
    verdict = challenge.challenge(
        setup.ctx, IDENTIFIER, NEW_HASH, candidate(setup, ModelType.PERSISTENCE)
    )
    assert verdict is not None
    assert not verdict.promote
    assert "does not beat champion SEASONAL_NAIVE" in verdict.reason
    assert verdict.champion is not None
    assert verdict.challenger is not None
    assert verdict.challenger.mae > verdict.champion.mae
    # Every test row is a scored origin: the champion's season of history came from training.
    assert verdict.windows == len(setup.test) - setup.spec.horizon + 1


def test_a_better_challenger_is_promoted_and_becomes_the_champion(setup: Setup) -> None:
    champion_of(setup, ModelType.PERSISTENCE)
    config = EvaluateStageConfig(expected_model_types=(ModelType.LINEAR,))
    request = EvaluateRequest(
        identifier=IDENTIFIER,
        config_hash=NEW_HASH,
        results=(candidate(setup, ModelType.LINEAR),),
    )
    out = evaluate.run(request, config, setup.ctx)
    assert out.selected is not None
    assert "beats champion PERSISTENCE" in out.report.reason
    record = orjson.loads(setup.store.get_bytes(BUCKET_PROMOTION, f"{IDENTIFIER}/champion.json"))
    assert record["run_id"] == out.selected.run_id
    assert record["config_hash"] == NEW_HASH


def test_evaluate_records_no_promotion_with_the_reason_when_the_champion_holds(
    setup: Setup,
) -> None:
    # The same model trained on the same data again: a tie is no reason to swap.
    old = champion_of(setup, ModelType.LINEAR)
    config = EvaluateStageConfig(expected_model_types=(ModelType.LINEAR,))
    request = EvaluateRequest(
        identifier=IDENTIFIER,
        config_hash=NEW_HASH,
        results=(candidate(setup, ModelType.LINEAR),),
    )
    out = evaluate.run(request, config, setup.ctx)
    assert out.selected is None
    assert out.report.champion is None
    assert "does not beat champion" in out.report.reason
    record = orjson.loads(setup.store.get_bytes(BUCKET_PROMOTION, f"{IDENTIFIER}/champion.json"))
    assert record["run_id"] == old.run_id  # unchanged


def test_no_champion_or_the_same_lineage_means_no_challenge(setup: Setup) -> None:
    entry = candidate(setup, ModelType.PERSISTENCE)
    assert challenge.challenge(setup.ctx, IDENTIFIER, NEW_HASH, entry) is None
    champion_of(setup, ModelType.SEASONAL_NAIVE)
    assert challenge.challenge(setup.ctx, IDENTIFIER, OLD_HASH, entry) is None
