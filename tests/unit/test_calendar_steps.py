"""Monthly, quarterly and yearly data step by calendar months, from the file to the answer.

A month is 28 to 31 days, so no fixed step puts monthly rows on one grid; these tests pin the
calendar arithmetic (``TimeStep``), its detection, preprocessing, the stages (scores and batch
timestamps) and the HTTP API on monthly data.
"""

from __future__ import annotations

import io

import numpy as np
import orjson
import pandas as pd
import pytest
from _inference import AppClient, as_loaded
from _stages import run_stages
from hypothesis import given, settings
from hypothesis import strategies as st

from flts.api.inference_app import create_inference_app
from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.errors import DataValidationError
from flts.forecasting.data import regularise
from flts.forecasting.models import create_forecaster
from flts.forecasting.prepare import prepare_datasets
from flts.forecasting.spec import TIME_COLUMN
from flts.forecasting.time_step import TimeStep, infer_step
from flts.forecasting.windows import target_timestamps
from flts.serving.model_state import ModelState
from flts.stages.live import LiveSeries


def _us(*stamps: str) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("us").asi8


def _stamps(us: np.ndarray) -> list[str]:
    return [str(t) for t in pd.to_datetime(us, unit="us")]


# -- the arithmetic ------------------------------------------------------------------------------
def test_a_monthly_step_keeps_the_day_of_the_month() -> None:
    step = TimeStep.monthly(1)
    got = step.shift_us(_us("2016-01-15 06:00"), np.arange(0, 4))
    assert _stamps(got) == [
        "2016-01-15 06:00:00",
        "2016-02-15 06:00:00",
        "2016-03-15 06:00:00",
        "2016-04-15 06:00:00",
    ]
    assert _stamps(step.shift_us(_us("2016-03-01"), -3)) == ["2015-12-01 00:00:00"]
    # Before 1970 the month is floored, not truncated towards zero.
    assert _stamps(step.shift_us(_us("1969-12-01"), 1)) == ["1970-01-01 00:00:00"]


def test_month_ends_stay_month_ends() -> None:
    step = TimeStep.monthly(1, month_end=True)
    got = step.shift_us(_us("2016-01-31"), np.arange(1, 4))
    assert _stamps(got) == ["2016-02-29 00:00:00", "2016-03-31 00:00:00", "2016-04-30 00:00:00"]
    quarterly = TimeStep.monthly(3, month_end=True)
    assert _stamps(quarterly.shift_us(_us("2015-12-31"), 1)) == ["2016-03-31 00:00:00"]
    assert step.describe() == "1 month (month ends)"
    assert TimeStep(120).describe() == "120 s"


@pytest.mark.parametrize(
    ("freq", "months", "month_end"),
    [("MS", 1, False), ("ME", 1, True), ("QS", 3, False), ("QE", 3, True), ("YS", 12, False)],
)
def test_calendar_steps_are_recognised(freq: str, months: int, month_end: bool) -> None:
    ds = pd.Series(pd.date_range("2001-01-01", periods=40, freq=freq))
    assert infer_step(ds) == TimeStep.monthly(months, month_end=month_end)


def test_fixed_steps_stay_fixed() -> None:
    every_30_days = pd.Series(pd.date_range("2001-01-01", periods=40, freq="30D"))
    assert infer_step(every_30_days) is None  # exactly 30 days apart: a fixed step fits
    assert infer_step(pd.Series(pd.date_range("2001-01-01", periods=40, freq="15min"))) is None
    # Two rows a February apart are still monthly (the median alone would say 28 days).
    two = pd.Series(pd.to_datetime(["2016-02-01", "2016-03-01"]))
    assert infer_step(two) == TimeStep.monthly(1)


def test_a_missing_month_is_inserted_and_flagged() -> None:
    ds = pd.date_range("2016-01-01", periods=8, freq="MS")
    frame = pd.DataFrame({TIME_COLUMN: ds, "load": np.arange(8.0)}).drop(index=[3])
    out, notes, filled = regularise(frame.reset_index(drop=True), TimeStep.monthly(1), source="m")
    assert list(out[TIME_COLUMN]) == list(ds)
    assert filled.tolist() == [i == 3 for i in range(8)]
    assert out["load"].iloc[3] == pytest.approx(3.0, abs=0.05)  # interpolated in time
    assert any("1 missing time steps inserted" in note for note in notes)
    assert notes[0] == "m: 8 rows on a 1 month grid"
    clash = pd.DataFrame({TIME_COLUMN: pd.to_datetime(["2016-01-01", "2016-01-20"]), "load": 1.0})
    with pytest.raises(DataValidationError, match="same 1 month slot"):
        regularise(clash, TimeStep.monthly(1), source="m")


# -- preprocessing and the stages ----------------------------------------------------------------
def _monthly_csvs(
    train_months: int = 180, test_months: int = 24, month_end: bool = False
) -> tuple[bytes, bytes]:
    """A monthly load with a trend, a yearly cycle and a temperature-like covariate."""
    freq = "ME" if month_end else "MS"
    ds = pd.date_range("2001-01-01", periods=train_months + test_months, freq=freq)
    t = np.arange(len(ds))
    rng = np.random.default_rng(3)
    temp = 10 + 8 * np.cos(2 * np.pi * t / 12) + rng.normal(0, 1, len(t))
    load = 300 + 0.5 * t + 40 * np.cos(2 * np.pi * t / 12) + rng.normal(0, 4, len(t))
    frame = pd.DataFrame({"month": ds.strftime("%Y-%m-%d"), "load": load, "temp": temp})
    head, tail = frame.iloc[:train_months], frame.iloc[train_months:]
    return head.to_csv(index=False).encode(), tail.to_csv(index=False).encode()


CONFIG = PreprocessConfig(time_col="month", target="load", lookback=6, horizon=3)


def test_monthly_files_get_a_calendar_grid_and_the_yearly_season() -> None:
    train_csv, test_csv = _monthly_csvs()
    prepared = prepare_datasets(train_csv, test_csv, CONFIG, config_hash="h")
    spec = prepared.spec
    assert (spec.step_months, spec.month_end) == (1, False)
    assert spec.seasonal_periods == (12,)
    assert spec.season_steps == 12  # seasonal naive: the same month last year
    assert spec.time_features is False  # no time-of-day inputs for month starts
    assert {10, 12} <= set(spec.lags)  # same month last year, for steps 1 and H
    assert prepared.resolved_config is not None
    assert prepared.resolved_config.step_months == 1
    assert any("step 1 month (calendar months)" in note for note in prepared.train_notes)
    test = prepared.test
    context = prepared.test_context_rows
    first_test = pd.Timestamp("2016-01-01")  # 180 months after January 2001
    assert test[TIME_COLUMN].iloc[context] == first_test
    stamps = target_timestamps(test, np.array([context]), spec)
    assert [str(pd.Timestamp(s).date()) for s in stamps[0]] == [
        "2016-01-01",
        "2016-02-01",
        "2016-03-01",
    ]


def test_month_end_files_forecast_month_ends() -> None:
    train_csv, test_csv = _monthly_csvs(month_end=True)
    prepared = prepare_datasets(train_csv, test_csv, CONFIG, config_hash="h")
    assert (prepared.spec.step_months, prepared.spec.month_end) == (1, True)
    context = prepared.test_context_rows
    stamps = target_timestamps(prepared.test, np.array([context]), prepared.spec)
    assert [str(pd.Timestamp(s).date()) for s in stamps[0]] == [
        "2016-01-31",
        "2016-02-29",
        "2016-03-31",
    ]


def test_configured_months_must_divide_a_year_and_match_the_file() -> None:
    with pytest.raises(ValueError, match="must divide a year"):
        PreprocessConfig(step_months=5)
    train_csv, test_csv = _monthly_csvs()
    quarterly = CONFIG.model_copy(update={"step_months": 3})
    with pytest.raises(DataValidationError, match=r"1 month apart .* the step is 3 months"):
        prepare_datasets(train_csv, test_csv, quarterly, config_hash="h")


def _stage_run(model_type: ModelType) -> tuple[bytes, dict[str, object], list[dict[str, object]]]:
    train_csv, test_csv = _monthly_csvs()
    done = run_stages(model_type, train_csv, test_csv, CONFIG)
    lines = [orjson.loads(x) for x in done.jsonl.splitlines()]
    return test_csv, done.trained.model_dump(), lines


def test_stages_score_every_test_month_and_forecast_month_starts() -> None:
    test_csv, trained, lines = _stage_run(ModelType.LINEAR)
    y_test = pd.read_csv(io.BytesIO(test_csv))["load"].to_numpy()
    horizon = CONFIG.horizon
    assert trained["test_windows"] == len(y_test) - horizon + 1  # every test month judged
    # Seasonal naive is the same month one year earlier, computed straight from the files.
    train_csv, _ = _monthly_csvs()
    both = np.concatenate([pd.read_csv(io.BytesIO(train_csv))["load"].to_numpy(), y_test])
    n = len(y_test) - horizon + 1
    idx = len(both) - len(y_test) + np.arange(n)[:, None] + np.arange(horizon)
    naive = trained["baselines"]["SEASONAL_NAIVE"]  # type: ignore[index]
    assert naive["mae"] == pytest.approx(np.mean(np.abs(both[idx - 12] - both[idx])), rel=1e-12)
    targets = sorted({pd.Timestamp(str(line["target_ts"]).rstrip("Z")) for line in lines})
    assert all(t.day == 1 and t.hour == 0 for t in targets)
    assert targets[0] == pd.Timestamp("2016-01-01")
    assert targets[-1] == pd.Timestamp("2018-03-01")  # the last forecast runs past the file


# -- serving and the live loop -------------------------------------------------------------------
def _monthly_model() -> object:
    train_csv, test_csv = _monthly_csvs()
    prepared = prepare_datasets(train_csv, test_csv, CONFIG, config_hash="h")
    model = create_forecaster(ModelType.LINEAR, prepared.spec, TrainConfig())
    model.fit(prepared.train)
    return model


def test_predict_answers_monthly_timestamps_and_names_a_skipped_month() -> None:
    model = _monthly_model()
    state = ModelState()
    state.set(as_loaded(model))  # type: ignore[arg-type]
    months = pd.date_range("2015-01-01", periods=24, freq="MS")
    t = np.arange(24)
    rows = {
        "time": [str(m) for m in months],
        "load": (480 + 40 * np.cos(2 * np.pi * t / 12)).tolist(),
        "temp": (10 + 8 * np.cos(2 * np.pi * t / 12)).tolist(),
    }
    with AppClient(create_inference_app(state)) as client:
        answer = client.post("/predict", json={"data": rows, "index_col": "time"})
        assert answer.status_code == 200, answer.text
        stamps = [p["ts"] for p in answer.json()["predictions"]]
        assert [s[:10] for s in stamps] == ["2017-01-01", "2017-02-01", "2017-03-01"]
        assert client.get("/model").json()["spec"]["step_months"] == 1
        # Months written as the file writes them ("2015-01", ISO 8601's calendar month).
        as_months = {**rows, "time": [m.strftime("%Y-%m") for m in months]}
        same = client.post("/predict", json={"data": as_months, "index_col": "time"})
        assert same.status_code == 200, same.text
        assert same.json()["predictions"] == answer.json()["predictions"]
        not_a_month = {**rows, "time": ["2015-13", *as_months["time"][1:]]}
        refused = client.post("/predict", json={"data": not_a_month, "index_col": "time"})
        assert refused.status_code == 422
        assert "'2015-13' is not an ISO 8601 timestamp" in refused.text
        skipped = {**rows, "time": [*rows["time"][:10], "2015-12-01", *rows["time"][11:]]}
        skipped["time"][11:] = [str(m) for m in months[11:] + pd.DateOffset(months=1)]
        bad = client.post("/predict", json={"data": skipped, "index_col": "time"})
        assert bad.status_code == 422
        assert "exactly 1 month apart" in bad.text


def test_the_live_loop_slots_months_and_fills_a_missing_one() -> None:
    series = LiveSeries("m", ("load",), TimeStep.monthly(1), keep_rows=12, metrics_window=10)
    jan, feb, apr = _us("2016-01-01", "2016-02-01", "2016-04-01")
    assert series.accept(int(jan), np.array([1.0])).status == "accepted"
    assert series.accept(int(feb), np.array([2.0])).status == "accepted"
    outcome = series.accept(int(apr), np.array([4.0]))
    assert (outcome.status, outcome.filled_steps) == ("accepted", 1)
    assert series.accept(int(feb), np.array([2.0])).status == "duplicate"
    frame = series.frame(10)
    assert [str(d.date()) for d in frame[TIME_COLUMN]] == [
        "2016-01-01",
        "2016-02-01",
        "2016-03-01",
        "2016-04-01",
    ]
    assert frame["load"].tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0])


def test_five_years_of_months_fit_by_shortening_the_default_lookback() -> None:
    """A hundred training windows would ask for nine years of monthly data; long steps need
    what GRU/LSTM need after their validation split, and the default lookback gives way."""
    train_csv, test_csv = _monthly_csvs(train_months=60, test_months=24)
    config = PreprocessConfig(time_col="month", target="load", horizon=12)  # default lookback
    prepared = prepare_datasets(train_csv, test_csv, config, config_hash="h")
    assert prepared.spec.lookback == 6  # 48 rows after the lag history: 6 + 11 + 31 windows
    assert any("lookback shortened from 30 to 6" in note for note in prepared.train_notes)
    for model_type in (ModelType.GRU, ModelType.LINEAR):
        model = create_forecaster(model_type, prepared.spec, TrainConfig(epochs=1, hidden_size=4))
        model.fit(prepared.train)  # every default model can be trained on what was accepted
    explicit = config.model_copy(update={"lookback": 20})
    with pytest.raises(DataValidationError, match=r"a lookback of 6 would fit"):
        prepare_datasets(train_csv, test_csv, explicit, config_hash="h")
    # Sub-daily steps keep the hundred-window rule (two minutes: 200 minutes of data).
    from _rawcsv import csv_pair

    short_train, short_test = csv_pair(train_rows=120, test_rows=10)
    with pytest.raises(DataValidationError, match="100 training windows"):
        prepare_datasets(short_train, short_test, PreprocessConfig(), config_hash="h")


def test_a_long_horizon_asks_for_what_the_rnns_need_before_anything_trains() -> None:
    """100 windows leave GRU/LSTM too few after a validation split and a gap of 200 steps: such
    a file used to pass preprocessing and then fail a trainer (and with it the whole run)."""
    from _rawcsv import SMALL, csv_pair

    config = SMALL.model_copy(update={"horizon": 200})
    train_csv, test_csv = csv_pair(train_rows=5 + 199 + 150, test_rows=210)
    with pytest.raises(DataValidationError, match="239 training windows"):
        prepare_datasets(train_csv, test_csv, config, config_hash="h")
    train_csv, test_csv = csv_pair(train_rows=5 + 199 + 239, test_rows=210)
    prepared = prepare_datasets(train_csv, test_csv, config, config_hash="h")
    gru = create_forecaster(ModelType.GRU, prepared.spec, TrainConfig(epochs=1, hidden_size=4))
    gru.fit(prepared.train)


def test_mstl_fits_monthly_data_on_its_last_ten_years() -> None:
    """An old seasonal shape misleads MSTL's fixed profile; at sub-daily steps it keeps its
    2,000-row floor (a few days), at calendar steps ten years of months."""
    train_csv, test_csv = _monthly_csvs(train_months=300, test_months=24)
    prepared = prepare_datasets(train_csv, test_csv, CONFIG, config_hash="h")
    mstl = create_forecaster(ModelType.MSTL, prepared.spec, TrainConfig())
    assert mstl.fit(prepared.train).train_windows == 120
    fixed = prepared.spec.model_copy(update={"step_months": 0, "step_seconds": 2_629_746})
    mstl = create_forecaster(ModelType.MSTL, fixed, TrainConfig())
    assert mstl.fit(prepared.train).train_windows == len(prepared.train)


def test_a_series_without_a_season_fits_mstl_and_weekly_prophet_sees_the_year() -> None:
    """Five-day totals divide no day, week or year: every model must still fit (MSTL took the
    one-step "season" for a period and failed). Weekly data gets Prophet's yearly seasonality
    instead of a daily and a weekly one no row can show."""
    from flts.forecasting.models.prophet_model import _new_prophet

    days = pd.date_range("2010-01-01", periods=400, freq="5D")
    t = np.arange(len(days))
    load = 100 + 10 * np.sin(2 * np.pi * t / 73) + np.random.default_rng(1).normal(0, 1, len(t))
    frame = pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "load": load})
    config = PreprocessConfig(time_col="day", target="load", horizon=2)
    prepared = prepare_datasets(
        frame.iloc[:350].to_csv(index=False).encode(),
        frame.iloc[350:].to_csv(index=False).encode(),
        config,
        config_hash="h",
    )
    assert prepared.spec.seasonal_periods == ()
    mstl = create_forecaster(ModelType.MSTL, prepared.spec, TrainConfig())
    mstl.fit(prepared.train)
    assert np.isfinite(mstl.predict(prepared.test, np.array([len(prepared.test) - 2]))).all()
    weekly = _new_prophet(TimeStep(7 * 86_400))
    assert (weekly.daily_seasonality, weekly.weekly_seasonality) == (False, False)
    assert weekly.yearly_seasonality is True
    fifteen_minutes = _new_prophet(TimeStep(900))
    assert fifteen_minutes.yearly_seasonality is False


@settings(max_examples=200, deadline=None)
@given(
    year=st.integers(1900, 2100),
    month=st.integers(1, 12),
    day=st.integers(0, 27),
    minute=st.integers(0, 24 * 60 - 1),
    months=st.sampled_from([1, 2, 3, 4, 6, 12]),
    month_end=st.booleans(),
    ks=st.lists(st.integers(-60, 60), min_size=1, max_size=8),
)
def test_calendar_shifts_invert_and_land_on_their_slots(
    year: int, month: int, day: int, minute: int, months: int, month_end: bool, ks: list[int]
) -> None:
    """Any start (month-start-anchored days that every month has, or the month's last days),
    any steps: shifting back undoes shifting, and ``slots`` finds each shifted stamp exactly."""
    start = pd.Timestamp(year=year, month=month, day=1) + pd.Timedelta(minutes=minute)
    start = start + pd.offsets.MonthEnd(0) - pd.Timedelta(days=day) if month_end else start
    start = start if month_end else start + pd.Timedelta(days=day)
    step = TimeStep.monthly(months, month_end=month_end)
    origin = int(pd.DatetimeIndex([start]).as_unit("us").asi8[0])
    k = np.array(ks)
    later = step.shift_us(origin, k)
    assert (step.shift_us(later, -k) == origin).all()
    slots, snapped = step.slots(later, origin)
    assert slots.tolist() == ks
    assert snapped == 0
