"""Per-model preparation for the HTTP hot path: numpy features, scaling, batched forward.

For a GRU/LSTM champion a request becomes one scaled float32 window built with numpy only (raw
columns, the cyclic time features and target lags of ``flts.forecasting.features``), and the
windows of concurrent requests share one ``predict_scaled_batch`` call. Any other champion
(Prophet, baselines) goes through ``features_for_spec`` + ``Forecaster.predict`` unbatched.

Honesty check: when a runtime is built, the numpy features and the batched forward are compared
with the reference path (``features_for_spec`` then ``Forecaster.predict``) on a synthetic
window. If features differ the runtime builds features with pandas (still batched); if forecasts
differ it falls back to the reference path entirely. Either way a warning is logged, so a change
in the feature pipeline can slow the API down but never change its numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from flts.api.model_state import LoadedModel
from flts.api.predict_schema import PredictInput, RequestError
from flts.forecasting.features import features_for_spec, lag_column
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec

logger = logging.getLogger(__name__)

Mode = Literal["batched-numpy", "batched-pandas", "reference"]
_US = 1_000_000
_DAY = 86_400
_WEEK = 7 * _DAY
#: 1970-01-01 was a Thursday; pandas counts Monday as day 0.
_EPOCH_WEEKDAY = 3
_PARITY_RTOL = 1e-5

_TWO_PI = 2.0 * np.pi
_PERIODS = np.array([float(_DAY), float(_WEEK)])


class ModelRuntime:
    """Everything the API needs to answer with one loaded model."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        forecaster = loaded.forecaster
        spec = forecaster.spec
        self.spec = spec
        self.raw_columns = _raw_columns(spec)
        self.max_lag = max(spec.lags, default=0)
        self.min_rows = forecaster.min_history + self.max_lag
        self.mean = np.asarray(spec.scaler.mean, dtype=np.float64)
        self.scale = np.asarray(spec.scaler.scale, dtype=np.float64)
        batch_fn = getattr(forecaster, "predict_scaled_batch", None)
        self.runner: Callable[[np.ndarray], np.ndarray] | None = batch_fn
        #: Pre-serialised response parts by shape (legacy or not), filled by the service.
        self.response_heads: dict[bool, tuple[bytes, bytes]] = {}
        self._plan = FeaturePlan.for_spec(spec, self.raw_columns)
        self.mode: Mode = "reference" if batch_fn is None else "batched-numpy"
        if self._plan is None and batch_fn is not None:
            self.mode = "batched-pandas"
        if self.mode != "reference":
            self.mode = _self_check(self)
        logger.info(
            "inference runtime for %s run_id=%s: mode=%s, needs %d rows of %s",
            loaded.model_type,
            loaded.run_id,
            self.mode,
            self.min_rows,
            list(self.raw_columns),
        )

    @property
    def batched(self) -> bool:
        return self.mode != "reference"

    def check_rows(self, inp: PredictInput) -> None:
        """Enough rows, strictly increasing timestamps on the model's grid."""
        n = len(inp.times_us)
        if n < self.min_rows:
            raise RequestError(
                ("body", *inp.base_loc),
                f"got {n} rows; this model needs at least {self.min_rows} "
                f"(lookback {self.loaded.forecaster.min_history}, lags {list(self.spec.lags)})",
                "too_short",
            )
        times = inp.times_us
        diffs = times[1:] - times[:-1]
        step = self.spec.step_seconds * _US
        if (diffs == step).all():
            return
        bad = np.flatnonzero(diffs != step)
        if bad.size:
            i = int(bad[0]) + 1
            gap = diffs[i - 1] / _US
            what = "not after" if gap <= 0 else f"{gap:g} s after"
            raise RequestError(
                _time_loc(inp, i),
                f"row {i}: timestamp is {what} row {i - 1}; rows must be sorted and exactly "
                f"{self.spec.step_seconds} s apart",
            )

    def window(self, inp: PredictInput) -> np.ndarray:
        """The scaled float32 (lookback, features) window of the last rows."""
        if self.mode == "batched-numpy":
            assert self._plan is not None
            return self._plan.scaled(inp.times_us, inp.values)
        frame = features_for_spec(_raw_frame(inp, self.raw_columns), self.spec)
        matrix = frame.loc[:, list(self.spec.feature_order)].to_numpy(dtype=np.float64)
        return ((matrix[-self.spec.lookback :] - self.mean) / self.scale).astype(np.float32)

    def predict_reference(self, inp: PredictInput) -> np.ndarray:
        """The unbatched path: the forecaster's own ``predict`` from the end of the window."""
        frame = features_for_spec(_raw_frame(inp, self.raw_columns), self.spec)
        out = self.loaded.forecaster.predict(frame, np.array([len(frame)], dtype=np.int64))
        row: np.ndarray = np.asarray(out, dtype=np.float64)[0]
        return row


def _raw_columns(spec: ForecastSpec) -> tuple[str, ...]:
    raw = spec.raw_columns or (spec.target,)
    return (spec.target, *(c for c in raw if c != spec.target))


def _time_loc(inp: PredictInput, i: int) -> tuple[str | int, ...]:
    if inp.legacy:
        return ("body", *inp.base_loc, inp.time_key, i)
    return ("body", *inp.base_loc, i, inp.time_key)


def _raw_frame(inp: PredictInput, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(inp.values, columns=list(columns))
    frame.insert(0, TIME_COLUMN, inp.times_us.astype("datetime64[us]").astype("datetime64[ns]"))
    return frame


# -- numpy features --------------------------------------------------------------------------
_TIME_BLOCK = ("day_sin", "week_sin", "day_cos", "week_cos")
_TIME_CACHE_SIZE = 4096


class FeaturePlan:
    """Writes the scaled float32 (lookback, features) window with a few vectorised numpy calls.

    Raw columns and target lags are sliced from the request's values and scaled column-wise;
    the time features repeat the arithmetic of ``flts.forecasting.features.time_feature_frame``
    operation by operation. On a validated regular grid the time block depends only on the last
    timestamp, so it is cached: concurrent clients asking about "now" share it.
    """

    def __init__(self, spec: ForecastSpec, raw_columns: tuple[str, ...]) -> None:
        order = spec.feature_order
        lag_names = {lag_column(spec.target, k): k for k in spec.lags}
        target_idx = raw_columns.index(spec.target)
        self.lookback = spec.lookback
        self.raw_pos = np.array([order.index(c) for c in raw_columns if c in order], np.intp)
        self.raw_src = np.array([raw_columns.index(order[p]) for p in self.raw_pos], np.intp)
        #: The usual layout (raw columns first, in request order) takes slices, not gathers.
        self.raw_direct = (
            self.raw_pos.tolist() == list(range(len(raw_columns))) == list(self.raw_src)
        )
        n_raw = len(self.raw_pos)
        self.lags = [(order.index(name), k, target_idx) for name, k in lag_names.items()]
        self.time_pos = np.array([order.index(n) for n in _TIME_BLOCK if n in order], np.intp)
        self.time_src = np.array([_TIME_BLOCK.index(order[p]) for p in self.time_pos], np.intp)
        first = int(self.time_pos[0]) if self.time_pos.size else 0
        contiguous = self.time_pos.tolist() == list(range(first, first + self.time_pos.size))
        self.time_cols: slice | np.ndarray = (
            slice(first, first + self.time_pos.size) if contiguous else self.time_pos
        )
        self.mean = np.asarray(spec.scaler.mean, dtype=np.float64)
        self.scale = np.asarray(spec.scaler.scale, dtype=np.float64)
        self.raw_mean = self.mean[self.raw_pos]
        self.raw_scale = self.scale[self.raw_pos]
        self.n_raw = n_raw
        self.n_features = len(order)
        self._time_cache: dict[int, np.ndarray] = {}

    @classmethod
    def for_spec(cls, spec: ForecastSpec, raw_columns: tuple[str, ...]) -> FeaturePlan | None:
        """The plan, or None when a feature is unknown here (then pandas builds features)."""
        known = {*raw_columns, *_TIME_BLOCK, *(lag_column(spec.target, k) for k in spec.lags)}
        if any(name not in known for name in spec.feature_order):
            return None
        return cls(spec, raw_columns)

    def scaled(self, times_us: np.ndarray, values: np.ndarray) -> np.ndarray:
        lookback, total = self.lookback, len(values)
        out = np.empty((lookback, self.n_features), dtype=np.float32)
        if self.raw_direct:
            out[:, : self.n_raw] = (values[total - lookback :] - self.raw_mean) / self.raw_scale
        else:
            raw = values[total - lookback :, self.raw_src]
            out[:, self.raw_pos] = (raw - self.raw_mean) / self.raw_scale
        for pos, k, src in self.lags:
            lagged = values[total - lookback - k : total - k, src]
            out[:, pos] = (lagged - self.mean[pos]) / self.scale[pos]
        if self.time_pos.size:
            out[:, self.time_cols] = self._time_block(times_us[-lookback:])
        return out

    def _time_block(self, times_us: np.ndarray) -> np.ndarray:
        key = int(times_us[-1])
        block = self._time_cache.get(key)
        if block is None:
            seconds = times_us // _US
            of_day = seconds % _DAY
            of_week = ((seconds // _DAY + _EPOCH_WEEKDAY) % 7) * _DAY + of_day
            angles = _TWO_PI * np.stack([of_day, of_week], axis=1).astype(np.float64) / _PERIODS
            full = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)[:, self.time_src]
            pos = self.time_pos
            block = ((full - self.mean[pos]) / self.scale[pos]).astype(np.float32)
            if len(self._time_cache) >= _TIME_CACHE_SIZE:
                self._time_cache.clear()
            self._time_cache[key] = block
        return block


# -- load-time parity check -------------------------------------------------------------------
def _self_check(rt: ModelRuntime) -> Mode:
    """Compare the fast path with the reference path on a synthetic window."""
    spec = rt.spec
    rng = np.random.default_rng(0)
    n = rt.min_rows + 3
    start = (1_517_874_000 // spec.step_seconds) * spec.step_seconds  # 2018-02-05, a Monday
    times = (start + spec.step_seconds * np.arange(n, dtype=np.int64)) * _US
    idx = [spec.scaler.columns.index(c) for c in rt.raw_columns]
    values = rt.mean[idx] + rt.scale[idx] * rng.standard_normal((n, len(idx)))
    inp = PredictInput(times, values, False, None, ("observations",), TIME_COLUMN)
    mode = rt.mode
    try:
        reference = rt.predict_reference(inp)
        if mode == "batched-numpy":
            frame = features_for_spec(_raw_frame(inp, rt.raw_columns), spec)
            slow = frame.loc[:, list(spec.feature_order)].to_numpy(dtype=np.float64)
            slow = ((slow[-spec.lookback :] - rt.mean) / rt.scale).astype(np.float32)
            assert rt._plan is not None
            fast = rt._plan.scaled(times, values)
            if not np.allclose(fast, slow, rtol=1e-6, atol=1e-6):
                logger.warning("numpy features differ from features_for_spec; using pandas")
                mode = rt.mode = "batched-pandas"
        assert rt.runner is not None
        batched = rt.runner(np.stack([rt.window(inp)] * 2))[0]
    except Exception:
        logger.exception("fast-path self-check failed; answering through Forecaster.predict")
        return "reference"
    if not np.allclose(batched, reference, rtol=_PARITY_RTOL, atol=0.0):
        logger.warning("batched forecasts differ from Forecaster.predict; using the reference path")
        return "reference"
    return mode
