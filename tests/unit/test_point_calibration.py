"""Point calibration: hedging toward persistence for a model that loses to it, a floor and zero
snapping for targets with runs of exact zeros, fitted on held-out training windows and applied
wherever a model forecasts."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from _stages import StageRun, run_stages

from flts.domain.config import ModelType, PreprocessConfig
from flts.forecasting.base import Forecaster
from flts.forecasting.dataset import read_processed
from flts.forecasting.models._common import feature_matrix
from flts.forecasting.point_calibration import (
    MIN_WEIGHT,
    ZERO_SHARE_MIN,
    PointCalibration,
    fit_persistence_weights,
    fit_point_calibration,
)
from flts.forecasting.windows import input_windows
from flts.stages import train
from flts.stages.contracts import TrainStageConfig
from flts.stages.ports import BUCKET_PROCESSED
from flts.stages.preprocess import processed_keys


def _intermittent(rows: int, seed: int) -> np.ndarray:
    """A heat-pump-like load at 15 minutes: off most of the day, on for noisy stretches in the
    early morning and evening, so most steps are exactly 0."""
    rng = np.random.default_rng(seed)
    slot = np.arange(rows) % 96
    on = ((slot >= 20) & (slot < 28)) | ((slot >= 72) & (slot < 80))
    on &= rng.random(rows) < 0.8
    return np.where(on, 0.4 + 0.2 * rng.random(rows), 0.0).round(4)


def test_zero_snapping_is_adopted_only_where_it_lowers_the_held_out_mae() -> None:
    rng = np.random.default_rng(3)
    actual = _intermittent(2000, seed=1)
    # A least-squares model's forecast: the truth smeared by a small positive bias and noise.
    forecast = actual + 0.03 + 0.01 * rng.standard_normal(actual.shape)
    fitted = fit_point_calibration(actual[:, None], forecast[:, None], actual)
    assert fitted is not None
    assert fitted.floor == 0.0
    assert fitted.zero_below > 0.0
    assert fitted.zero_share == pytest.approx(np.mean(actual == 0.0))
    assert fitted.raw_mae == pytest.approx(np.mean(np.abs(forecast - actual)))
    finished = fitted.apply(forecast)
    assert fitted.calibrated_mae == pytest.approx(np.mean(np.abs(finished - actual)))
    assert fitted.calibrated_mae < 0.5 * fitted.raw_mae
    # Nearly every off step is now exactly right (the threshold is one of the candidates).
    assert np.mean(finished[actual == 0.0] == 0.0) > 0.95


def test_a_target_without_zeros_keeps_its_forecasts_and_a_negative_one_has_no_floor() -> None:
    level = 5.0 + np.sin(np.arange(500) / 10.0)
    forecast = level + 0.1
    kept = fit_point_calibration(level[:, None], forecast[:, None], level)
    assert kept is not None
    assert (kept.floor, kept.zero_below) == (0.0, 0.0)
    assert np.array_equal(kept.apply(forecast), forecast)
    assert fit_point_calibration(level - 6.0, forecast - 6.0, level - 6.0) is None
    # Zeros below ZERO_SHARE_MIN are not a run of zeros: only the floor applies.
    sparse = np.where(np.arange(500) % 50 == 0, 0.0, level)
    assert np.mean(sparse == 0.0) < ZERO_SHARE_MIN
    fitted = fit_point_calibration(sparse, sparse + 0.01, sparse)
    assert fitted is not None
    assert fitted.zero_below == 0.0


def test_the_floor_stops_negative_forecasts_of_a_target_that_never_went_negative() -> None:
    rule = PointCalibration(floor=0.0, zero_share=0.5)
    assert rule.apply(np.array([[-0.2, 0.0, 0.3]])).tolist() == [[0.0, 0.0, 0.3]]
    snapping = PointCalibration(floor=None, zero_below=0.05, zero_share=0.5)
    assert snapping.apply(np.array([-0.04, 0.05, -0.06])).tolist() == [0.0, 0.0, -0.06]


def _random_walk(rows: int, seed: int) -> np.ndarray:
    return 50.0 + np.cumsum(np.random.default_rng(seed).standard_normal(rows))


def test_a_model_that_loses_to_persistence_is_hedged_toward_the_last_value() -> None:
    """On a random walk, a forecast that follows a daily shape the series does not have loses
    to persistence; the weight that minimises the held-out MAE is well below 1 at every step,
    and the hedged forecasts beat the model's on fresh data of the same kind."""
    rng = np.random.default_rng(5)
    horizon = 3

    def windows(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        walk = _random_walk(1200, seed)
        origins = np.arange(100, 1200 - horizon)
        actual = np.stack([walk[origins + s] for s in range(horizon)], axis=1)
        last = walk[origins - 1]
        shape = 2.0 * np.sin(2 * np.pi * (origins[:, None] + np.arange(horizon)) / 96)
        guess = last[:, None] + shape + 0.3 * rng.standard_normal(actual.shape)
        return actual, guess, last

    actual, forecast, last = windows(seed=1)
    weights = fit_persistence_weights(actual, forecast, last)
    assert weights is not None
    assert len(weights) == horizon
    assert all(MIN_WEIGHT <= w < 0.5 for w in weights)  # never the baseline itself
    fitted = fit_point_calibration(actual, forecast, actual[:, 0], last)
    assert fitted is not None
    assert fitted.persistence_weights == weights
    assert fitted.calibrated_mae is not None
    assert fitted.raw_mae is not None
    assert fitted.calibrated_mae < 0.9 * fitted.raw_mae
    fresh, guess, before = windows(seed=2)
    hedged = fitted.apply(guess, before)
    expected = before[:, None] + np.asarray(weights) * (guess - before[:, None])
    assert np.allclose(hedged, expected)
    hedged_mae = np.mean(np.abs(hedged - fresh))
    assert hedged_mae < np.mean(np.abs(guess - fresh))
    # Within a tenth of persistence's: the model keeps MIN_WEIGHT of its (useless) forecast.
    assert hedged_mae < np.mean(np.abs(before[:, None] - fresh)) * 1.1
    with pytest.raises(ValueError, match="value before each origin"):
        fitted.apply(guess)


def test_a_model_that_beats_persistence_is_not_hedged() -> None:
    walk = _random_walk(1000, seed=3)
    origins = np.arange(1, 999)
    actual = walk[origins][:, None]
    # Knows half of the next change: better than persistence on every window.
    forecast = (walk[origins - 1] + 0.5 * (walk[origins] - walk[origins - 1]))[:, None]
    assert fit_persistence_weights(actual, forecast, walk[origins - 1]) is None
    # A negative target without zeros, not hedged: nothing to finish at all.
    assert fit_point_calibration(actual - 100.0, forecast - 100.0, walk - 100.0) is None


def test_a_step_is_hedged_only_where_the_model_loses_there() -> None:
    walk = _random_walk(1500, seed=4)
    origins = np.arange(1, 1497)
    actual = np.stack([walk[origins], walk[origins + 1]], axis=1)
    last = walk[origins - 1]
    noise = 3.0 * np.random.default_rng(9).standard_normal(len(origins))
    # Step 1 knows the change exactly; step 2 adds noise the last value does not have.
    forecast = np.stack([walk[origins], last + noise], axis=1)
    weights = fit_persistence_weights(actual, forecast, last)
    assert weights is not None
    assert weights[0] == 1.0
    assert weights[1] < 0.5


def test_a_step_is_not_hedged_toward_persistence_where_seasonal_naive_is_the_better_bar() -> None:
    """A day ahead the gate's bar is seasonal naive: hedging toward the last value there would
    lead away from it, so a step where seasonal naive beats persistence keeps its forecast."""
    rng = np.random.default_rng(2)
    rows, season = 2000, 96
    daily = 30.0 * np.sin(2 * np.pi * np.arange(rows) / season) + rng.standard_normal(rows)
    origins = np.arange(season, rows - 1)
    actual = daily[origins][:, None]
    last = daily[origins - 1]
    naive = daily[origins - season][:, None]
    noisy = actual + 5.0 * rng.standard_normal(actual.shape)
    persistence_mae = np.mean(np.abs(last[:, None] - actual))
    assert np.mean(np.abs(noisy - actual)) > persistence_mae > np.mean(np.abs(naive - actual))
    assert fit_persistence_weights(actual, noisy, last) is not None
    assert fit_persistence_weights(actual, noisy, last, naive) is None


def test_the_fitted_models_own_forecasts_limit_the_hedge() -> None:
    """Held-out forecasts from a second fit on fewer rows can lose to persistence where the
    fitted model would not: the hedge goes only as far as both sets of forecasts call for."""
    walk = _random_walk(1500, seed=6)
    origins = np.arange(1, 1500)
    actual = walk[origins][:, None]
    last = walk[origins - 1]
    noise = np.random.default_rng(8).standard_normal(len(origins))
    twin = (last + 2.0 * noise)[:, None]  # a weak second fit: loses to persistence
    good = (last + 0.7 * (walk[origins] - last) + 0.1 * noise)[:, None]  # beats it
    alone = fit_point_calibration(actual, twin, walk - 100.0, last)
    assert alone is not None
    assert alone.persistence_weights is not None
    assert fit_point_calibration(actual, twin, walk - 100.0, last, in_sample=good) is None
    both_weak = fit_point_calibration(actual, twin, walk - 100.0, last, in_sample=twin * 1.0)
    assert both_weak is not None
    assert both_weak.persistence_weights == alone.persistence_weights


def _csv(values: np.ndarray, start: str) -> bytes:
    times = pd.date_range(start, periods=len(values), freq="15min")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M:%S"), "hp_kw": values})
    return frame.to_csv(index=False).encode()


def _served_like_scored(done: StageRun, model: Forecaster, target: str) -> None:
    """The training scores are the batch run's, the finished forecasts beat the raw ones on the
    test origins, and a GRU's batched forward (the API's path) answers what predict does."""
    lines = [orjson.loads(line) for line in done.jsonl.splitlines()]
    lines = [line for line in lines if line["actual"] is not None]  # the final true forecast
    predicted = np.array([line["prediction"] for line in lines])
    actual = np.array([line["actual"] for line in lines])
    assert np.mean(np.abs(predicted - actual)) == pytest.approx(done.trained.test_mae, rel=1e-9)
    # The same origins, forecast raw: the calibration is what made the difference.
    test_key = processed_keys("r", done.trained.config_hash)[1]
    frame, meta = read_processed(done.ctx.store.get_bytes(BUCKET_PROCESSED, test_key))
    origins = np.arange(max(meta.context_rows, model.min_history), len(frame))
    raw = np.asarray(model._predict(frame, origins))[:, 0]
    truth = frame[target].to_numpy()[origins]
    finished = model.predict(frame, origins)[:, 0]
    assert np.mean(np.abs(finished - truth)) < np.mean(np.abs(raw - truth))
    if model.model_type is ModelType.GRU:
        batch_fn = model.predict_scaled_batch  # type: ignore[attr-defined]
        scaled = model.spec.scaler.transform(feature_matrix(frame, model.spec))
        windows = input_windows(scaled.astype(np.float32), origins, model.spec.lookback)
        # A hedged forecast reads the last value back from the float32 window: not bit-equal.
        assert np.allclose(batch_fn(windows)[:, 0], finished, rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("model_type", [ModelType.LINEAR, ModelType.GRU])
def test_the_stages_score_and_serve_the_calibrated_forecasts(model_type: ModelType) -> None:
    """Through preprocess, train and batch inference: the model keeps its calibration, snaps
    most off steps to exactly 0, and serves what it was scored on (``_served_like_scored``)."""
    values = _intermittent(96 * 28, seed=7)
    train_csv, test_csv = (
        _csv(values[: 96 * 21], "2016-06-01"),
        _csv(values[96 * 21 :], "2016-06-22"),
    )
    config = PreprocessConfig(target="hp_kw", time_col="time")
    done = run_stages(model_type, train_csv, test_csv, config)
    model = done.ctx.tracker.load_forecaster(str(done.trained.model_uri))
    point = model.point_calibration
    assert point is not None
    assert point.floor == 0.0
    assert point.zero_below > 0.0
    assert point.persistence_weights is None  # it beats persistence on the off steps
    _served_like_scored(done, model, "hp_kw")
    predicted = model.predict(*_test_frame_and_origins(done, model))
    assert np.count_nonzero(predicted == 0.0) > predicted.size // 2


def _test_frame_and_origins(done: StageRun, model: Forecaster) -> tuple[pd.DataFrame, np.ndarray]:
    test_key = processed_keys("r", done.trained.config_hash)[1]
    frame, meta = read_processed(done.ctx.store.get_bytes(BUCKET_PROCESSED, test_key))
    return frame, np.arange(max(meta.context_rows, model.min_history), len(frame))


@pytest.mark.parametrize("model_type", [ModelType.LINEAR, ModelType.GRU])
def test_the_stages_hedge_a_model_whose_daily_shape_stopped(model_type: ModelType) -> None:
    """A load that followed a daily shape for ten days and then wandered without one: a model
    fitted on it keeps some of the shape, loses to persistence on the held-out tail, is hedged
    toward the last value, and serves what it was scored on (``_served_like_scored``)."""
    rng = np.random.default_rng(11)
    daily = 40.0 + 10.0 * np.sin(2 * np.pi * np.arange(96 * 10) / 96)
    daily += rng.standard_normal(daily.shape)
    wander = daily[-1] + np.cumsum(0.8 * rng.standard_normal(96 * 10))
    values = np.concatenate([daily, wander]).round(3)
    train_csv, test_csv = (
        _csv(values[: 96 * 18], "2016-06-01"),
        _csv(values[96 * 18 :], "2016-06-19"),
    )
    config = PreprocessConfig(target="load", time_col="time")
    done = run_stages(
        model_type,
        train_csv.replace(b"hp_kw", b"load"),
        test_csv.replace(b"hp_kw", b"load"),
        config,
    )
    model = done.ctx.tracker.load_forecaster(str(done.trained.model_uri))
    point = model.point_calibration
    assert point is not None
    assert point.persistence_weights is not None
    assert point.persistence_weights[0] < 1.0
    _served_like_scored(done, model, "load")
    # The SUCCESS event says so (the run report names it), also when rebuilt for a replay.
    assert done.trained.persistence_weights == list(point.persistence_weights)
    config = TrainStageConfig(model_type=model_type)
    tags = train.run_tags("r", done.trained.config_hash, model_type.value)
    finished = done.ctx.tracker.find_finished_run(config.experiment, tags)
    assert finished is not None
    replayed = train.from_finished_run(finished, "r", done.trained.config_hash, config)
    assert replayed.persistence_weights == done.trained.persistence_weights
