"""Point calibration: a floor and zero snapping for targets with runs of exact zeros, fitted on
held-out training windows and applied wherever a model forecasts."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from _stages import run_stages

from flts.domain.config import ModelType, PreprocessConfig
from flts.forecasting.point_calibration import (
    ZERO_SHARE_MIN,
    PointCalibration,
    fit_point_calibration,
)


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


def _csv(values: np.ndarray, start: str) -> bytes:
    times = pd.date_range(start, periods=len(values), freq="15min")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M:%S"), "hp_kw": values})
    return frame.to_csv(index=False).encode()


@pytest.mark.parametrize("model_type", [ModelType.LINEAR, ModelType.GRU])
def test_the_stages_score_and_serve_the_calibrated_forecasts(model_type: ModelType) -> None:
    """Through preprocess, train and batch inference: the model keeps its calibration, its
    scores are those of the finished forecasts (what the batch run writes), those are better
    than its raw ones, and the GRU's batched forward (the API's path) answers the same."""
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
    lines = [orjson.loads(line) for line in done.jsonl.splitlines()]
    lines = [line for line in lines if line["actual"] is not None]  # the final true forecast
    predicted = np.array([line["prediction"] for line in lines])
    actual = np.array([line["actual"] for line in lines])
    assert np.mean(np.abs(predicted - actual)) == pytest.approx(done.trained.test_mae, rel=1e-9)
    assert np.count_nonzero(predicted == 0.0) > len(predicted) // 2
    # The same origins, forecast raw: the calibration is what made the difference.
    from flts.forecasting.dataset import read_processed
    from flts.stages.ports import BUCKET_PROCESSED
    from flts.stages.preprocess import processed_keys

    test_key = processed_keys("r", done.trained.config_hash)[1]
    frame, meta = read_processed(done.ctx.store.get_bytes(BUCKET_PROCESSED, test_key))
    origins = np.arange(max(meta.context_rows, model.min_history), len(frame))
    raw = np.asarray(model._predict(frame, origins))[:, 0]
    truth = frame["hp_kw"].to_numpy()[origins]
    finished = model.predict(frame, origins)[:, 0]
    assert np.mean(np.abs(finished - truth)) < np.mean(np.abs(raw - truth))
    if model_type is ModelType.GRU:
        from flts.forecasting.models._common import feature_matrix
        from flts.forecasting.windows import input_windows

        batch_fn = model.predict_scaled_batch  # type: ignore[attr-defined]
        scaled = model.spec.scaler.transform(feature_matrix(frame, model.spec))
        windows = input_windows(scaled.astype(np.float32), origins, model.spec.lookback)
        assert np.array_equal(batch_fn(windows)[:, 0], finished)
