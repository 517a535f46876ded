"""LINEAR, LIGHTGBM and MSTL specifics: the features read, periods dropped, skill over persistence.

The shared contract (shapes, determinism, no look-ahead, save/load) is in
test_forecaster_conformance.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _synthetic import synthetic_problem

from flts.domain.config import ModelType, TrainConfig
from flts.forecasting.models import create_forecaster
from flts.forecasting.models import lag_features as lf
from flts.forecasting.models.lag_regression import META_FILE
from flts.forecasting.time_step import TimeStep

CONFIG = TrainConfig(seed=3, torch_threads=1)


def test_design_reads_the_season_before_the_target_and_never_the_origin() -> None:
    y = np.arange(100, dtype=np.float64)  # value = row index, so features name their rows
    seconds = 3600.0 * np.arange(100)
    series = lf.ScaledSeries(y, np.zeros((100, 0)), seconds, TimeStep(3600))
    origins = np.array([60, 70])
    period = 10
    for step in (0, 3, 9, 12):
        row = lf.design(series, origins, step, (period,))
        last = origins - 1
        assert list(row[:, 0]) == list(last)
        assert list(row[:, 1]) == [-1.0, -1.0]  # y[i-2] - y[i-1]
        for j, offset in enumerate(lf.SEASON_OFFSETS):
            read = np.minimum(origins + step - period + offset, last)
            np.testing.assert_array_equal(row[:, 3 + j], read - last)
            assert (read < origins).all()
        assert list(row[:, -1]) == [float(step)] * 2


def test_needs_exactly_one_season_of_history_like_seasonal_naive() -> None:
    """Evaluation compares models only on identical origins; S + 1 would drop the first one."""
    p = synthetic_problem(horizon=2)
    for model_type in (ModelType.LINEAR, ModelType.LIGHTGBM):
        model = create_forecaster(model_type, p.spec, CONFIG)
        model.fit(p.train)
        assert model.min_history == p.spec.season_steps
        assert np.isfinite(model.predict(p.train, np.array([p.spec.season_steps]))).all()


def test_a_period_longer_than_the_data_allows_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = synthetic_problem(horizon=2)
    spec = p.spec.model_copy(update={"seasonal_periods": (24, 10_000)})
    frame = pd.concat([p.train, p.test], ignore_index=True)
    for model_type in (ModelType.LINEAR, ModelType.MSTL):
        model = create_forecaster(model_type, spec, CONFIG)
        with caplog.at_level(logging.WARNING):
            model.fit(p.train)
        assert "10000" in caplog.text
        caplog.clear()
        pred = model.predict(frame, np.arange(len(p.train), len(frame) - 1))
        assert np.isfinite(pred).all()


@pytest.mark.parametrize("model_type", [ModelType.LINEAR, ModelType.LIGHTGBM, ModelType.MSTL])
def test_beats_persistence_on_a_seasonal_series(model_type: ModelType) -> None:
    p = synthetic_problem(horizon=6)
    frame = pd.concat([p.train, p.test], ignore_index=True)
    origins = np.arange(len(p.train), len(frame) - 5)
    y = frame["down"].to_numpy()
    actual = y[origins[:, None] + np.arange(6)]
    persistence = np.mean(np.abs(y[origins - 1][:, None] - actual))
    model = create_forecaster(model_type, p.spec, CONFIG)
    model.fit(p.train)
    mae = np.mean(np.abs(model.predict(frame, origins) - actual))
    assert mae < 0.7 * persistence


def test_lightgbm_reads_sixteen_recent_lags_within_the_seasonal_history() -> None:
    p = synthetic_problem(horizon=2)  # a daily season of 24 rows
    lightgbm = create_forecaster(ModelType.LIGHTGBM, p.spec, CONFIG)
    linear = create_forecaster(ModelType.LINEAR, p.spec, CONFIG)
    lightgbm.fit(p.train)
    linear.fit(p.train)
    assert lightgbm._recent == tuple(range(1, 17))  # type: ignore[attr-defined]
    assert linear._recent == lf.TARGET_LAGS  # type: ignore[attr-defined]
    assert lightgbm.min_history == linear.min_history == 24  # the same scored origins
    assert lf.recent_lags((7,), 16) == tuple(range(1, 8))  # daily data, a weekly season


def test_a_lightgbm_model_saved_before_recent_lags_were_recorded_reads_three(
    tmp_path: Path,
) -> None:
    p = synthetic_problem(horizon=2)
    model = create_forecaster(ModelType.LIGHTGBM, p.spec, CONFIG)
    model.fit(p.train)
    model.save(tmp_path)
    meta_path = tmp_path / META_FILE
    meta = json.loads(meta_path.read_text())
    assert meta["recent_lags"] == list(range(1, 17))
    assert meta["regressor"]["objective"] in ("l2", "l1")
    del meta["recent_lags"], meta["regressor"]["objective"]
    meta_path.write_text(json.dumps(meta))
    old = create_forecaster(ModelType.LIGHTGBM, p.spec, CONFIG)
    old.load(tmp_path)
    assert old._recent == lf.TARGET_LAGS  # type: ignore[attr-defined]
    assert old._objective == "l2"  # type: ignore[attr-defined]


def spiky_series(rows: int, seed: int) -> np.ndarray:
    """A daily cycle plus rare large spikes (an appliance switched on): changes with heavy
    tails, where the median change is the better forecast for the MAE."""
    rng = np.random.default_rng(seed)
    base = 10 + 3 * np.sin(2 * np.pi * np.arange(rows) / 24) + rng.normal(0, 0.2, rows)
    return base + (rng.random(rows) < 0.1) * rng.exponential(8.0, rows)


@pytest.mark.parametrize(
    ("values", "objective"),
    [(spiky_series(1440, 1), "l1"), (10 + 3 * np.sin(2 * np.pi * np.arange(1440) / 24), "l2")],
)
def test_lightgbm_keeps_the_loss_with_the_lower_validation_mae(
    values: np.ndarray, objective: str
) -> None:
    p = synthetic_problem(n_rows=1440, n_train=1200, horizon=1)
    train = p.train.assign(down=values[: len(p.train)])
    model = create_forecaster(ModelType.LIGHTGBM, p.spec, CONFIG)
    model.fit(train)
    assert model._objective == objective  # type: ignore[attr-defined]


def test_lightgbm_learns_from_the_validation_tail_too() -> None:
    """Early stopping holds the last origins out to count rounds; the model kept is refitted on
    them as well. A climb that starts within that tail is learned: one step ahead the trees
    follow it instead of forecasting the daily cycle alone."""
    n_train, n_rows, climb_from = 1200, 1248, 1120  # the tail: the last ~10% of origins
    t = np.arange(n_rows)
    climb = 0.5 * np.clip(t - climb_from, 0, None)
    values = 1e7 * (10 + 3 * np.sin(2 * np.pi * t / 24) + climb)  # the spec scaler's units
    p = synthetic_problem(n_rows=n_rows, n_train=n_train, horizon=1)
    frame = pd.concat([p.train, p.test], ignore_index=True).assign(down=values)
    model = create_forecaster(ModelType.LIGHTGBM, p.spec, CONFIG)
    model.fit(frame.iloc[:n_train])
    origins = np.arange(n_train, n_rows)
    forecast = model.predict(frame, origins)[:, 0]
    persistence = np.mean(np.abs(values[origins] - values[origins - 1]))
    # Refitted: 0.54x persistence; fitted before the tail only: 1.17x (it misses the climb).
    assert np.mean(np.abs(forecast - values[origins])) < 0.7 * persistence
