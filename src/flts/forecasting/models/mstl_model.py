"""MSTL: multiple seasonal components plus a damped-trend exponential smoothing of the rest.

The statistical family, fitted by statsmodels (the same model statsforecast calls MSTL):

1. ``statsmodels.tsa.seasonal.MSTL`` splits the scaled training target into one seasonal
   component per detected period (daily, weekly when the data holds two weeks), a trend and a
   remainder. Each period's component, averaged over the cycles fitted and smoothed within the
   cycle (a circular moving average over ``period // 48`` steps, half an hour of a day), becomes
   a fixed profile indexed by the phase of the timestamp (the step count from the first
   training timestamp, modulo the period). Without the smoothing the profile carries the noise
   of single points: on the bundled data its step-to-step wiggles made the one-step forecast
   1.15x persistence MAE; averaged and smoothed it is 0.94x.
2. ``statsmodels`` ``ExponentialSmoothing`` (additive damped trend) is fitted on the training
   target minus those profiles.

Forecasting from many origins uses the *fitted* smoothing parameters: one pass of the smoothing
recursion over the history computes the level and trend at every row, so a forecast from origin
``i`` is ``level[i-1] + (phi + ... + phi^h) * trend[i-1] + profiles at the target times``.
No refit per origin, and nothing at or after the origin is read (the recursion is causal).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from flts.domain.config import ModelType, TrainConfig
from flts.errors import DataValidationError, ModelError
from flts.forecasting.base import EpochProgress, FitSummary, Forecaster, ProgressCallback
from flts.forecasting.models._common import check_origins, check_training_rows, require_fitted
from flts.forecasting.models.lag_features import spec_periods
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec

logger = logging.getLogger(__name__)

STATE_FILE = "mstl.json"
#: Fewest rows fitted on when no seasonal period fits (a damped trend alone).
MIN_TRAIN_ROWS = 24
#: MSTL needs two full cycles of a period to estimate it.
CYCLES_NEEDED = 2
#: The decomposition sees at most this many cycles of the shortest period (and two of the
#: longest): older cycles change the profile little and cost seconds on two cores.
CYCLES_FITTED = 4
#: Longest period decomposed: STL's cost grows with the period (weekly at a 2-minute step,
#: 5,040 steps, took 116 s on two cores vs 4 s for daily), so such a period is left out.
MAX_PERIOD_STEPS = 1500
#: Fewest recent rows the smoothing is fitted on when the periods ask for fewer.
MIN_FIT_ROWS = 2000
#: The same for calendar steps (monthly, quarterly data): ten years of months. Decades of
#: history cost nothing here, but an old seasonal shape does: fitted on all 38 years of monthly
#: US generation MSTL scored 1.44x seasonal naive one month ahead, on the last ten 0.92x (and
#: quarterly Australian production 0.90x -> 0.87x four quarters ahead; `flts bench shapes`).
MIN_FIT_ROWS_CALENDAR = 120
#: Profile smoothing window, as a fraction of the period (1/48: 30 minutes of a day).
SMOOTHING_FRACTION = 48


def _smooth_cyclic(profile: np.ndarray) -> np.ndarray:
    """Circular moving average over an odd window of about ``len / SMOOTHING_FRACTION``."""
    width = len(profile) // SMOOTHING_FRACTION
    width += 1 - width % 2
    if width <= 1:
        return profile
    pad = width // 2
    extended = np.concatenate([profile[-pad:], profile, profile[:pad]])
    smoothed: np.ndarray = np.convolve(extended, np.ones(width) / width, mode="valid")
    return smoothed


def _stamps(frame: pd.DataFrame) -> np.ndarray:
    """``ds`` as naive UTC datetime64[ns]."""
    if TIME_COLUMN not in frame.columns:
        raise DataValidationError(f"input has no {TIME_COLUMN!r} timestamp column")
    ds = pd.to_datetime(frame[TIME_COLUMN])
    if ds.dt.tz is not None:
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    return ds.to_numpy(dtype="datetime64[ns]")


class MSTLForecaster(Forecaster):
    model_type = ModelType.MSTL
    calibrate_out_of_sample = True

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        super().__init__(spec, train_config)
        self._anchor: np.datetime64 | None = None
        self._profiles: dict[int, np.ndarray] = {}
        self._alpha = self._beta = self._phi = 0.0

    @property
    def min_history(self) -> int:
        return 1

    # -- fitting -------------------------------------------------------------------------
    def fit(
        self,
        train: pd.DataFrame,
        progress: ProgressCallback | None = None,
        unobserved: np.ndarray | None = None,
    ) -> FitSummary:
        # Decomposition needs an unbroken series, so ``unobserved`` (filled-in) values are
        # fitted like the others; its errors are not scored on them.
        started = time.perf_counter()
        self.spec.check_frame_columns(list(train.columns))
        y = self._scaled_target(train)
        if not np.isfinite(y).all():
            raise DataValidationError(
                f"MSTL: target {self.spec.target!r} holds missing or infinite values"
            )
        needed = max(MIN_TRAIN_ROWS, self.spec.horizon + 1)
        check_training_rows(len(y), needed, "MSTL", "a damped trend needs a few dozen rows")
        periods = self._usable_periods(len(y))
        stamps = _stamps(train)
        self._anchor = stamps[0]
        # Both fits see a recent window only: older data changes the estimates little and costs
        # seconds (ExponentialSmoothing on 16k rows: ~8 s; on 3k: 0.2 s). statsmodels drops a
        # period unless the series is longer than two cycles of it, hence the extra cycle.
        floor = MIN_FIT_ROWS_CALENDAR if self.spec.step.calendar else MIN_FIT_ROWS
        window = min(len(y), max([floor, *(CYCLES_FITTED * p for p in periods[:1])]))
        if periods:
            window = min(len(y), max(window, CYCLES_NEEDED * max(periods) + min(periods)))
        y, stamps = y[-window:], stamps[-window:]
        self._profiles = self._fit_profiles(y, stamps, periods)
        rest = y - self._seasonal(stamps)
        self._fit_smoothing(rest)
        train_loss = float(np.mean((self._one_step(rest) - rest[1:]) ** 2))
        if progress is not None:
            progress(EpochProgress(epoch=1, epochs=1, train_loss=train_loss))
        summary = FitSummary(
            seconds=time.perf_counter() - started,
            epochs_run=1,
            train_loss=train_loss,
            train_windows=len(y),
        )
        logger.info(
            "MSTL fitted (periods %s, alpha %.3f, beta %.3f, phi %.3f): %s",
            periods,
            self._alpha,
            self._beta,
            self._phi,
            summary.model_dump(),
        )
        return summary

    def _usable_periods(self, n_rows: int) -> tuple[int, ...]:
        kept = []
        for period in spec_periods(self.spec):
            if period < 2:  # "season 1" of a series without one: no seasonal component
                continue
            if period > MAX_PERIOD_STEPS:
                logger.warning(
                    "MSTL: a seasonal period of %d steps is longer than the %d it decomposes "
                    "in reasonable time; fitting without it",
                    period,
                    MAX_PERIOD_STEPS,
                )
            elif n_rows <= CYCLES_NEEDED * period:
                logger.warning(
                    "MSTL: a seasonal period of %d steps needs %d training rows, got %d; "
                    "fitting without it",
                    period,
                    CYCLES_NEEDED * period + 1,
                    n_rows,
                )
            else:
                kept.append(period)
        return tuple(kept)

    def _fit_profiles(
        self, y: np.ndarray, stamps: np.ndarray, periods: tuple[int, ...]
    ) -> dict[int, np.ndarray]:
        if not periods:
            return {}
        from statsmodels.tsa.seasonal import MSTL

        try:
            result = MSTL(y, periods=list(periods) if len(periods) > 1 else periods[0]).fit()
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ModelError(f"MSTL decomposition failed on {len(y)} rows: {exc}") from exc
        seasonal = np.asarray(result.seasonal, dtype=np.float64).reshape(len(y), -1)
        profiles: dict[int, np.ndarray] = {}
        for j, period in enumerate(periods):
            total, count = np.zeros(period), np.zeros(period)
            phase = self._phase(stamps, period)
            np.add.at(total, phase, seasonal[:, j])
            np.add.at(count, phase, 1.0)
            profiles[period] = _smooth_cyclic(total / np.maximum(count, 1.0))
        return profiles

    def _fit_smoothing(self, rest: np.ndarray) -> None:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        try:
            fitted = ExponentialSmoothing(
                rest, trend="add", damped_trend=True, initialization_method="estimated"
            ).fit()
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ModelError(f"MSTL trend smoothing failed on {len(rest)} rows: {exc}") from exc
        params = fitted.params
        self._alpha = float(params["smoothing_level"])
        self._beta = float(params["smoothing_trend"])
        self._phi = float(params["damping_trend"])

    # -- the fixed model applied to any history ------------------------------------------
    def _scaled_target(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.spec.target].to_numpy(dtype=np.float64)
        return self.spec.scaler.transform_column(self.spec.target, values)

    def _phase(self, stamps: np.ndarray, period: int) -> np.ndarray:
        assert self._anchor is not None
        anchor_us = int(np.asarray(self._anchor).astype("datetime64[us]").astype(np.int64))
        us = np.asarray(stamps).astype("datetime64[us]").astype(np.int64)
        phase: np.ndarray = np.mod(self.spec.step.steps_from(us, anchor_us), period)
        return phase

    def _seasonal(self, stamps: np.ndarray) -> np.ndarray:
        total = np.zeros(stamps.shape, dtype=np.float64)
        for period, profile in self._profiles.items():
            total += profile[self._phase(stamps, period)]
        return total

    def _states(self, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level and trend after each row; row 0 starts the level at its own value."""
        alpha, beta, phi = self._alpha, self._beta, self._phi
        level = np.empty(len(rest))
        trend = np.empty(len(rest))
        lev, tr = float(rest[0]), 0.0
        for t, value in enumerate(rest.tolist()):
            if t:
                prev = lev
                lev = alpha * value + (1.0 - alpha) * (prev + phi * tr)
                tr = beta * (lev - prev) + (1.0 - beta) * phi * tr
            level[t], trend[t] = lev, tr
        return level, trend

    def _one_step(self, rest: np.ndarray) -> np.ndarray:
        level, trend = self._states(rest[:-1])
        result: np.ndarray = level + self._phi * trend
        return result

    def _predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        require_fitted(self._anchor is not None, "MSTL")
        self.spec.check_frame_columns(list(frame.columns))
        idx = check_origins(origins, len(frame), self.min_history, "MSTL")
        horizon = self.spec.horizon
        if idx.size == 0:
            return np.empty((0, horizon), dtype=np.float64)
        end = int(idx.max())
        stamps = _stamps(frame.iloc[:end])
        rest = self._scaled_target(frame.iloc[:end]) - self._seasonal(stamps)
        level, trend = self._states(rest)
        damp = np.cumsum(self._phi ** np.arange(1, horizon + 1))
        targets = self.spec.step.shift(stamps[idx - 1][:, None], np.arange(1, horizon + 1))
        scaled = level[idx - 1][:, None] + damp[None, :] * trend[idx - 1][:, None]
        scaled = scaled + self._seasonal(targets)
        return self.spec.scaler.inverse_column(self.spec.target, scaled)

    # -- persistence ---------------------------------------------------------------------
    def _save_state(self, directory: Path) -> None:
        require_fitted(self._anchor is not None, "MSTL")
        state = {
            "anchor": str(self._anchor),
            "profiles": {str(p): v.tolist() for p, v in self._profiles.items()},
            "alpha": self._alpha,
            "beta": self._beta,
            "phi": self._phi,
        }
        (directory / STATE_FILE).write_text(json.dumps(state))

    def _load_state(self, directory: Path) -> None:
        try:
            state = json.loads((directory / STATE_FILE).read_text())
            self._anchor = np.datetime64(state["anchor"], "ns")
            self._profiles = {
                int(p): np.asarray(v, dtype=np.float64) for p, v in state["profiles"].items()
            }
            self._alpha, self._beta = float(state["alpha"]), float(state["beta"])
            self._phi = float(state["phi"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot load MSTL model from {directory}: {exc}") from exc
