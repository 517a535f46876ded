"""Data-driven defaults: seasons detected from timestamps, default lags, short-series notes."""

from __future__ import annotations

import pandas as pd
import pytest

from flts.domain.config import PreprocessConfig
from flts.forecasting.defaults import default_lags, detect_seasons, resolve_defaults
from flts.forecasting.time_step import TimeStep


def stamps(days: float, step_s: int) -> pd.Series:
    n = int(days * 86_400 / step_s)
    return pd.Series(pd.date_range("2025-01-06", periods=n, freq=f"{step_s}s"))


@pytest.mark.parametrize(
    ("days", "step_s", "expected"),
    [
        (22, 120, (720, 5040)),  # the bundled data: daily and weekly
        (13, 120, (720,)),  # under two weeks: daily only
        (84, 1800, (48, 336)),  # half-hourly electricity, 12 weeks
        (30, 900, (96, 672)),  # 15-minute load profiles
        (400, 86_400, (7,)),  # daily totals: no daily season, but the weekly one
        (30, 43_200, (2, 14)),  # twice a day
        (3 * 365, 7 * 86_400, (52,)),  # weekly totals: a year of 52 weeks (same weekday)
        (3 * 365, 14 * 86_400, (26,)),  # fortnightly
    ],
)
def test_seasons_from_timestamps(days: float, step_s: int, expected: tuple[int, ...]) -> None:
    periods, notes = detect_seasons(stamps(days, step_s), TimeStep(step_s))
    assert periods == expected
    assert not [note for note in notes if "too short" in note]


def test_series_too_short_for_a_day_names_the_rows_needed_and_runs_without_it() -> None:
    ds = stamps(1.5, 120)  # 1080 rows, a daily season needs 1440
    periods, notes = detect_seasons(ds, TimeStep(120), source="short.csv")
    assert periods == ()
    assert notes == (
        "short.csv: too short for the daily season of 720 steps: has 1080 rows, needs 1440 "
        "(2 periods); running without it",
    )
    found = resolve_defaults(PreprocessConfig(), ds, TimeStep(120), source="short.csv")
    assert found.season_steps == 1  # seasonal naive falls back to persistence
    assert found.lags == ()


def test_daily_data_gets_the_weekly_season_for_seasonal_naive_and_lags() -> None:
    found = resolve_defaults(
        PreprocessConfig(horizon=7), stamps(400, 86_400), TimeStep(86_400), source="d"
    )
    assert found.seasonal_periods == (7,)
    assert found.season_steps == 7  # seasonal naive: the same day last week
    # Same weekday one week before the first and the last step, and their neighbours.
    assert found.lags == (1, 5, 6, 7)
    assert any("no daily season" in note for note in found.notes)
    assert any("seasonal naive season 7 (one week)" in note for note in found.notes)


def test_steps_that_divide_no_day_or_week_have_no_season() -> None:
    found = resolve_defaults(
        PreprocessConfig(), stamps(400, 5 * 86_400), TimeStep(5 * 86_400), source="d"
    )
    assert (found.seasonal_periods, found.season_steps, found.lags) == ((), 1, ())


def test_default_lags_see_the_same_time_one_season_earlier() -> None:
    # Horizon 1 at 2 minutes: row i-1 sees target[i-720] (lag 719) and its neighbours.
    assert default_lags((720, 5040), 1, 720, span_days=22) == (718, 719, 720)
    # Four weeks of training add last week's value too.
    assert default_lags((720, 5040), 1, 720, span_days=28) == (718, 719, 720, 5039)
    # Day-ahead at 30 minutes: first and last step's same time yesterday.
    # (and last week: W-1 and W-H).
    assert default_lags((48, 336), 48, 48, span_days=84) == (1, 46, 47, 48, 288, 335)


def test_explicit_config_wins() -> None:
    config = PreprocessConfig(lags=(3,), season_steps=24)
    found = resolve_defaults(config, stamps(22, 120), TimeStep(120), source="t.csv")
    assert (found.lags, found.season_steps) == ((3,), 24)
    assert found.seasonal_periods == (720, 5040)  # still reported
    none = resolve_defaults(
        PreprocessConfig(lags=()), stamps(22, 120), TimeStep(120), source="t.csv"
    )
    assert none.lags == ()


def test_weekly_data_gets_the_year_when_training_holds_two() -> None:
    week = 7 * 86_400
    found = resolve_defaults(
        PreprocessConfig(horizon=4), stamps(3 * 365, week), TimeStep(week), source="w"
    )
    assert (found.seasonal_periods, found.season_steps) == ((52,), 52)
    assert "seasonal naive season 52 (one year)" in " ".join(found.notes)
    assert set(found.lags) == {47, 48, 49, 50, 51, 52}  # 52-h-1..52-h+1 for h in {1, 4}
    short, notes = detect_seasons(stamps(365, week), TimeStep(week), source="w")
    assert short == ()
    assert "too short for the yearly season of 52 steps" in " ".join(notes)
