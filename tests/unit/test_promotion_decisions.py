"""The evaluator's decisions (flts.stages.promotion) as a table of cases: no broker, no store."""

from __future__ import annotations

import pytest

from flts.domain.messages import ModelSelected, ModelTrained
from flts.stages import promotion
from flts.stages.promotion import Done, Evaluate, Publish, Wait

EXPECTED = ["GRU", "LSTM", "PROPHET"]


def trained(model_type: str, run_id: str = "") -> ModelTrained:
    return ModelTrained(
        model_type=model_type,
        config_hash="h",
        run_id=run_id or f"r-{model_type}",
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        train_start="2025-11-24T12:00:00Z",
        train_end="2025-11-24T12:05:00Z",
        identifier="id",
        artifact_uri="s3://mlflow/x",
    )


SELECTED = ModelSelected(
    model_uri="runs:/r-GRU/model",
    model_type="GRU",
    run_id="r-GRU",
    config_hash="h",
    composite_score=0.8,
    test_rmse=1.0,
    test_mae=1.0,
    test_mse=1.0,
    promotion_time="2025-11-24T12:10:00Z",
    identifier="id",
)


def state_with(*models: str) -> promotion.CompletionState:
    state = promotion.new_state("id", "h", EXPECTED)
    for model in models:
        state, _ = promotion.record_success(state, trained(model))
    return state


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (state_with(), Wait(missing=("GRU", "LSTM", "PROPHET"))),
        (state_with("LSTM"), Wait(missing=("GRU", "PROPHET"))),
        (state_with("GRU", "LSTM", "PROPHET"), Evaluate()),
        (
            promotion.with_evaluation(state_with(*EXPECTED), None, "nothing beat persistence"),
            Done("no champion: nothing beat persistence"),
        ),
        (promotion.with_evaluation(state_with(*EXPECTED), SELECTED, "best"), Publish(SELECTED)),
        (
            promotion.with_published(
                promotion.with_evaluation(state_with(*EXPECTED), SELECTED, "")
            ),
            Done("already promoted"),
        ),
    ],
    ids=["nothing", "one", "complete", "no-champion", "champion", "published"],
)
def test_next_step(state: promotion.CompletionState, expected: promotion.Step) -> None:
    assert promotion.next_step(state) == expected


def test_record_success_is_pure_and_deduplicates_replays() -> None:
    empty = promotion.new_state("id", "h", EXPECTED)
    first, changed = promotion.record_success(empty, trained("GRU"))
    assert changed
    assert list(first.results) == ["GRU"]
    assert empty.results == {}  # the input state is untouched
    same, changed = promotion.record_success(first, trained("GRU"))
    assert not changed
    assert same is first
    newer, changed = promotion.record_success(first, trained("GRU", run_id="r-GRU-2"))
    assert changed
    assert newer.results["GRU"].run_id == "r-GRU-2"


def test_an_evaluated_state_never_changes_again() -> None:
    done = promotion.with_evaluation(state_with(*EXPECTED), SELECTED, "best")
    after, changed = promotion.record_success(done, trained("GRU", run_id="late"))
    assert not changed
    assert after is done
