"""The one feature builder: training, batch scoring and the HTTP API all come through here.

A model always sees columns built the same way and in the same order:

1. the raw columns, target first (original units);
2. ``day_sin, day_cos, week_sin, week_cos`` when time features are on (cyclic encodings of the
   time of day and of the week, Monday 00:00 UTC = 0);
3. ``<target>_lag<k>`` for each lag: the target ``k`` steps earlier, looked up *by timestamp*,
   so a gap never shifts a lag onto the wrong row.

The arithmetic lives in :func:`feature_block` (numpy arrays in, a float64 matrix out). The
frame API (:func:`build_features`, :func:`features_for_spec`) used by preprocessing and batch
scoring wraps it, and the HTTP API calls :func:`window_features` on each request's rows; so the
windows a served model sees are bit-identical to the batch path's, with no second copy of the
feature code to keep in step.

Rows whose lags cannot be computed (not enough history, even with the optional ``context`` of
past rows) are dropped; the count is logged and visible as ``len(raw) - len(result)``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from flts.errors import DataValidationError
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec
from flts.forecasting.time_step import TimeStep

logger = logging.getLogger(__name__)

TIME_FEATURES: tuple[str, ...] = ("day_sin", "day_cos", "week_sin", "week_cos")
_DAY_SECONDS = 86_400
_WEEK_SECONDS = 7 * _DAY_SECONDS
_US = 1_000_000
#: 1970-01-01 was a Thursday; Monday is day 0 of the week (as in pandas' ``dayofweek``).
_EPOCH_WEEKDAY = 3
_PERIODS = np.array([float(_DAY_SECONDS), float(_WEEK_SECONDS)])


def lag_column(target: str, lag: int) -> str:
    return f"{target}_lag{lag}"


def feature_order_for(
    *, target: str, raw_columns: tuple[str, ...], time_features: bool, lags: tuple[int, ...]
) -> tuple[str, ...]:
    """The model's input columns, in the one order every component uses."""
    raw = (target, *(c for c in raw_columns if c != target))
    cyclic = TIME_FEATURES if time_features else ()
    return (*raw, *cyclic, *(lag_column(target, k) for k in lags))


def raw_part(target: str, raw_columns: tuple[str, ...]) -> tuple[str, ...]:
    """The raw columns in feature order: the target first."""
    return (target, *(c for c in raw_columns if c != target))


# -- the arithmetic (numpy only) -----------------------------------------------------------------
def time_features_array(times_us: np.ndarray) -> np.ndarray:
    """(n, 4) float64 in :data:`TIME_FEATURES` order from epoch microseconds (UTC, whole seconds
    count; the fraction of a second is ignored).

    Seconds of the day and of the week are exact integers, so computing them in int64 and
    converting once gives the same float64 values as pandas' ``hour*3600 + ...`` did; day and
    week angles share one sin and one cos call (few numpy calls: this runs per HTTP request).
    """
    days, of_day = np.divmod(np.floor_divide(times_us, _US), _DAY_SECONDS)
    seconds = np.empty((len(times_us), 2), dtype=np.float64)
    seconds[:, 0] = of_day
    seconds[:, 1] = np.mod(days + _EPOCH_WEEKDAY, 7) * _DAY_SECONDS + of_day
    angles = 2.0 * np.pi * seconds / _PERIODS
    out = np.empty((len(times_us), 4), dtype=np.float64)
    out[:, 0::2] = np.sin(angles)
    out[:, 1::2] = np.cos(angles)
    return out


def lagged_values(
    times_us: np.ndarray,
    history_us: np.ndarray,
    history_target: np.ndarray,
    lags: tuple[int, ...],
    step: TimeStep,
    clock_zone: str | None = None,
) -> np.ndarray:
    """(n, len(lags)): the target at ``t - k * step`` for each row, NaN where history has no row
    at exactly that time. Duplicate history timestamps are ambiguous and refused. With a
    ``clock_zone`` (``ForecastSpec.clock_zone``), ``t - k * step`` moves by the change of the
    zone's UTC offset between the two times, so a lag is the same local clock time."""
    out = np.full((len(times_us), len(lags)), np.nan, dtype=np.float64)
    if not len(history_us) or not len(times_us):
        return out
    order = np.argsort(history_us, kind="stable")
    known = history_us[order]
    if len(known) > 1 and not (known[1:] != known[:-1]).all():
        dup = known[1:][known[1:] == known[:-1]][0]
        raise DataValidationError(
            f"history has duplicate timestamps (e.g. {np.datetime64(int(dup), 'us')}); "
            "lags cannot be looked up"
        )
    values = history_target[order]
    last = len(known) - 1
    for j, k in enumerate(lags):
        wanted = step.shift_us(times_us, -k)
        if clock_zone is not None and not step.calendar:
            wanted = wanted + _offset_change_us(times_us, wanted, clock_zone, step.seconds)
        pos = np.minimum(np.searchsorted(known, wanted), last)
        hit = known[pos] == wanted
        out[:, j] = np.where(hit, values[pos], np.nan)
    return out


def utc_offsets(seconds: np.ndarray, zone: str) -> np.ndarray:
    """The zone's UTC offset (seconds) at each UTC epoch second."""
    utc = pd.DatetimeIndex(pd.to_datetime(seconds.astype(np.int64), unit="s", utc=True))
    local = utc.tz_convert(zone).tz_localize(None)
    offsets: np.ndarray = (local - utc.tz_localize(None)).total_seconds().to_numpy()
    return offsets


def _offset_change_us(
    times_us: np.ndarray, back_us: np.ndarray, zone: str, step_seconds: int
) -> np.ndarray:
    """The zone's UTC offset at ``times_us`` less the one at ``back_us``, in whole steps
    (microseconds): what keeps a lag at the same local clock time."""
    change = utc_offsets(times_us // _US, zone) - utc_offsets(back_us // _US, zone)
    steps = np.rint(change / step_seconds).astype(np.int64)
    shifted: np.ndarray = steps * step_seconds * _US
    return shifted


def feature_block(
    times_us: np.ndarray,
    raw_values: np.ndarray,
    *,
    time_features: bool,
    lags: tuple[int, ...],
    step: TimeStep,
    history_us: np.ndarray | None = None,
    history_target: np.ndarray | None = None,
    time_block: np.ndarray | None = None,
    clock_zone: str | None = None,
) -> np.ndarray:
    """Feature matrix (n, features) float64 in :func:`feature_order_for` order.

    ``raw_values`` holds the raw columns target first (:func:`raw_part`); lags are looked up in
    ``history_*`` (default: the rows themselves) and are NaN where history does not reach.
    ``time_block``: :func:`time_features_array` of ``times_us`` when the caller already has it
    (the HTTP API caches it per last timestamp of a validated regular grid).
    """
    n, n_raw = raw_values.shape
    width = n_raw + (len(TIME_FEATURES) if time_features else 0) + len(lags)
    out = np.empty((n, width), dtype=np.float64)
    out[:, :n_raw] = raw_values
    col = n_raw
    if time_features:
        block = time_features_array(times_us) if time_block is None else time_block
        out[:, col : col + len(TIME_FEATURES)] = block
        col += len(TIME_FEATURES)
    if lags:
        hist_us = times_us if history_us is None else history_us
        hist_target = raw_values[:, 0] if history_target is None else history_target
        out[:, col:] = lagged_values(times_us, hist_us, hist_target, lags, step, clock_zone)
    return out


def window_features(
    times_us: np.ndarray,
    raw_values: np.ndarray,
    spec: ForecastSpec,
    time_block: np.ndarray | None = None,
) -> np.ndarray:
    """The unscaled (lookback, features) input window ending at the last row (the HTTP path).

    ``raw_values`` has the spec's raw columns target first; every row is history for the lags;
    ``time_block`` as in :func:`feature_block`, for the last ``lookback`` rows.
    """
    lookback = spec.lookback
    return feature_block(
        times_us[-lookback:],
        raw_values[-lookback:],
        time_features=spec.time_features,
        lags=spec.lags,
        step=spec.step,
        history_us=times_us,
        history_target=raw_values[:, 0],
        time_block=time_block,
        clock_zone=spec.clock_zone,
    )


def tail_features(
    times_us: np.ndarray, raw_values: np.ndarray, spec: ForecastSpec, rows: int
) -> pd.DataFrame:
    """``ds`` + the spec's features of the last ``rows`` rows (the live path).

    Every row is history for the lags, as in :func:`window_features`; the result equals
    :func:`features_for_spec` of the same rows minus the ones it would drop for lags, without
    the frame round trip (parsing timestamps, filtering) a forecast per observation cannot
    afford. Raises if a lag reaches before the first row.
    """
    first = len(times_us) - rows  # not [-rows:]: rows may be 0
    matrix = feature_block(
        times_us[first:],
        raw_values[first:],
        time_features=spec.time_features,
        lags=spec.lags,
        step=spec.step,
        history_us=times_us,
        history_target=raw_values[:, 0],
        clock_zone=spec.clock_zone,
    )
    if spec.lags and np.isnan(matrix[:, -len(spec.lags) :]).any():
        raise DataValidationError(f"lags {spec.lags} reach before the {len(times_us)} rows given")
    frame = pd.DataFrame(matrix, columns=list(spec.feature_order))
    stamps = times_us[first:].astype("datetime64[us]").astype("datetime64[ns]")
    frame.insert(0, TIME_COLUMN, stamps)
    return frame


# -- the frame API (preprocessing, batch scoring) ----------------------------------------------
def _epoch_us(stamps: pd.Series) -> np.ndarray:
    index = pd.DatetimeIndex(stamps)
    if index.tz is not None:
        index = index.tz_localize(None)  # wall-clock time, as ``.hour`` would read it
    return np.asarray(index.as_unit("ns").asi8 // 1000, dtype=np.int64)


def time_feature_frame(ds: pd.Series) -> pd.DataFrame:
    """Cyclic encodings of time of day and day of week (continuous across midnight/Monday)."""
    block = time_features_array(_epoch_us(ds))
    block[pd.isna(ds.to_numpy())] = np.nan
    return pd.DataFrame(block, columns=list(TIME_FEATURES), index=ds.index)


def build_features(
    raw: pd.DataFrame,
    *,
    target: str,
    raw_columns: tuple[str, ...],
    time_features: bool,
    lags: tuple[int, ...],
    step: TimeStep,
    context: pd.DataFrame | None = None,
    clock_zone: str | None = None,
) -> pd.DataFrame:
    """``ds`` + features in :func:`feature_order_for` order, from a regular raw frame.

    ``context`` holds rows strictly *before* ``raw`` (e.g. the tail of the training data) and is
    only read to compute lags; it never becomes an output row.
    """
    order = feature_order_for(
        target=target, raw_columns=raw_columns, time_features=time_features, lags=lags
    )
    columns = list(raw_part(target, raw_columns))
    clashes = sorted({c for c in order if order.count(c) > 1} | {TIME_COLUMN} & set(order))
    if clashes:
        raise DataValidationError(f"feature names {clashes} clash; rename those raw columns")
    missing = [c for c in (TIME_COLUMN, *columns) if c not in raw.columns]
    if missing:
        raise DataValidationError(f"raw data is missing columns {missing}; it has {list(raw)}")
    ds = pd.Series(pd.to_datetime(raw[TIME_COLUMN]).astype("datetime64[ns]").to_numpy())
    times_us = _epoch_us(ds)
    values = raw[columns].to_numpy(dtype=np.float64)
    history_us, history_target = times_us, values[:, 0]
    if lags and context is not None and len(context) and len(raw):
        past_ds = pd.to_datetime(context[TIME_COLUMN]).astype("datetime64[ns]")
        keep = (past_ds < ds.iloc[0]).to_numpy()
        past_us = _epoch_us(past_ds)[keep]
        past_target = context[target].to_numpy(dtype=np.float64)[keep]
        history_us = np.concatenate([past_us, times_us])
        history_target = np.concatenate([past_target, history_target])
    matrix = feature_block(
        times_us,
        values,
        time_features=time_features,
        lags=lags,
        step=step,
        history_us=history_us,
        history_target=history_target,
        clock_zone=clock_zone,
    )
    missing_time = ds.isna().to_numpy()
    if missing_time.any():
        matrix[missing_time, len(columns) :] = np.nan  # no time, no time features or lags
    frame = pd.DataFrame(matrix, columns=list(order))
    frame.insert(0, TIME_COLUMN, ds)
    if lags:
        complete = ~np.isnan(matrix[:, -len(lags) :]).any(axis=1)
        dropped = int((~complete).sum())
        if dropped:
            logger.info("dropped %d rows whose lags reach before the available history", dropped)
            frame = frame[complete].reset_index(drop=True)
    return frame


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
        step=spec.step,
        context=context,
        clock_zone=spec.clock_zone,
    )
    if tuple(frame.columns[1:]) != tuple(spec.feature_order):
        raise DataValidationError(
            f"features built {list(frame.columns[1:])} differ from the model's "
            f"{list(spec.feature_order)}"
        )
    return frame
