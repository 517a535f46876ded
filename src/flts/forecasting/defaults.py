"""Data-driven defaults: the seasons a series has and the lags a learned model needs to see them.

Decided from the *training* timestamps only (never the test file), once, in preprocessing; the
result is saved in the processed objects' config and spec, so every model of a run sees the same.

* **Seasons.** The daily period is ``86400 / step`` when a day is a whole number of steps (and at
  least two steps). The weekly period (7 days) is added when training spans at least two weeks
  and a week is a whole number of steps: so daily or 12-hourly data, which has no daily season,
  still gets its weekly one (same day last week). A period needs at least two whole periods of
  training rows; a shorter series runs without it, and a note names the rows it would need.
  The seasonal-naive baseline uses the shortest season found (one day, else one week); without
  any it has a season of one step (it then equals persistence). Calendar steps (monthly,
  quarterly data) have one candidate, the year (12 steps of a month, 4 of a quarter); weekly
  steps the year of 52 weeks (364 days, so "a year earlier" is the same weekday).
* **Lags** (when the config leaves ``lags`` unset). A model reading row ``i-1`` forecasts step
  ``h`` (1..H) at row ``i-1+h``; the same time one season earlier is the target ``S-h`` rows
  before row ``i-1``. Default lags are that value and its neighbours for the first and the last
  step: ``S-h-1, S-h, S-h+1`` for ``h`` in ``{1, H}`` (at most six columns, so GRU/LSTM stay
  cheap), for the shortest season (daily, or weekly when there is no daily one); plus ``W-1``
  and ``W-H`` for the weekly one next to a daily one when training holds at least four weeks (a
  weekly lag drops its first week of training rows, so on shorter spans it would cost more than
  a quarter of the data). A lookback covering a whole day (720 rows at 2
  minutes) would multiply RNN fit time; lags give the model the same day-old values for the
  price of a few columns.
* **Covariates.** Every other numeric column of the file is a past covariate (already the default
  of ``feature_columns``); they are listed in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from flts.domain.config import PreprocessConfig
from flts.forecasting.time_step import TimeStep

DAY_SECONDS = 86_400
WEEK_DAYS = 7
#: Training span (days) from which the weekly period is detected.
WEEKLY_SEASON_MIN_DAYS = 14
#: Training span (days) from which weekly lags are added by default.
WEEKLY_LAG_MIN_DAYS = 28
#: Whole periods of training rows a season needs before models and baselines use it.
MIN_PERIODS = 2


@dataclass(frozen=True)
class ResolvedDefaults:
    """What preprocessing decided; explicit config values are kept as given."""

    season_steps: int
    #: Detected periods in steps, shortest first (``ForecastSpec.seasonal_periods``).
    seasonal_periods: tuple[int, ...]
    lags: tuple[int, ...]
    notes: tuple[str, ...]


def daily_period(step_seconds: int) -> int | None:
    """Steps in one day, or None when a day is not a whole number (>= 2) of steps."""
    if DAY_SECONDS % step_seconds or DAY_SECONDS // step_seconds < 2:
        return None
    return DAY_SECONDS // step_seconds


def weekly_period(step_seconds: int) -> int | None:
    """Steps in one week, or None when a week is not a whole number (>= 2) of steps."""
    week = DAY_SECONDS * WEEK_DAYS
    if week % step_seconds or week // step_seconds < 2:
        return None
    return week // step_seconds


#: A year of whole weeks (52 weeks = 364 days): the same weekday a year earlier.
YEAR_OF_WEEKS_DAYS = 364


def yearly_period(step: TimeStep) -> int | None:
    """Steps in one year: 12 for monthly data (4 quarterly), 52 for weekly data (a year of
    whole weeks, so the lag keeps the weekday); None for other steps. Daily data keeps its weekly
    season only: a 364-step period would ask a test file after a gap for a year of history."""
    if step.calendar:
        if 12 % step.months or 12 // step.months < 2:
            return None
        return 12 // step.months
    year = YEAR_OF_WEEKS_DAYS * DAY_SECONDS
    if step.seconds < WEEK_DAYS * DAY_SECONDS or year % step.seconds or year // step.seconds < 2:
        return None
    return year // step.seconds


def detect_seasons(
    train_ds: pd.Series, step: TimeStep, *, source: str = "training data"
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Usable seasonal periods (steps, shortest first) and notes on the ones left out."""
    step_seconds = step.seconds
    rows = len(train_ds)
    candidates: list[tuple[str, int]] = []
    day: int | None = None
    week: int | None = None
    if (year := yearly_period(step)) is not None:
        candidates.append(("yearly", year))
    if not step.calendar:
        day, week = daily_period(step_seconds), weekly_period(step_seconds)
    span_days = (train_ds.iloc[-1] - train_ds.iloc[0]).total_seconds() / DAY_SECONDS
    if day is not None:
        candidates.append(("daily", day))
    if week is not None and span_days + step_seconds / DAY_SECONDS >= WEEKLY_SEASON_MIN_DAYS:
        candidates.append(("weekly", week))
    periods: list[int] = []
    notes: list[str] = []
    if day is None and not step.calendar:
        notes.append(
            f"{source}: a day is not a whole number (>= 2) of {step_seconds} s steps; "
            "no daily season"
        )
    for name, period in candidates:
        need = MIN_PERIODS * period
        if rows >= need:
            periods.append(period)
        else:
            notes.append(
                f"{source}: too short for the {name} season of {period} steps: has {rows} rows, "
                f"needs {need} ({MIN_PERIODS} periods); running without it"
            )
    return tuple(periods), tuple(notes)


def default_lags(
    periods: tuple[int, ...], horizon: int, daily: int | None, span_days: float
) -> tuple[int, ...]:
    """Seasonal lags (see the module docstring), positive and sorted."""
    lags: set[int] = set()
    if periods:
        shortest = periods[0]  # daily, or weekly on data without a daily season
        for h in {1, horizon}:
            lags.update({shortest - h - 1, shortest - h, shortest - h + 1})
    weekly = None if daily is None else daily * WEEK_DAYS
    if weekly is not None and weekly in periods[1:] and span_days >= WEEKLY_LAG_MIN_DAYS:
        lags.update({weekly - 1, weekly - horizon})
    return tuple(sorted(k for k in lags if k >= 1))


def resolve_defaults(
    config: PreprocessConfig, train_ds: pd.Series, step: TimeStep, *, source: str
) -> ResolvedDefaults:
    """Seasons and lags for this training file; explicit ``season_steps``/``lags`` win."""
    periods, notes = detect_seasons(train_ds, step, source=source)
    daily = None if step.calendar else daily_period(step.seconds)
    if config.season_steps is not None:
        season = config.season_steps
        how = "configured"
    elif periods:
        season = periods[0]
        how = (
            "one year"
            if season == yearly_period(step)
            else "one day"
            if season == daily
            else "one week"
        )
    else:
        season = 1
        how = "no usable season: seasonal naive equals persistence"
    span_days = (train_ds.iloc[-1] - train_ds.iloc[0]).total_seconds() / DAY_SECONDS
    if config.lags is not None:
        lags = config.lags
        lag_how = "configured"
    else:
        lags = default_lags(periods, config.horizon, daily, span_days)
        lag_how = "default: same time one season earlier and its neighbours"
    shown = ", ".join(str(p) for p in periods) or "none"
    notes += (
        f"{source}: seasonal periods (steps): {shown}; seasonal naive season {season} ({how})",
        f"{source}: target lags {list(lags)} ({lag_how})",
    )
    return ResolvedDefaults(season, periods, lags, notes)
