"""Drift decisions (flts.stages.drift.judge) as a table, and the retraining CSV cut."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from tests._stage_data import make_spec, synthetic_frame

from flts.errors import DataValidationError
from flts.stages.drift import DriftPolicy, judge, retraining_config, retraining_csvs
from flts.stages.live import LiveMetrics

POLICY = DriftPolicy(
    persistence_ratio=1.5, test_ratio=2.0, coverage_drop=0.25, min_points=10, cooldown_steps=50
)


def metrics(
    mae: float, persistence: float, coverage: dict[int, float] | None = None, points: int = 100
) -> LiveMetrics:
    cov = coverage if coverage is not None else {80: 0.8, 95: 0.95}
    return LiveMetrics(points, mae, persistence, cov, points, mae, persistence, cov)


@pytest.mark.parametrize(
    ("live", "test_mae", "since", "retrain", "why"),
    [
        (metrics(1.0, 1.0), 1.0, None, False, "healthy"),
        (metrics(1.6, 1.0), None, None, True, "persistence MAE"),
        (metrics(1.4, 1.0), 1.0, None, False, "healthy"),
        (metrics(2.1, 5.0), 1.0, None, True, "test MAE"),
        (metrics(1.0, 1.0, {80: 0.5, 95: 0.9}), 1.0, None, True, "80% band collapsed"),
        (metrics(1.0, 1.0, {80: 0.6, 95: 0.75}), 1.0, None, False, "healthy"),
        (metrics(9.0, 1.0), 1.0, 49, False, "cooldown: 1 steps left"),
        (metrics(9.0, 1.0), 1.0, 50, True, "persistence MAE"),
        (metrics(9.0, 1.0, points=9), 1.0, None, False, "9 scored points < 10"),
    ],
)
def test_judge(
    live: LiveMetrics, test_mae: float | None, since: int | None, retrain: bool, why: str
) -> None:
    decision = judge(live, POLICY, test_mae=test_mae, steps_since_request=since)
    assert decision.retrain is retrain
    assert why in decision.reason


def test_retraining_csvs_hold_the_newest_rows_with_the_test_part_last() -> None:
    frame = synthetic_frame(300)
    config = retraining_config(make_spec(frame))
    train, test = retraining_csvs(frame, config, test_rows=40)
    train_frame = pd.read_csv(io.BytesIO(train))
    test_frame = pd.read_csv(io.BytesIO(test))
    assert (len(train_frame), len(test_frame)) == (260, 40)
    assert test_frame["down"].iloc[-1] == pytest.approx(frame["down"].iloc[-1])
    with pytest.raises(DataValidationError, match="retraining needs 149 recent rows"):
        retraining_csvs(frame.tail(100), config, test_rows=40)


def test_a_retrain_keeps_the_champions_holiday_calendar_and_its_zone() -> None:
    """The challenger differs from the champion only by its data: a LightGBM champion with
    holiday inputs is challenged by one with the same calendar, its days read in the same zone,
    while the retraining CSVs' UTC timestamps are not shifted by that zone."""
    from flts.forecasting.prepare import prepare_datasets
    from flts.forecasting.spec import TIME_COLUMN

    frame = synthetic_frame(300)
    spec = make_spec(frame).model_copy(update={"holidays": "DE", "timezone": "Europe/Berlin"})
    config = retraining_config(spec)
    assert (config.holidays, config.timezone) == ("DE", "Europe/Berlin")
    train, test = retraining_csvs(frame, config, test_rows=40)
    prepared = prepare_datasets(train, test, config, config_hash="h")
    assert (prepared.spec.holidays, prepared.spec.timezone) == ("DE", "Europe/Berlin")
    assert prepared.test[TIME_COLUMN].iloc[-1] == frame[TIME_COLUMN].iloc[-1]  # not shifted
