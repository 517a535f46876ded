"""The feature pipeline shared by preprocessing and live inference.

Training, batch scoring and the HTTP API all call :func:`build_features`, so a model always sees
columns built the same way and in the same order:

1. the raw columns, target first (original units);
2. ``day_sin, day_cos, week_sin, week_cos`` when time features are on (cyclic encodings of the
   time of day and of the week, Monday 00:00 UTC = 0);
3. ``<target>_lag<k>`` for each lag: the target ``k`` steps earlier, looked up *by timestamp*,
   so a gap never shifts a lag onto the wrong row.

Rows whose lags cannot be computed (not enough history, even with the optional ``context`` of
past rows) are dropped; the count is logged and visible as ``len(raw) - len(result)``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from flts.errors import DataValidationError
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec

logger = logging.getLogger(__name__)

TIME_FEATURES: tuple[str, ...] = ("day_sin", "day_cos", "week_sin", "week_cos")
_DAY_SECONDS = 86_400
_WEEK_SECONDS = 7 * _DAY_SECONDS


def lag_column(target: str, lag: int) -> str:
    return f"{target}_lag{lag}"


def feature_order_for(
    *, target: str, raw_columns: tuple[str, ...], time_features: bool, lags: tuple[int, ...]
) -> tuple[str, ...]:
    """The model's input columns, in the one order every component uses."""
    raw = (target, *(c for c in raw_columns if c != target))
    cyclic = TIME_FEATURES if time_features else ()
    return (*raw, *cyclic, *(lag_column(target, k) for k in lags))


def time_feature_frame(ds: pd.Series) -> pd.DataFrame:
    """Cyclic encodings of time of day and day of week (continuous across midnight/Monday)."""
    stamps = pd.DatetimeIndex(ds)
    of_day = (stamps.hour * 3600 + stamps.minute * 60 + stamps.second).to_numpy(dtype="float64")
    of_week = stamps.dayofweek.to_numpy(dtype="float64") * _DAY_SECONDS + of_day
    day = 2.0 * np.pi * of_day / _DAY_SECONDS
    week = 2.0 * np.pi * of_week / _WEEK_SECONDS
    return pd.DataFrame(
        {
            "day_sin": np.sin(day),
            "day_cos": np.cos(day),
            "week_sin": np.sin(week),
            "week_cos": np.cos(week),
        },
        index=ds.index,
    )


def _lagged_target(
    frame: pd.DataFrame, history: pd.DataFrame, target: str, lag: int, step_seconds: int
) -> pd.Series:
    """Target value at ``ds - lag * step`` for each row, NaN where history does not reach."""
    lookup = history.set_index(TIME_COLUMN)[target]
    wanted = frame[TIME_COLUMN] - pd.Timedelta(seconds=lag * step_seconds)
    values = lookup.reindex(pd.DatetimeIndex(wanted)).to_numpy()
    return pd.Series(values, index=frame.index, dtype="float64")


def build_features(
    raw: pd.DataFrame,
    *,
    target: str,
    raw_columns: tuple[str, ...],
    time_features: bool,
    lags: tuple[int, ...],
    step_seconds: int,
    context: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``ds`` + features in :func:`feature_order_for` order, from a regular raw frame.

    ``context`` holds rows strictly *before* ``raw`` (e.g. the tail of the training data) and is
    only read to compute lags; it never becomes an output row.
    """
    order = feature_order_for(
        target=target, raw_columns=raw_columns, time_features=time_features, lags=lags
    )
    raw_part = [target, *(c for c in raw_columns if c != target)]
    clashes = sorted({c for c in order if order.count(c) > 1} | {TIME_COLUMN} & set(order))
    if clashes:
        raise DataValidationError(f"feature names {clashes} clash; rename those raw columns")
    missing = [c for c in (TIME_COLUMN, *raw_part) if c not in raw.columns]
    if missing:
        raise DataValidationError(f"raw data is missing columns {missing}; it has {list(raw)}")
    frame = raw[[TIME_COLUMN, *raw_part]].reset_index(drop=True)
    frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN]).astype("datetime64[ns]")
    for column in raw_part:
        frame[column] = frame[column].astype("float64")
    if time_features:
        frame = pd.concat([frame, time_feature_frame(frame[TIME_COLUMN])], axis=1)
    if lags:
        history = frame[[TIME_COLUMN, target]]
        if context is not None and len(context) and len(frame):
            past = context[[TIME_COLUMN, target]].copy()
            past[TIME_COLUMN] = pd.to_datetime(past[TIME_COLUMN]).astype("datetime64[ns]")
            past = past[past[TIME_COLUMN] < frame[TIME_COLUMN].iloc[0]]
            history = pd.concat([past, history], ignore_index=True)
        for k in lags:
            frame[lag_column(target, k)] = _lagged_target(frame, history, target, k, step_seconds)
        complete = frame[[lag_column(target, k) for k in lags]].notna().all(axis=1)
        dropped = int((~complete).sum())
        if dropped:
            logger.info("dropped %d rows whose lags reach before the available history", dropped)
        frame = frame[complete].reset_index(drop=True)
    return frame[[TIME_COLUMN, *order]]


def features_for_spec(
    raw: pd.DataFrame, spec: ForecastSpec, context: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Live inference: the features a model trained under ``spec`` expects, from raw rows.

    ``raw`` has ``ds`` plus the spec's raw columns in original units. The result's columns are
    checked against ``spec.feature_order`` so a drift in the pipeline fails loudly.
    """
    frame = build_features(
        raw,
        target=spec.target,
        raw_columns=spec.raw_columns or (spec.target,),
        time_features=spec.time_features,
        lags=spec.lags,
        step_seconds=spec.step_seconds,
        context=context,
    )
    if tuple(frame.columns[1:]) != tuple(spec.feature_order):
        raise DataValidationError(
            f"features built {list(frame.columns[1:])} differ from the model's "
            f"{list(spec.feature_order)}"
        )
    return frame
