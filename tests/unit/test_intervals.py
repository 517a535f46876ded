"""Split-conformal intervals: finite-sample ranks, coverage on exchangeable residuals, metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from _synthetic import synthetic_problem

from flts.domain.config import ModelType, TrainConfig
from flts.errors import DataValidationError
from flts.forecasting.base import Forecaster
from flts.forecasting.intervals import (
    MIN_CALIBRATION_WINDOWS,
    ConformalIntervals,
    band_columns,
    calibrated_out_of_sample,
    calibration_origins,
    conformal_ranks,
    interval_metrics,
)
from flts.forecasting.models import create_forecaster


def test_conformal_rank_uses_the_finite_sample_correction() -> None:
    # n=19, alpha/2=0.05: ceil(20 * 0.95) = 19, so the largest residual; n=9 would need rank 10.
    assert conformal_ranks(19, 0.05) == (1, 19)
    assert conformal_ranks(99, 0.1) == (10, 90)
    assert conformal_ranks(9, 0.05) == (1, 9)


def test_bands_cover_fresh_exchangeable_residuals_near_nominal() -> None:
    rng = np.random.default_rng(0)
    # Skewed noise with a bias: the band must be asymmetric and still cover.
    calib = rng.gamma(2.0, 1.0, size=(2000, 3)) - 1.0
    intervals = ConformalIntervals.calibrate(calib, (80, 95))
    fresh = rng.gamma(2.0, 1.0, size=(20000, 3)) - 1.0
    point = np.zeros_like(fresh)
    for level, (lo, hi) in intervals.bands(point).items():
        metrics = interval_metrics(fresh, lo, hi, level)
        assert abs(metrics.coverage - level / 100) < 0.02
    lo80 = np.asarray(intervals.lower_offsets[0])
    hi80 = np.asarray(intervals.upper_offsets[0])
    assert np.all(hi80 - 0.0 > 0.0 - lo80)  # right-skewed: the upper side is wider


def test_wider_level_is_never_narrower() -> None:
    rng = np.random.default_rng(1)
    intervals = ConformalIntervals.calibrate(rng.normal(size=(300, 4)), (95, 80))
    assert intervals.levels == (80, 95)
    width80 = np.subtract(intervals.upper_offsets[0], intervals.lower_offsets[0])
    width95 = np.subtract(intervals.upper_offsets[1], intervals.lower_offsets[1])
    assert np.all(width95 >= width80)


def test_winkler_score_penalises_misses_by_two_over_alpha() -> None:
    actual = np.array([0.0, 5.0, -3.0])
    lower = np.full(3, -1.0)
    upper = np.full(3, 1.0)
    m = interval_metrics(actual, lower, upper, 80)
    # widths 2; misses 4 above and 2 below, each times 2/0.2 = 10.
    assert m.mean_width == pytest.approx(2.0)
    assert m.coverage == pytest.approx(1 / 3)
    assert m.winkler == pytest.approx((2 + (2 + 40) + (2 + 20)) / 3)


def test_too_few_windows_and_bad_levels_are_explained() -> None:
    with pytest.raises(DataValidationError, match="calibration windows"):
        ConformalIntervals.calibrate(np.zeros((MIN_CALIBRATION_WINDOWS - 1, 2)))
    with pytest.raises(DataValidationError, match="strictly between 0 and 100"):
        ConformalIntervals.calibrate(np.zeros((50, 2)), (80, 100))
    with pytest.raises(DataValidationError, match="intervals need"):
        calibration_origins(30, horizon=5, min_history=10, fraction=0.1)


def test_calibration_origins_are_the_end_of_training_and_leave_a_horizon() -> None:
    origins = calibration_origins(1000, horizon=4, min_history=50, fraction=0.1)
    assert origins[-1] == 996  # the last origin whose 4 steps lie in the frame
    assert len(origins) == 95  # ceil(0.1 * 947) available origins
    assert np.all(np.diff(origins) == 1)


def test_saved_and_loaded_unchanged(tmp_path: Path) -> None:
    intervals = ConformalIntervals.calibrate(np.arange(100.0).reshape(50, 2) - 50)
    intervals.save(tmp_path)
    assert ConformalIntervals.load(tmp_path) == intervals
    assert ConformalIntervals.load(tmp_path / "missing") is None
    cols = band_columns(intervals.bands(np.zeros((1, 2))))
    assert sorted(cols) == ["lower_80", "lower_95", "upper_80", "upper_95"]


def test_a_load_that_never_went_negative_gets_bands_clipped_at_zero() -> None:
    intervals = ConformalIntervals.calibrate(np.linspace(-5.0, 5.0, 100).reshape(50, 2))
    floored = intervals.model_copy(update={"floor": 0.0})
    point = np.array([[1.0, 10.0]])
    lo_raw, _ = intervals.bands(point)[80]
    lo, hi = floored.bands(point)[80]
    assert lo_raw[0, 0] < 0.0
    assert lo[0, 0] == 0.0
    assert lo[0, 1] == lo_raw[0, 1]  # far from the floor: unchanged
    assert np.all(hi >= lo)


def test_calibrating_a_forecaster_sets_the_floor_only_for_a_non_negative_target() -> None:
    from tests.unit._synthetic import synthetic_problem

    from flts.domain.config import ModelType
    from flts.forecasting.intervals import calibrate_forecaster
    from flts.forecasting.models import create_forecaster

    p = synthetic_problem()
    model = create_forecaster(ModelType.PERSISTENCE, p.spec)
    load = calibrate_forecaster(model, p.train)
    assert load.floor == 0.0
    # A load's bands are locally scaled: an hour of the daily season (at least 4 rows).
    assert load.scale_window == max(4, min(p.spec.periods) // 24)
    assert load.scale_floor is not None
    assert load.scale_floor > 0
    shifted = p.train.assign(**{p.spec.target: p.train[p.spec.target] - 2e8})
    signed = calibrate_forecaster(model, shifted)
    assert signed.floor is None
    assert signed.scale_window is None  # a level crossing 0 says nothing about the error
    zeros = p.train.assign(**{p.spec.target: 0.0})
    assert calibrate_forecaster(model, zeros).scale_window is None  # no level to scale by


def test_origin_levels_read_only_the_window_before_each_origin() -> None:
    from flts.forecasting.intervals import origin_levels

    target = np.array([2.0, -4.0, 6.0, np.nan, 10.0, 0.0])
    levels = origin_levels(target, np.array([0, 1, 3, 5, 6]), window=2, floor=0.5)
    # origin 0: no row before it, the first value; 1: |2|; 3: |-4| and 6; 5: 6 and 10 (the NaN
    # row is absent); 6: 10 and 0.
    np.testing.assert_allclose(levels, [2.0, 2.0, 5.0, 10.0, 5.0])
    assert origin_levels(np.zeros(4), np.array([3]), 2, 0.5)[0] == 0.5  # the floor


def test_scaled_bands_follow_a_load_whose_errors_grow_with_its_level() -> None:
    """Night at level 1, day at level 10, errors 10 % of the level: bands in the level's units
    cover 80 % at night and by day; bands in the target's units over-cover the night and
    under-cover the day."""
    from flts.forecasting.intervals import band_factors, origin_levels

    rng = np.random.default_rng(3)
    hours = np.arange(24 * 60)
    level = np.where((hours % 24 >= 8) & (hours % 24 < 20), 10.0, 1.0)
    target = level * (1.0 + 0.1 * rng.standard_normal(len(level)))
    origins = np.arange(24, len(level))
    point = level[origins][:, None]  # a model that knows the level; errors are the noise
    actual = target[origins][:, None]
    calibration, test = slice(0, 24 * 30), slice(24 * 30, None)
    scales = origin_levels(target, origins, 2, 0.05)
    factors = band_factors(point, scales, 0.05)
    scaled = ConformalIntervals.calibrate(
        (actual - point)[calibration], (80,), factors[calibration]
    ).model_copy(update={"scale_window": 2, "scale_floor": 0.05})
    plain = ConformalIntervals.calibrate((actual - point)[calibration], (80,))
    night = level[origins][test] == 1.0
    for bands, near_nominal in (
        (scaled.bands(point[test], scales[test]), True),
        (plain.bands(point[test]), False),
    ):
        lo, hi = bands[80]
        inside = ((actual[test] >= lo) & (actual[test] <= hi))[:, 0]
        by_night, by_day = inside[night].mean(), inside[~night].mean()
        if near_nominal:
            assert abs(by_night - 0.8) < 0.1
            assert abs(by_day - 0.8) < 0.1
        else:
            assert by_night > 0.95
            assert by_day < 0.7
    np.testing.assert_array_equal(scaled.scales_at(target, origins[test]), scales[test])
    assert plain.scales_at(target, origins) is None


def test_bands_saved_before_local_scaling_load_unscaled(tmp_path: Path) -> None:
    old = {
        "levels": [80],
        "lower_offsets": [[-1.0]],
        "upper_offsets": [[2.0]],
        "calibration_windows": 30,
        "floor": 0.0,
    }
    (tmp_path / "intervals.json").write_text(json.dumps(old))
    loaded = ConformalIntervals.load(tmp_path)
    assert loaded is not None
    assert loaded.scale_window is None
    lo, hi = loaded.bands(np.array([[5.0]]))[80]
    assert (lo[0, 0], hi[0, 0]) == (4.0, 7.0)


def test_long_horizons_calibrate_on_more_origins_than_the_validation_tail() -> None:
    short = calibration_origins(5000, horizon=1, min_history=50, fraction=0.1)
    long = calibration_origins(5000, horizon=48, min_history=50, fraction=0.1)
    assert len(short) == 495  # the validation tail
    assert len(long) == 960  # 20 origins per step
    assert long[-1] == 5000 - 48
    capped = calibration_origins(100_000, horizon=720, min_history=50, fraction=0.1)
    assert len(capped) == 2000


def test_the_calibration_spans_one_whole_season_when_the_data_holds_it() -> None:
    # Three weeks at 15 minutes: the 10% tail would be two days (a weekend); a weekly season
    # asks for the whole last week.
    tail = calibration_origins(2016, horizon=1, min_history=96, fraction=0.1)
    week = calibration_origins(2016, horizon=1, min_history=96, fraction=0.1, season=672)
    assert (len(tail), len(week)) == (192, 672)
    assert week[-1] == tail[-1] == 2015
    # A season longer than the data: every origin there is.
    assert len(calibration_origins(500, 1, 96, 0.1, season=672)) == 500 - 96


def test_models_that_fit_every_row_are_calibrated_by_a_second_fit_before_the_calibration_rows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.unit._synthetic import synthetic_problem

    from flts.domain.config import ModelType
    from flts.forecasting.intervals import calibrate_forecaster
    from flts.forecasting.models import create_forecaster
    from flts.forecasting.models.lag_regression import LinearForecaster

    p = synthetic_problem()
    model = create_forecaster(ModelType.LINEAR, p.spec)
    model.fit(p.train)
    weights = model._coef.copy()  # type: ignore[attr-defined]
    fitted_rows: list[int] = []
    original_fit = LinearForecaster.fit

    def spy(
        self: LinearForecaster, train: object, progress: object = None, unobserved: object = None
    ) -> object:
        fitted_rows.append(len(train))  # type: ignore[arg-type]
        return original_fit(self, train, progress, unobserved)  # type: ignore[arg-type]

    caplog.set_level(logging.INFO, logger="flts.forecasting.intervals")
    mp = pytest.MonkeyPatch()
    mp.setattr(LinearForecaster, "fit", spy)
    try:
        bands = calibrate_forecaster(model, p.train)
        origins = calibration_origins(len(p.train), p.spec.horizon, model.min_history, 0.1, 24)
        assert fitted_rows == [int(origins[0])]  # the twin saw no calibration target
        np.testing.assert_array_equal(model._coef, weights)  # type: ignore[attr-defined]
        assert bands.calibration_windows == len(origins)
        # Fewer rows before the calibration origins than half the training rows (or a
        # season): in-sample, said so, no second fit.
        fitted_rows.clear()
        short = p.train.iloc[:60].reset_index(drop=True)
        calibrate_forecaster(model, short)
        assert fitted_rows == []
        assert "calibrating on in-sample residuals" in caplog.text
    finally:
        mp.undo()


def test_residuals_against_filled_in_training_values_are_not_calibrated_on() -> None:
    from tests.unit._synthetic import synthetic_problem

    from flts.domain.config import ModelType
    from flts.forecasting.intervals import calibrate_forecaster
    from flts.forecasting.models import create_forecaster

    p = synthetic_problem()
    model = create_forecaster(ModelType.PERSISTENCE, p.spec)
    model.fit(p.train)
    origins = calibration_origins(len(p.train), p.spec.horizon, model.min_history, 0.1, 24)
    flags = np.zeros(len(p.train), dtype=bool)
    filled_row = int(origins[10])  # a target of origins[10 - horizon + 1 .. 10], the input of 11
    flags[filled_row] = True
    made_up = p.train.copy()
    made_up.loc[filled_row, "down"] *= 3.0
    flagged = calibrate_forecaster(model, made_up, unobserved=flags)
    assert flagged.calibration_windows == len(origins) - p.spec.horizon - 1
    # Whatever the filled row holds, the bands are the same (its residuals and its share of
    # the level a band is scaled by are left out); unflagged, the made-up value moves them.
    assert flagged == calibrate_forecaster(model, p.train, unobserved=flags)
    assert calibrate_forecaster(model, made_up) != calibrate_forecaster(model, p.train)


def test_replayed_bands_read_only_revealed_actuals_and_track_the_level() -> None:
    from flts.forecasting.intervals import ConformalIntervals, interval_metrics
    from flts.settings import LiveSettings
    from flts.stages.bands import DEFAULT_BAND_ADAPTATION, replayed_bands

    assert LiveSettings().band_adaptation == DEFAULT_BAND_ADAPTATION
    rng = np.random.default_rng(0)
    # Calibrated on errors of scale 1; the test period's errors have scale 2 (a busier period).
    bands = ConformalIntervals.calibrate(rng.normal(size=(500, 2)), (80,))
    point = np.zeros((3000, 2))
    actual = rng.normal(scale=2.0, size=(3000, 2))
    static = interval_metrics(actual, *bands.bands(point)[80], 80)
    replayed = replayed_bands(bands, point, actual)
    adaptive = interval_metrics(actual, *replayed[80], 80)
    assert static.coverage < 0.55
    assert abs(adaptive.coverage - 0.80) < 0.03
    # Causal: changing the actuals of row j changes no band drawn at or before origin j.
    changed = actual.copy()
    changed[1500:] += 100.0
    again = replayed_bands(bands, point, changed)
    np.testing.assert_array_equal(again[80][0][:1501], replayed[80][0][:1501])
    assert not np.array_equal(again[80][0][1502:], replayed[80][0][1502:])
    # Rate 0: the static bands.
    np.testing.assert_allclose(
        replayed_bands(bands, point, actual, 0.0)[80][0], bands.bands(point)[80][0], rtol=1e-12
    )


def test_replayed_bands_over_origins_with_a_gap_reveal_every_row_before_each_origin() -> None:
    """Batch inference's origins: consecutive ones with full actuals, then a final origin
    ``horizon`` rows later whose actuals are unknown (NaN). Its band must have seen every
    actual before it, as a consecutive replay with unknown rows in the gap does."""
    from flts.forecasting.intervals import ConformalIntervals
    from flts.stages.bands import replayed_bands

    rng = np.random.default_rng(1)
    horizon, scored = 3, 200
    bands = ConformalIntervals.calibrate(rng.normal(size=(100, horizon)), (80, 95))
    point = rng.normal(size=(scored + 1, horizon))
    actual = point + rng.normal(scale=3.0, size=point.shape)
    actual[-1] = np.nan
    origins = np.append(np.arange(scored), scored - 1 + horizon)
    gapped = replayed_bands(bands, point, actual, origins=origins)

    filled_point = np.vstack([point[:-1], np.zeros((horizon - 1, horizon)), point[-1:]])
    filled_actual = np.vstack([actual[:-1], np.full((horizon - 1, horizon), np.nan), actual[-1:]])
    consecutive = replayed_bands(bands, filled_point, filled_actual)
    for level in (80, 95):
        for side in (0, 1):
            np.testing.assert_array_equal(
                gapped[level][side][:-1], consecutive[level][side][:scored]
            )
            np.testing.assert_array_equal(gapped[level][side][-1], consecutive[level][side][-1])
    # Errors three times the calibration's: the final band has widened past the static one.
    static_lo, static_hi = bands.bands(point)[80]
    assert (gapped[80][1][-1] - gapped[80][0][-1] > static_hi[-1] - static_lo[-1]).all()
    with pytest.raises(ValueError, match="ascending"):
        replayed_bands(bands, point, actual, origins=origins[::-1])


def test_a_band_wholly_on_one_side_of_its_forecast_widens_towards_the_actuals() -> None:
    """A biased calibration: the 80 % band lies above the forecast, the actuals around it.
    Scaled about its centre the band reaches them and the adaptation finds 80 %; scaled about
    the forecast it would only move further up, never covering more than half."""
    from flts.forecasting.intervals import interval_metrics
    from flts.stages.bands import replayed_bands

    rng = np.random.default_rng(5)
    bands = ConformalIntervals(
        levels=(80,), lower_offsets=((0.2,),), upper_offsets=((1.0,),), calibration_windows=50
    )
    point = np.zeros((4000, 1))
    actual = rng.standard_normal((4000, 1))
    static = interval_metrics(actual, *bands.bands(point)[80], 80)
    adapted = interval_metrics(actual, *replayed_bands(bands, point, actual)[80], 80)
    assert static.coverage < 0.35
    assert abs(adapted.coverage - 0.80) < 0.03


def test_zero_forecasts_get_offsets_of_their_own_when_each_kind_has_enough_windows() -> None:
    """Mondrian conformal by forecast category: residuals of forecasts that are exactly 0 are
    calibrated apart from the others, so 'off' steps do not shrink the 'on' steps' band."""
    rng = np.random.default_rng(5)
    n = 1000
    zero = np.zeros((n, 2), dtype=bool)
    zero[: n * 9 // 10] = True  # nine in ten forecasts were snapped to 0 ...
    residuals = np.where(zero, 0.0, rng.normal(0.0, 1.0, (n, 2)))  # ... and were right
    split = ConformalIntervals.calibrate(residuals, (80,), zero_forecasts=zero)
    pooled = ConformalIntervals.calibrate(residuals, (80,))
    assert pooled.lower_offsets[0] == (0.0, 0.0)  # pooled: the 'on' band collapses
    assert split.zero_lower_offsets == ((0.0, 0.0),)
    assert split.zero_upper_offsets == ((0.0, 0.0),)
    assert all(v < -0.8 for v in split.lower_offsets[0])  # about the 10th percentile of N(0,1)
    assert all(v > 0.8 for v in split.upper_offsets[0])
    point = np.array([[0.0, 3.0], [2.0, 0.0]])
    (lower, upper) = split.bands(point)[80]
    assert lower[0, 0] == upper[0, 0] == 0.0
    assert lower[0, 1] == pytest.approx(3.0 + split.lower_offsets[0][1])
    # Too few zero forecasts at a step: one pooled set, as before.
    few = np.zeros((n, 2), dtype=bool)
    few[:10] = True
    assert ConformalIntervals.calibrate(residuals, (80,), zero_forecasts=few) == (
        ConformalIntervals.calibrate(residuals, (80,))
    )


def test_out_of_sample_calibration_needs_half_the_rows_before_its_origins() -> None:
    def lightgbm(n_train: int, horizon: int) -> Forecaster:  # hourly rows, a daily season
        spec = synthetic_problem(n_rows=n_train + 48, n_train=n_train, horizon=horizon).spec
        return create_forecaster(ModelType.LIGHTGBM, spec, TrainConfig())

    # Fifty days: the calibration origins (the last tenth) leave far more than a season before.
    assert calibrated_out_of_sample(lightgbm(1200, 1), 1200, 0.1)
    # Sixty rows, twelve steps ahead: the calibration origins leave too few rows for a second
    # fit, so the bands come from the model's own residuals (and LightGBM keeps its tail).
    assert not calibrated_out_of_sample(lightgbm(60, 12), 60, 0.1)
    # Too few rows for any calibration at all.
    assert not calibrated_out_of_sample(lightgbm(40, 12), 40, 0.1)
    # A model that holds its calibration rows out itself never gets a second fit.
    gru = create_forecaster(ModelType.GRU, lightgbm(1200, 1).spec, TrainConfig())
    assert not calibrated_out_of_sample(gru, 1200, 0.1)
