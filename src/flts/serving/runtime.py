"""Per-model preparation for the HTTP hot path: the window, the batched forward, the answer.

For a GRU/LSTM champion a request becomes one scaled float32 window, built by the same
:func:`flts.forecasting.features.window_features` the batch path uses (so both paths build
bit-identical windows), and the windows of concurrent requests share one
``predict_scaled_batch`` call. Any other champion (Prophet, baselines) goes through
``features_for_spec`` + ``Forecaster.predict`` unbatched.

A runtime is built, warmed up and checked in the thread that swaps the model in (the Kafka
consumer's), never on the event loop: the check runs one synthetic window through the batched
forward and through ``Forecaster.predict`` and falls back to the latter if they disagree (a
model whose batched forward is wrong can be slow, never wrong). A model whose reference path
fails too is refused (:class:`flts.errors.ModelError`), and the previous one keeps answering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd

from flts.errors import ModelError
from flts.forecasting.features import (
    features_for_spec,
    raw_part,
    time_features_array,
    window_features,
)
from flts.forecasting.intervals import ConformalIntervals
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec
from flts.serving.model_state import LoadedModel
from flts.serving.validation import PredictInput, RequestError

logger = logging.getLogger(__name__)

Mode = Literal["batched-numpy", "reference"]
_US = 1_000_000
_PARITY_RTOL = 1e-5
_TIME_CACHE_SIZE = 4096


class ModelRuntime:
    """Everything the API needs to answer with one loaded model (immutable once built, but for
    a bounded cache of time-feature blocks: dict reads and writes are atomic in CPython)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        forecaster = loaded.forecaster
        spec = forecaster.spec
        self.spec = spec
        self.raw_columns = raw_columns_of(spec)
        self.min_rows = forecaster.min_history + max(spec.lags, default=0)
        point = forecaster.point_calibration
        self.point_calibration = None if point is None else point.model_dump(mode="json")
        self.step_us = spec.step_seconds * _US
        #: The grid step, built once (requests check rows and stamp answers with it).
        self.step = spec.step
        self.mean = np.asarray(spec.scaler.mean, dtype=np.float64)
        self.scale = np.asarray(spec.scaler.scale, dtype=np.float64)
        batch_fn = getattr(forecaster, "predict_scaled_batch", None)
        self.runner: Callable[[np.ndarray], np.ndarray] | None = batch_fn
        self.mode: Mode = "reference" if batch_fn is None else "batched-numpy"
        self._time_blocks: dict[int, np.ndarray] = {}
        #: (level, lower offsets, upper offsets) per calibrated level, as float64 arrays of the
        #: horizon's length: a band costs the hot path two vector adds. Empty without intervals.
        self.band_offsets = band_offsets(forecaster.intervals, spec.horizon)
        #: Lowest value a band may take (0 for a load that never went negative), or None.
        self.band_floor = None if forecaster.intervals is None else forecaster.intervals.floor
        #: The served bands' calibration (for locally scaled ones), or None without bands.
        self.band_intervals = forecaster.intervals if self.band_offsets else None
        #: The same offsets as one (2 x levels, horizon) matrix with a name per row
        #: (lower_80, upper_80, ...): a response adds its forecast to all bands in one step.
        self.band_names = tuple(
            f"{side}_{level}" for level, _, _ in self.band_offsets for side in ("lower", "upper")
        )
        self.band_matrix = (
            np.stack([o for _, lower, upper in self.band_offsets for o in (lower, upper)])
            if self.band_offsets
            else np.empty((0, spec.horizon))
        )
        #: The same for forecasts that are exactly 0, when the bands have their own offsets for
        #: them (``ConformalIntervals.zero_lower_offsets``); None otherwise.
        self.zero_band_matrix = zero_band_matrix(self.band_intervals, spec.horizon)
        #: Pre-serialised response parts by shape (legacy or not).
        self.response_heads = {legacy: _heads(loaded, spec, legacy) for legacy in (False, True)}
        self.mode = self._self_check()
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
        diffs = times[1:] - times[:-1]  # np.diff's Python wrapper costs more than the work
        step = self.step
        if step.calendar:
            wrong = np.flatnonzero(step.shift_us(times[:-1], 1) != times[1:])
        elif (diffs == self.step_us).all():
            return
        else:
            wrong = np.flatnonzero(diffs != self.step_us)
        if not len(wrong):
            return
        i = int(wrong[0]) + 1
        gap = diffs[i - 1] / _US
        what = "not after" if gap <= 0 else f"{gap:g} s after"
        raise RequestError(
            inp.time_loc(i),
            f"row {i}: timestamp is {what} row {i - 1}; rows must be sorted and exactly "
            f"{step.describe()} apart",
        )

    def window(self, inp: PredictInput) -> np.ndarray:
        """The scaled float32 (lookback, features) window ending at the last row.

        The same features and the same scaling arithmetic as ``RecurrentForecaster.predict``
        on a frame from ``features_for_spec``: bit-identical windows.
        """
        block = None
        if self.spec.time_features:
            # On a grid check_rows validated, the time features of the window depend only on
            # its last timestamp; concurrent clients asking about "now" share one block.
            key = int(inp.times_us[-1])
            block = self._time_blocks.get(key)
            if block is None:
                block = time_features_array(inp.times_us[-self.spec.lookback :])
                if len(self._time_blocks) >= _TIME_CACHE_SIZE:
                    self._time_blocks.clear()
                self._time_blocks[key] = block
        matrix = window_features(inp.times_us, inp.values, self.spec, block)
        scaled: np.ndarray = ((matrix - self.mean) / self.scale).astype(np.float32)
        return scaled

    def predict_reference(self, inp: PredictInput) -> np.ndarray:
        """The unbatched path: the forecaster's own ``predict`` from the end of the window."""
        frame = features_for_spec(raw_frame(inp, self.raw_columns), self.spec)
        out = self.loaded.forecaster.predict(frame, np.array([len(frame)], dtype=np.int64))
        row: np.ndarray = np.asarray(out, dtype=np.float64)[0]
        return row

    def _self_check(self) -> Mode:
        """Warm up and compare the batched forward with ``Forecaster.predict`` (off the loop)."""
        inp = self.synthetic_input(self.min_rows + 3)
        try:
            reference = self.predict_reference(inp)
        except Exception as exc:
            raise ModelError(
                f"{self.loaded.model_type} run_id={self.loaded.run_id} cannot forecast a "
                f"synthetic window: {type(exc).__name__}: {exc}"
            ) from exc
        if self.runner is None:
            return "reference"
        try:
            batched = self.runner(np.stack([self.window(inp)] * 2))[0]
        except Exception:
            logger.exception("batched forward failed its check; answering through predict")
            return "reference"
        if not np.allclose(batched, reference, rtol=_PARITY_RTOL, atol=0.0):
            logger.warning("batched forecasts differ from Forecaster.predict; using predict")
            return "reference"
        return self.mode

    def synthetic_input(self, n: int) -> PredictInput:
        """``n`` plausible rows (scaler mean +- scale) on the model's grid, for checks."""
        spec = self.spec
        rng = np.random.default_rng(0)
        start = (1_517_874_000 // spec.step_seconds) * spec.step_seconds  # 2018-02-05, Monday
        if spec.step.calendar:  # on the month grid: 2018-01-01, or its last day
            start = 1_514_764_800 - (86_400 if spec.month_end else 0)
        times = spec.step.shift_us(start * _US, np.arange(n, dtype=np.int64))
        idx = [spec.scaler.columns.index(c) for c in self.raw_columns]
        values = self.mean[idx] + self.scale[idx] * rng.standard_normal((n, len(idx)))
        return PredictInput(times, values, False, None, ("observations",), TIME_COLUMN)


def band_factor(runtime: ModelRuntime, inp: PredictInput, values: np.ndarray) -> np.ndarray | float:
    """What a request's band offsets are multiplied by around its forecast ``values``: 1 for
    unscaled bands; for locally scaled ones the scale ``ConformalIntervals.bands`` uses, from
    the request's last rows (the target is the first raw column)."""
    intervals = runtime.band_intervals
    if intervals is None:
        return 1.0
    return intervals.factors(values, intervals.scales_after(inp.values[:, 0]))


def band_offsets(
    intervals: ConformalIntervals | None, horizon: int
) -> tuple[tuple[int, np.ndarray, np.ndarray], ...]:
    """The saved bands as numpy offsets; () for a model without them (or calibrated for another
    horizon, which a consistent artifact never is: then bands are left out, with a warning)."""
    if intervals is None:
        return ()
    if intervals.horizon != horizon:
        logger.warning(
            "intervals were calibrated for %d steps but the model forecasts %d; serving no bands",
            intervals.horizon,
            horizon,
        )
        return ()
    return tuple(
        (
            level,
            np.asarray(intervals.lower_offsets[i], dtype=np.float64),
            np.asarray(intervals.upper_offsets[i], dtype=np.float64),
        )
        for i, level in enumerate(intervals.levels)
    )


def zero_band_matrix(intervals: ConformalIntervals | None, horizon: int) -> np.ndarray | None:
    """(2 x levels, horizon) offsets for zero forecasts in ``band_matrix``'s row order, or None."""
    if intervals is None or intervals.horizon != horizon:
        return None
    lower, upper = intervals.zero_lower_offsets, intervals.zero_upper_offsets
    if lower is None or upper is None:
        return None
    rows = [row for i in range(len(intervals.levels)) for row in (lower[i], upper[i])]
    return np.asarray(rows, dtype=np.float64)


def raw_columns_of(spec: ForecastSpec) -> tuple[str, ...]:
    """The raw columns a request must carry, target first (the feature builder's order)."""
    return raw_part(spec.target, spec.raw_columns or (spec.target,))


def raw_frame(inp: PredictInput, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(inp.values, columns=list(columns))
    frame.insert(0, TIME_COLUMN, inp.times_us.astype("datetime64[us]").astype("datetime64[ns]"))
    return frame


def _heads(loaded: LoadedModel, spec: ForecastSpec, legacy: bool) -> tuple[bytes, bytes]:
    """Everything around the list of points, serialised once per model and shape.

    The whole document is dumped with an empty list and cut at that list, so the bytes are
    exactly what dumping the full document would give.
    """
    doc: dict[str, Any]
    if legacy:
        doc = {
            "status": "SUCCESS",
            "identifier": loaded.identifier,
            "run_id": loaded.run_id,
            "predictions": [],
        }
        marker = b'"predictions":[]'
    else:
        doc = {
            "model": {
                "model_type": loaded.model_type,
                "run_id": loaded.run_id,
                "model_uri": loaded.model_uri,
                "config_hash": loaded.config_hash,
            },
            "target": spec.target,
            "unit": "original",
            "forecast": [],
        }
        marker = b'"forecast":[]'
    full = orjson.dumps(doc)
    cut = full.rindex(marker) + len(marker) - 2
    return full[:cut], full[cut + 2 :]
