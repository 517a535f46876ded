"""Seasonal lags at the same local clock time (``local_clock_lags``, the zone known).

Load that follows people's clocks: after the autumn change, 10:00 today is 09:00 UTC but 10:00
yesterday was 08:00 UTC. A lag counted in UTC steps reads the wrong hour for a day (daily) or a
week (weekly) after every change; with local clock lags it reads the same local time. Off by
default: load on fixed timers or the sun follows UTC steps (``bench/clock_ab.py``).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from flts.bench.in_process import preprocessed
from flts.domain.config import ModelType, PreprocessConfig, TrainConfig, compute_config_hash
from flts.errors import ConfigError
from flts.forecasting.features import (
    features_for_spec,
    lagged_values,
    utc_offsets,
    window_features,
)
from flts.forecasting.prepare import prepare_datasets
from flts.forecasting.time_step import TimeStep
from flts.stages import train
from flts.stages.contracts import TrainStageConfig

QUARTER = 900
DAY = 96  # quarter-hours


def local_clock_load(start_utc: str, days: int, seed: int = 0) -> pd.DataFrame:
    """15-minute load that follows the Berlin clock (a morning ramp at 07:00 local, weekends
    lower), stamped in UTC."""
    utc = pd.date_range(start_utc, periods=days * DAY, freq="15min", tz="UTC")
    local = utc.tz_convert("Europe/Berlin")
    hour = local.hour + local.minute / 60
    shape = np.where((hour >= 7) & (hour < 19), 1.0, 0.3) + 0.2 * np.sin(2 * np.pi * hour / 24)
    weekend = np.where(local.dayofweek >= 5, 0.6, 1.0)
    noise = np.random.default_rng(seed).normal(0, 0.02, len(utc))
    load = 100 * shape * weekend + noise
    return pd.DataFrame({"time": utc.strftime("%Y-%m-%dT%H:%M:%SZ"), "load": load.round(4)})


def test_utc_offsets_follow_daylight_saving_time() -> None:
    seconds = pd.to_datetime(["2021-10-30 12:00", "2021-11-01 12:00"]).as_unit("s").asi8
    np.testing.assert_array_equal(
        utc_offsets(seconds.astype(np.float64), "Europe/Berlin"), [7200, 3600]
    )


def test_a_lag_after_the_autumn_change_reads_the_same_local_time() -> None:
    times = pd.date_range("2021-10-24 00:00", "2021-11-02 00:00", freq="15min")
    times_us = times.as_unit("us").asi8
    values = np.arange(len(times), dtype=np.float64)
    target = pd.Timestamp("2021-10-31 09:00")  # 10:00 in Berlin (CET, since 01:00 UTC)
    row = int(np.flatnonzero(times == target)[0])
    utc_lag, local_lag = (
        lagged_values(
            times_us[row : row + 1], times_us, values, (DAY, 7 * DAY), TimeStep(QUARTER), zone
        )
        for zone in (None, "Europe/Berlin")
    )
    assert values[row] - utc_lag[0, 0] == DAY  # 09:00 UTC yesterday: 11:00 in Berlin (CEST)
    # The same local time, 10:00 CEST, was 08:00 UTC: four quarter-hours earlier.
    assert values[row] - local_lag[0, 0] == DAY + 4
    assert values[row] - local_lag[0, 1] == 7 * DAY + 4
    before = int(np.flatnonzero(times == pd.Timestamp("2021-11-01 09:00"))[0])
    same = lagged_values(
        times_us[before : before + 1], times_us, values, (DAY,), TimeStep(QUARTER), "Europe/Berlin"
    )
    assert values[before] - same[0, 0] == DAY  # yesterday was CET already: no shift


def prepared(config: PreprocessConfig, frame: pd.DataFrame, split: int) -> object:
    buffer_train, buffer_test = io.StringIO(), io.StringIO()
    frame.iloc[:split].to_csv(buffer_train, index=False)
    frame.iloc[split:].to_csv(buffer_test, index=False)
    return prepare_datasets(
        buffer_train.getvalue().encode(), buffer_test.getvalue().encode(), config, config_hash="h"
    )


LOCAL = {"local_clock_lags": True}


def test_local_clock_lags_are_asked_for_and_need_a_zone() -> None:
    frame = local_clock_load("2021-10-01 00:00", 21)
    zone_only = prepared(PreprocessConfig(target="load", timezone="Europe/Berlin"), frame, 96 * 16)
    assert zone_only.spec.clock_zone is None  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="local_clock_lags needs the zone"):
        prepared(PreprocessConfig(target="load", **LOCAL), frame, 96 * 16)
    plain = PreprocessConfig(target="load")
    assert compute_config_hash(plain, "d") == compute_config_hash(
        plain.model_copy(update={"local_clock_lags": False}), "d"
    )
    assert compute_config_hash(plain, "d") != compute_config_hash(
        plain.model_copy(update=LOCAL), "d"
    )


def test_the_spec_keeps_the_clock_zone_of_clock_times_only() -> None:
    frame = local_clock_load("2021-10-01 00:00", 21)
    zoned = prepared(
        PreprocessConfig(target="load", timezone="Europe/Berlin", **LOCAL), frame, 96 * 16
    )
    assert zoned.spec.clock_zone == "Europe/Berlin"  # type: ignore[attr-defined]
    assert any("Europe/Berlin clock time one season" in n for n in zoned.train_notes)  # type: ignore[attr-defined]
    named = frame.rename(columns={"time": "Time (CET/CEST)"})
    by_name = prepared(
        PreprocessConfig(time_col="Time (CET/CEST)", target="load", **LOCAL), named, 96 * 16
    )
    assert by_name.spec.clock_zone == "CET"  # type: ignore[attr-defined]
    days = pd.DataFrame(
        {
            "time": pd.date_range("2021-01-01", periods=120, freq="D").strftime("%Y-%m-%d"),
            "load": np.arange(120.0) % 7,
        }
    )
    daily = prepared(PreprocessConfig(target="load", timezone="Europe/Berlin", **LOCAL), days, 100)
    assert daily.spec.clock_zone is None  # type: ignore[attr-defined]


def linear_mae_vs_persistence(frame: pd.DataFrame, split: int, zone: str | None) -> float:
    train_csv = frame.iloc[:split].to_csv(index=False).encode()
    test_csv = frame.iloc[split:].to_csv(index=False).encode()
    config = PreprocessConfig(target="load", timezone=zone, local_clock_lags=zone is not None)
    ctx, prep = preprocessed(train_csv, test_csv, config, "clock")
    stage = TrainStageConfig(model_type=ModelType.LINEAR, train=TrainConfig(epochs=1))
    event = train.run(prep.training, stage, ctx)
    assert event.baselines is not None
    return event.test_mae / event.baselines["PERSISTENCE"].mae


def test_local_clock_lags_keep_a_linear_model_right_across_the_autumn_change() -> None:
    # Five weeks of training in summer time, a test week with the change on its Sunday.
    frame = local_clock_load("2021-09-20 22:00", 42)
    split = 35 * DAY
    utc_steps = linear_mae_vs_persistence(frame, split, None)
    local_clock = linear_mae_vs_persistence(frame, split, "Europe/Berlin")
    assert local_clock < 0.8 * utc_steps


def test_the_http_window_and_the_frame_path_read_the_same_local_lags() -> None:
    # /predict builds one window from posted rows; batch and training build frames: both must
    # shift the lags the same way, or served forecasts differ from scored ones.
    frame = local_clock_load("2021-10-01 00:00", 35)
    spec = prepared(  # type: ignore[attr-defined]
        PreprocessConfig(target="load", timezone="Europe/Berlin", lookback=8, **LOCAL),
        frame,
        96 * 28,
    ).spec
    assert spec.lags
    raw = frame.assign(ds=pd.to_datetime(frame["time"]).dt.tz_localize(None))[["ds", "load"]]
    end = int(np.flatnonzero(raw["ds"] == pd.Timestamp("2021-10-31 10:00"))[0]) + 1
    rows = raw.iloc[:end]
    times_us = rows["ds"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    window = window_features(times_us, rows[["load"]].to_numpy(dtype=np.float64), spec)
    built = features_for_spec(rows, spec)
    np.testing.assert_allclose(window, built.iloc[-spec.lookback :, 1:].to_numpy())
    utc_spec = spec.model_copy(update={"clock_zone": None})
    assert not np.allclose(window, window_features(times_us, rows[["load"]].to_numpy(), utc_spec))


def test_a_zone_and_a_daylight_saving_change_offer_local_clock_lags_in_a_note() -> None:
    across = local_clock_load("2021-10-01 00:00", 35)  # the change on 31 October
    offered = prepared(PreprocessConfig(target="load", timezone="Europe/Berlin"), across, 96 * 28)
    assert any("--local-clock-lags (config local_clock_lags)" in n for n in offered.train_notes)  # type: ignore[attr-defined]
    summer = local_clock_load("2021-08-01 00:00", 35)
    quiet = prepared(PreprocessConfig(target="load", timezone="Europe/Berlin"), summer, 96 * 28)
    assert not any("local_clock_lags" in n for n in quiet.train_notes)  # type: ignore[attr-defined]
    no_zone = prepared(PreprocessConfig(target="load"), across, 96 * 28)
    assert not any("local_clock_lags" in n for n in no_zone.train_notes)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["run", "live"])
def test_the_local_clock_lags_flag_turns_the_option_on(command: str) -> None:
    from flts.cli import build_parser
    from flts.services.preprocess import build_config

    argv = [command, "--timezone", "Europe/Berlin", "--local-clock-lags"]
    args = build_parser(argv).parse_args(argv)
    config = build_config(None, timezone=args.timezone, local_clock_lags=args.local_clock_lags)
    assert (config.timezone, config.local_clock_lags) == ("Europe/Berlin", True)
    plain = build_parser([command]).parse_args([command])
    assert plain.local_clock_lags is False
    assert build_config('{"local_clock_lags": true}').local_clock_lags  # --config still works
    assert not build_config(None, local_clock_lags=plain.local_clock_lags).local_clock_lags
