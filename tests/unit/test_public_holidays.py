"""Public holidays as LightGBM inputs (``PreprocessConfig.holidays``, ``flts run --holidays``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from flts.bench.holiday_bench import shop_load
from flts.domain.calendars import check_code
from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.errors import ConfigError
from flts.forecasting.models import create_forecaster, load_forecaster
from flts.forecasting.models import lag_features as lf
from flts.forecasting.prepare import prepare_datasets
from flts.forecasting.public_holidays import holiday_flags
from flts.forecasting.time_step import TimeStep
from flts.forecasting.windows import actuals
from flts.services.preprocess import build_config
from flts.stages import scoring


def seconds_of(*stamps: str) -> np.ndarray:
    index = pd.DatetimeIndex(stamps)
    return np.asarray((index - pd.Timestamp(0)) // pd.Timedelta(seconds=1), dtype=np.float64)


def test_a_day_is_a_holiday_in_the_calendar_and_zone_named() -> None:
    # Easter Monday 2016 in Germany; Berlin is UTC+2 that day.
    stamps = seconds_of("2016-03-27 23:30", "2016-03-28 00:30", "2016-03-28 22:30")
    np.testing.assert_array_equal(holiday_flags(stamps, "DE"), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(holiday_flags(stamps, "DE", "Europe/Berlin"), [1.0, 1.0, 0.0])
    # A subdivision's own day: 11 September in Catalonia, not in Spain as a whole.
    diada = seconds_of("2018-09-11 12:00")
    assert holiday_flags(diada, "ES-CT")[0] == 1.0
    assert holiday_flags(diada, "ES")[0] == 0.0


def test_calendar_codes_are_normalised_and_unknown_ones_refused() -> None:
    assert check_code(" es-ct ") == "ES-CT"
    assert PreprocessConfig(holidays="de").holidays == "DE"
    with pytest.raises(ValidationError, match="not a country the holidays package knows"):
        PreprocessConfig(holidays="XX")
    with pytest.raises(ValidationError, match="DE has no subdivision 'ZZ'"):
        PreprocessConfig(holidays="DE-ZZ")
    with pytest.raises(ConfigError, match="expected a country code"):
        build_config(None, holidays="Germany")


def csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_lightgbm_learns_that_a_holiday_is_a_closed_day(tmp_path: Path) -> None:
    # Eleven months with the year's German holidays in training; December (Christmas) to test.
    train = csv(shop_load("2017-01-02", "2017-12-01", seed=0))
    test = csv(shop_load("2017-12-01", "2018-01-01", seed=1))  # closed on 25 and 26 December
    errors = {}
    for code in (None, "DE"):
        config = PreprocessConfig(target="load", horizon=12, holidays=code)
        data = prepare_datasets(train, test, config, config_hash="0" * 16)
        assert data.spec.holidays == code
        model = create_forecaster(ModelType.LIGHTGBM, data.spec, TrainConfig(torch_threads=1))
        model.fit(data.train)
        origins = scoring.scoring_origins(
            len(data.test), data.spec, [model], data.test_context_rows
        )
        forecast = model.predict(data.test, origins)
        actual = actuals(data.test["load"].to_numpy(), origins, data.spec.horizon)
        stamps = pd.to_datetime(data.test["ds"]).to_numpy()
        target_days = stamps[origins[:, None] + np.arange(data.spec.horizon)[None, :]]
        on_holiday = holiday_flags(seconds_of(*pd.DatetimeIndex(target_days.ravel())), "DE") > 0
        error = np.abs(forecast - actual).ravel()
        errors[code] = (error[on_holiday].mean(), error[~on_holiday].mean())
        if code is not None:  # saved and loaded, it reads the same calendar
            model.save(tmp_path / "model")
            reloaded = load_forecaster(tmp_path / "model")
            np.testing.assert_array_equal(reloaded.predict(data.test, origins), forecast)
    holiday_without, ordinary_without = errors[None]
    holiday_with, ordinary_with = errors["DE"]
    assert holiday_with < 0.5 * holiday_without  # Christmas is no longer a working day
    assert ordinary_with < 1.1 * ordinary_without  # and ordinary days lose nothing


def test_design_rows_flag_the_target_day_and_the_seasonal_lag_day() -> None:
    stamps = pd.date_range("2016-03-20", "2016-04-05", freq="h")
    seconds = np.asarray((stamps - pd.Timestamp(0)) // pd.Timedelta(seconds=1), np.float64)
    series = lf.ScaledSeries(
        np.zeros(len(stamps)), np.empty((len(stamps), 0)), seconds, TimeStep(3600)
    )
    periods = (24, 168)
    origins = np.array(
        [
            stamps.get_loc(pd.Timestamp(t))
            for t in ("2016-03-28 05:00", "2016-03-29 05:00", "2016-04-04 05:00")
        ]
    )
    plain = lf.design(series, origins, 0, periods)
    flagged = lf.design(series, origins, 0, periods, holidays=lf.HolidayInputs("DE"))
    assert flagged.shape[1] == plain.shape[1] + 1 + len(periods)
    assert flagged.shape[1] == lf.n_features(periods, 0, False, with_holidays=True)
    # Columns before the step: target day, its day one day earlier, one week earlier.
    np.testing.assert_array_equal(
        flagged[:, -4:-1],
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],  # Easter Monday: 28 March
    )


def test_quick_benchmark_reports_both_models_with_and_without_the_calendar(tmp_path: Path) -> None:
    from flts.bench import BenchOptions, runner

    (result,) = runner("holidays")(BenchOptions(quick=True, out_dir=tmp_path))
    case = result.figures["shop@h12"]
    assert set(case) == {"lightgbm_without", "lightgbm_with", "linear_without", "linear_with"}
    ratio = (
        case["lightgbm_with"]["mae_vs_persistence"] / case["lightgbm_without"]["mae_vs_persistence"]
    )
    assert result.figures["lightgbm_with_over_without_geomean"] == pytest.approx(ratio)
    assert result.target_met == (ratio < 1.0)
