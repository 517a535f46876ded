"""Features known at a forecast origin, for the regression-on-lags forecasters.

For origin ``i`` (the first unobserved row) and horizon step ``k`` (0-based, target row
``t = i + k``) the design row holds, all in the target's scaled units:

* ``y[i-1]``, the last observed value (the level);
* ``y[i-2] - y[i-1]`` and ``y[i-3] - y[i-1]`` (the recent slope; LightGBM reads further back,
  ``y[i-j] - y[i-1]`` for ``j`` up to 16 rows within the lag history, ``recent_lags``);
* for each seasonal period ``S``: ``y[t-S-1]``, ``y[t-S]``, ``y[t-S+1]`` minus ``y[i-1]`` (the
  same time one season before the *target* and its neighbours). A neighbour that would fall at or
  after the origin (only when ``k >= S - 1``) is read at ``i - 1`` instead, so nothing unobserved
  is ever read; one before the first row (only from origin ``S``, for ``t - S - 1``) is read at
  row 0, so the model needs exactly ``S`` rows of history, like seasonal naive, and every model
  is scored on the same origins;
* every other raw numeric column at ``i - 1`` (scaled with the spec's training scaler);
* optionally (LightGBM only), the time of day and of the week of the *target* time (sine and
  cosine), from ``ds[i-1]`` plus ``k + 1`` steps: ramps at fixed hours (a shop opening) depend
  on them non-linearly. On the simbench commercial profile LightGBM went from 0.978x to 0.710x
  persistence MAE at 16 steps with them, while the linear model got worse (0.813x to 0.898x);
* optionally (a run with a holiday calendar, ``PreprocessConfig.holidays``), whether the target
  day is a public holiday and, per period, whether the day one season before the target was one
  (its seasonal lag is then no ordinary day); ``flts.forecasting.public_holidays``;
* the step ``k`` itself (used by the pooled LightGBM model; the linear model fits one model per
  step, where the column is constant and harmless).

The label is the change ``y[t] - y[i-1]``: predicting the change from the last value makes
"no change" (persistence) the zero of every model, which is what short horizons need. It is NaN
where either value was filled in by preprocessing (``windows.judged_pairs``): a fit skips it.
Everything is vectorised over origins; building the design for 20k origins costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flts.forecasting.features import utc_offsets
from flts.forecasting.models._common import feature_matrix
from flts.forecasting.public_holidays import holiday_flags
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec
from flts.forecasting.time_step import TimeStep
from flts.forecasting.windows import judged_at_step

#: Target lags before the origin (1 is the level every other feature is measured against).
TARGET_LAGS: tuple[int, ...] = (1, 2, 3)
#: Offsets around "one season before the target time".
SEASON_OFFSETS: tuple[int, ...] = (-1, 0, 1)
DAY_SECONDS = 86_400
_US = 1_000_000
WEEK_SECONDS = 7 * DAY_SECONDS
#: Seconds from Monday 00:00 to the epoch (Thursday 1970-01-01 00:00).
MONDAY_OFFSET = 3 * DAY_SECONDS


def spec_periods(spec: ForecastSpec) -> tuple[int, ...]:
    """Seasonal periods the spec offers (detected by preprocess), shortest first."""
    return spec.periods


def usable_periods(spec: ForecastSpec, n_train: int, min_windows: int) -> tuple[int, ...]:
    """Periods whose seasonal lags leave at least ``min_windows`` training origins.

    A weekly period on three weeks of data still leaves two weeks of origins; on ten days it
    would leave almost none, so it is dropped (the caller logs which were kept).
    """
    kept = []
    for period in spec_periods(spec):
        if n_train - period - spec.horizon + 1 >= min_windows:
            kept.append(period)
    return tuple(kept)


def covariate_columns(spec: ForecastSpec) -> tuple[str, ...]:
    """Raw numeric columns besides the target (time features and lag columns are not used)."""
    raw = spec.raw_columns or tuple(
        c for c in spec.feature_order if c != spec.target and "_lag" not in c
    )
    return tuple(c for c in raw if c != spec.target and c in spec.feature_order)


def history_needed(periods: tuple[int, ...]) -> int:
    """Rows an origin needs before it: three target lags, and one season of each period."""
    return max([max(TARGET_LAGS), *periods])


def recent_lags(periods: tuple[int, ...], most: int) -> tuple[int, ...]:
    """Target lags ``1..most`` before the origin, as far as the seasonal lags' history reaches
    (a model reading further back would need more history, so fewer origins than the models it
    is compared with)."""
    return tuple(range(1, min(most, history_needed(periods)) + 1))


@dataclass(frozen=True)
class ScaledSeries:
    """The scaled target and covariates of one frame (rows in frame order)."""

    target: np.ndarray
    covariates: np.ndarray  # (rows, n_covariates)
    #: Seconds since the epoch of each row (UTC), and the grid step.
    seconds: np.ndarray
    step: TimeStep
    #: Rows whose target was filled in (training only): no label is learned from them.
    unobserved: np.ndarray | None = None
    #: The zone whose clock the load follows (``ForecastSpec.clock_zone``), or None (UTC).
    clock_zone: str | None = None

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        spec: ForecastSpec,
        covariates: tuple[str, ...],
        end: int,
        unobserved: np.ndarray | None = None,
    ) -> ScaledSeries:
        """Scale rows ``[0, end)`` only: nothing at or after the last origin is read."""
        matrix = feature_matrix(frame.iloc[:end], spec)
        scaled = spec.scaler.transform(matrix)
        cov_idx = [spec.feature_order.index(c) for c in covariates]
        ds = pd.to_datetime(frame[TIME_COLUMN].iloc[:end])
        if ds.dt.tz is not None:
            ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = ds.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(np.float64)
        mask = None if unobserved is None else np.asarray(unobserved[:end], dtype=bool)
        target = scaled[:, spec.target_index]
        return cls(target, scaled[:, cov_idx], seconds, spec.step, mask, spec.clock_zone)


@dataclass(frozen=True)
class HolidayInputs:
    """The calendar a spec names, and the zone whose days it is read in."""

    code: str
    timezone: str | None = None

    @classmethod
    def of(cls, spec: ForecastSpec) -> HolidayInputs | None:
        return None if spec.holidays is None else cls(spec.holidays, spec.timezone)

    def flags(self, seconds: np.ndarray) -> np.ndarray:
        return holiday_flags(seconds, self.code, self.timezone)


def calendar(seconds: np.ndarray, step: TimeStep) -> list[np.ndarray]:
    """Day and week phase as sine/cosine (Monday 00:00 UTC = 0; 1970-01-01 was a Thursday).

    For calendar steps (monthly data), where every row falls at the same time of day, the
    month of the year instead: its first two harmonics (the four columns keep their count).
    """
    if step.calendar:
        month = seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
        year = 2.0 * np.pi * np.mod(month, 12) / 12.0
        return [np.sin(year), np.cos(year), np.sin(2.0 * year), np.cos(2.0 * year)]
    day = 2.0 * np.pi * np.mod(seconds, DAY_SECONDS) / DAY_SECONDS
    week = 2.0 * np.pi * np.mod(seconds + MONDAY_OFFSET, WEEK_SECONDS) / WEEK_SECONDS
    return [np.sin(day), np.cos(day), np.sin(week), np.cos(week)]


def n_features(
    periods: tuple[int, ...],
    n_covariates: int,
    with_calendar: bool,
    with_holidays: bool = False,
    recent: tuple[int, ...] = TARGET_LAGS,
) -> int:
    n_calendar = 4 if with_calendar else 0
    n_holidays = 1 + len(periods) if with_holidays else 0
    seasonal = len(periods) * len(SEASON_OFFSETS)
    return len(recent) + seasonal + n_covariates + n_calendar + n_holidays + 1


def design(
    series: ScaledSeries,
    origins: np.ndarray,
    step: int,
    periods: tuple[int, ...],
    with_calendar: bool = False,
    holidays: HolidayInputs | None = None,
    recent: tuple[int, ...] = TARGET_LAGS,
) -> np.ndarray:
    """Design matrix (len(origins), n_features) for horizon step ``step`` (0-based); ``recent``:
    the target lags before the origin (1, the level, first)."""
    y = series.target
    last = y[origins - 1]
    columns: list[np.ndarray] = [last]
    columns.extend(y[origins - lag] - last for lag in recent[1:])
    latest = origins - 1
    for period in periods:
        shift = clock_shift(series, origins, step, period)
        for offset in SEASON_OFFSETS:
            idx = np.clip(origins + step - period + offset + shift, 0, latest)
            columns.append(y[idx] - last)
    columns.extend(series.covariates[origins - 1].T)
    grid = series.step
    target_time = _shift_seconds(series.seconds[origins - 1], step + 1, grid)
    if with_calendar:
        columns.extend(calendar(target_time, grid))
    if holidays is not None:
        columns.append(holidays.flags(target_time))
        columns.extend(holidays.flags(_shift_seconds(target_time, -p, grid)) for p in periods)
    columns.append(np.full(len(origins), float(step)))
    return np.column_stack(columns)


def clock_shift(series: ScaledSeries, origins: np.ndarray, step: int, period: int) -> np.ndarray:
    """Rows to add to ``t - period`` (``t`` the target row of step ``step``) so that it is the
    same local clock time in ``series.clock_zone``: after the autumn change, yesterday's 10:00
    was an hour earlier in UTC than today's 10:00 less a day. Zeros without a zone."""
    if series.clock_zone is None or series.step.calendar:
        return np.zeros(len(origins), dtype=np.int64)
    step_s = series.step.seconds
    target = series.seconds[origins - 1] + (step + 1) * step_s
    back = target - period * step_s
    change = utc_offsets(target, series.clock_zone) - utc_offsets(back, series.clock_zone)
    shift: np.ndarray = np.rint(change / step_s).astype(np.int64)
    return shift


def _shift_seconds(seconds: np.ndarray, k: int, step: TimeStep) -> np.ndarray:
    """Epoch seconds ``k`` grid steps later (calendar months included)."""
    shifted: np.ndarray = step.shift_us(seconds.astype(np.int64) * _US, k) // _US
    return shifted.astype(np.float64)


def labels(series: ScaledSeries, origins: np.ndarray, step: int) -> np.ndarray:
    """The change from the last observed value to the target at step ``step``; NaN where
    that pair is not learned from (a filled-in value, see the module docstring)."""
    result: np.ndarray = series.target[origins + step] - series.target[origins - 1]
    if series.unobserved is not None and series.unobserved.any():
        result = np.where(judged_at_step(series.unobserved, origins, step), result, np.nan)
    return result


def judged_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The design rows whose label is known (see :func:`labels`)."""
    keep = np.isfinite(y)
    if keep.all():
        return x, y
    return x[keep], y[keep]
