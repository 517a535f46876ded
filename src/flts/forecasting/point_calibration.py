"""How point forecasts are finished: hedged toward persistence where a model loses to it on
held-out data, kept above a floor, and snapped to runs of exact zeros (heat pumps, EV chargers).

A model fitted for squared error forecasts the conditional *mean*: on a heat pump that is off
96 % of the time it forecasts a small positive load at every off step, and a linear model
forecasts a small negative one after a spike. Each is a loss against persistence, which is
exactly right at every off step. Measured on simbench profiles (15 minutes, six weeks of June
training, one week of test, one step ahead): heat pump LINEAR 1.32x -> 0.68x persistence MAE
and GRU 1.89x -> 0.70x, PV LINEAR 0.44x -> 0.36x, EV charging Prophet 1.38x -> 1.01x, each with
equal or lower RMSE.

A model that loses to persistence on held-out data usually loses on the test set too: squared
error on a series whose one-step changes are nearly noise (a shop's 15-minute load) fits
seasonal terms that the next value does not follow. There the MAE-optimal forecast lies between
the model's and the last value; hedging toward it is the oldest forecast combination there is.
Measured on the accuracy panel (weights fitted on the held-out tail, judged on the test week;
``flts bench accuracy``): on the commercial profile one step ahead, where every model lost to
persistence, LSTM 1.14x -> 0.995x, GRU 1.22x -> 1.01x, Prophet 1.38x -> 1.03x persistence MAE
(LSTM is promoted where nothing was); household MSTL 1.05x -> 0.98x. A model that beats
persistence on its held-out tail is left as it is.

The calibration, fitted on the same held-out end of the training data the prediction intervals
use (:func:`flts.forecasting.intervals.calibration_forecasts`, never the test set), in order:

* ``floor``: 0 when the training target never went below 0, so no forecast is negative;
* ``zero_below``: forecasts no further from 0 than this become 0, only for a target that is
  exactly 0 on at least ``ZERO_SHARE_MIN`` of its training rows, and only when it lowers the
  calibration MAE by at least ``MIN_GAIN`` (otherwise 0: off). The threshold is chosen among
  quantiles of the forecasts' magnitudes;
* ``persistence_weights``: per horizon step, the weight ``k`` of the (floored, snapped)
  forecast against the last value before the origin (``last + k * (forecast - last)``), only
  at steps where that forecast's held-out MAE is above persistence's, persistence beats
  seasonal naive there, and a ``k`` in [``MIN_WEIGHT``, 1] lowers the MAE by at least ``MIN_GAIN``
  (elsewhere 1: as forecast); None when every step keeps 1. Where the held-out forecasts come
  from a second fit on fewer rows, only as far as the model's own forecasts also call for.
  Fitted last, so a heat pump's snapped forecasts, which beat persistence, are not hedged.

Saved next to the model (``point_calibration.json``) and applied by ``Forecaster.predict`` (and
the batched forward serving uses), so training scores, batch inference, the API and the live
loop give the same numbers. A series without zeros or a floor, on which the model beats
persistence, is left exactly as forecast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import pandas as pd

    from flts.forecasting.base import Forecaster

POINT_CALIBRATION_FILE = "point_calibration.json"
#: Share of exact zeros in the training target from which zero snapping is considered.
ZERO_SHARE_MIN = 0.05
#: Relative calibration-MAE gain a threshold must bring to be adopted.
MIN_GAIN = 0.01
#: Candidate thresholds: these quantiles of the calibration forecasts' magnitudes.
CANDIDATE_QUANTILES = np.linspace(0.02, 0.9, 45)
#: The least weight a hedged forecast keeps of the model's own. At 0 the model would be the
#: persistence it is compared with: never promoted, whatever it could do. Over simbench's 96
#: load profiles (``bench/hedge_ab.py``) weights down to 0 cost LINEAR a promotion (a profile
#: where it beat persistence by 18 % on the test week but lost on the held-out tail).
MIN_WEIGHT = 0.25
#: Candidate weights of a model's forecast against persistence (1: as forecast).
CANDIDATE_WEIGHTS = np.round(np.linspace(MIN_WEIGHT, 1.0, 16), 2)


class PointCalibration(BaseModel):
    """How a model's point forecasts are finished; see the module docstring."""

    model_config = ConfigDict(frozen=True)

    #: Per horizon step, the weight of the forecast against the last value before the origin
    #: (1: as forecast); None: not hedged.
    persistence_weights: tuple[float, ...] | None = None
    #: Lowest value a forecast takes (0 for a target that never went negative), or None.
    floor: float | None = None
    #: Forecasts with a magnitude up to this become exactly 0 (0: off).
    zero_below: float = Field(default=0.0, ge=0.0)
    #: Share of the observed training target that is exactly 0.
    zero_share: float = Field(ge=0.0, le=1.0)
    #: MAE on the calibration windows as forecast, and after this calibration.
    raw_mae: float | None = None
    calibrated_mae: float | None = None
    calibration_windows: int = Field(default=0, ge=0)

    def apply(self, forecast: np.ndarray, last: np.ndarray | None = None) -> np.ndarray:
        """``forecast`` ((windows, horizon)) floored, snapped to 0 up to ``zero_below``, then
        hedged toward ``last`` ((windows,): the value before each origin)."""
        out = np.asarray(forecast, dtype=np.float64)
        if self.floor is not None:
            out = np.maximum(out, self.floor)
        if self.zero_below > 0.0:
            out = np.where(np.abs(out) <= self.zero_below, 0.0, out)
        if self.persistence_weights is not None:
            out = hedge(out, last, np.asarray(self.persistence_weights, dtype=np.float64))
        return out

    def save(self, directory: Path) -> None:
        (directory / POINT_CALIBRATION_FILE).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, directory: Path) -> PointCalibration | None:
        """The saved calibration, or None (models saved before it existed, baselines)."""
        path = directory / POINT_CALIBRATION_FILE
        if not path.exists():
            return None
        return cls.model_validate_json(path.read_text())


def hedge(forecast: np.ndarray, last: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
    """``last + weights * (forecast - last)`` per window (row) and horizon step (column)."""
    if last is None:
        raise ValueError("a forecast hedged toward persistence needs the value before each origin")
    anchor = np.asarray(last, dtype=np.float64).reshape(-1, 1)
    hedged: np.ndarray = anchor + weights * (forecast - anchor)
    return hedged


def weights_text(weights: tuple[float, ...] | list[float]) -> str:
    """``0.25`` for one step or equal weights, else the first and last step's: ``0.25 .. 1``."""
    if len(set(weights)) == 1:
        return f"{weights[0]:g}"
    return f"{weights[0]:g} .. {weights[-1]:g}"


def _mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(forecast - actual)))


def fit_persistence_weights(
    actual: np.ndarray,
    forecast: np.ndarray,
    last: np.ndarray,
    seasonal_naive: np.ndarray | None = None,
) -> tuple[float, ...] | None:
    """Per horizon step, the candidate weight with the lowest held-out MAE of
    ``last + k * (forecast - last)``, where the model's MAE is above persistence's, persistence
    is the better free baseline (``seasonal_naive``'s MAE is not lower: a day ahead, hedging
    toward the last value would lead away from the bar the gate sets) and the weight lowers the
    MAE by ``MIN_GAIN``; 1 elsewhere. None when every step keeps 1."""
    anchor = np.asarray(last, dtype=np.float64).reshape(-1, 1)
    weights = np.ones(actual.shape[1])
    for step in range(actual.shape[1]):
        a, f = actual[:, step], forecast[:, step]
        judged = np.isfinite(a) & np.isfinite(f) & np.isfinite(anchor[:, 0])
        if not judged.any():
            continue
        a, f, p = a[judged], f[judged], anchor[judged, 0]
        model_mae, persistence_mae = _mae(f, a), _mae(p, a)
        if model_mae <= persistence_mae:
            continue
        if seasonal_naive is not None:
            rival = seasonal_naive[judged, step]
            seen = np.isfinite(rival)
            if seen.any() and _mae(rival[seen], a[seen]) < _mae(p[seen], a[seen]):
                continue
        maes = np.array([_mae(p + k * (f - p), a) for k in CANDIDATE_WEIGHTS])
        pick = int(np.argmin(maes))
        if maes[pick] < model_mae * (1.0 - MIN_GAIN):
            weights[step] = float(CANDIDATE_WEIGHTS[pick])
    if np.all(weights == 1.0):
        return None
    return tuple(float(w) for w in weights)


def fit_point_calibration(
    actual: np.ndarray,
    forecast: np.ndarray,
    target: np.ndarray,
    last: np.ndarray | None = None,
    seasonal_naive: np.ndarray | None = None,
    in_sample: np.ndarray | None = None,
) -> PointCalibration | None:
    """The calibration from forecasts ((windows, horizon)) of held-out training windows and
    their ``actual`` values (NaN: not judged), given the observed training ``target`` (NaN:
    filled in), the value before each window's origin (``last``; None: no hedging),
    seasonal naive's forecasts of the windows (None: no season) and the fitted model's own
    forecasts of them when ``forecast`` came from a second fit on the rows before them
    (``in_sample``); None when there is nothing to finish (the model beats persistence on a
    target that goes negative and has no run of zeros).

    With ``in_sample``, a step is hedged only as far as both sets of forecasts call for (the
    larger weight): the second fit saw fewer rows than the model, so it can lose to
    persistence where the model would not (simbench household, Prophet one step ahead: 1.24x
    persistence on the held-out tail out of sample, 0.97x on the test week), while the model's
    own forecasts of rows it was fitted on flatter it; a model that loses on both is hedged."""
    observed = np.asarray(target, dtype=np.float64)
    observed = observed[np.isfinite(observed)]
    if observed.size == 0:
        return None
    actual, forecast = _as_windows(actual), _as_windows(forecast)
    zero_share = float(np.mean(observed == 0.0))
    floor = 0.0 if float(observed.min()) >= 0.0 else None
    judged = np.isfinite(actual) & np.isfinite(forecast)
    if not judged.any():
        if floor is None and zero_share < ZERO_SHARE_MIN:
            return None
        return PointCalibration(floor=floor, zero_share=zero_share)
    a = actual[judged]
    raw_mae = _mae(forecast[judged], a)
    floored = forecast if floor is None else np.maximum(forecast, floor)
    threshold = 0.0
    if zero_share >= ZERO_SHARE_MIN:
        threshold = _zero_threshold(floored[judged], a)
    finished = _floor_and_snap(forecast, floor, threshold)
    # Hedged last, from the forecasts as floored and snapped: on a heat pump those beat
    # persistence on the off steps, where hedging the raw ones first would leave nothing to snap.
    weights = None
    if last is not None:
        weights = fit_persistence_weights(actual, finished, last, seasonal_naive)
        if weights is not None and in_sample is not None:
            own = _floor_and_snap(_as_windows(in_sample), floor, threshold)
            weights = _both_call_for(
                weights, fit_persistence_weights(actual, own, last, seasonal_naive)
            )
        if weights is not None:
            finished = hedge(finished, last, np.asarray(weights))
    if floor is None and threshold == 0.0 and weights is None:
        return None
    return PointCalibration(
        persistence_weights=weights,
        floor=floor,
        zero_below=threshold,
        zero_share=zero_share,
        raw_mae=raw_mae,
        calibrated_mae=_mae(finished[judged], a),
        calibration_windows=int(judged.any(axis=-1).sum()),
    )


def _as_windows(values: np.ndarray) -> np.ndarray:
    """(windows, horizon) float64; a 1-D array is one step per window."""
    return np.atleast_2d(np.asarray(values, dtype=np.float64).T).T


def _both_call_for(
    weights: tuple[float, ...], other: tuple[float, ...] | None
) -> tuple[float, ...] | None:
    """The larger weight per step (the lesser hedge); None when that is 1 everywhere."""
    if other is None:
        return None
    both = tuple(max(a, b) for a, b in zip(weights, other, strict=True))
    return None if all(w == 1.0 for w in both) else both


def _floor_and_snap(forecast: np.ndarray, floor: float | None, threshold: float) -> np.ndarray:
    floored = forecast if floor is None else np.maximum(forecast, floor)
    return np.where(np.abs(floored) <= threshold, 0.0, floored) if threshold else floored


def _zero_threshold(forecast: np.ndarray, actual: np.ndarray) -> float:
    """The candidate threshold whose snapping gives the lowest MAE, when it lowers the MAE by
    ``MIN_GAIN``; 0 (off) otherwise."""
    best_mae = _mae(forecast, actual)
    thresholds = np.unique(np.quantile(np.abs(forecast), CANDIDATE_QUANTILES))
    maes = [_mae(np.where(np.abs(forecast) <= t, 0.0, forecast), actual) for t in thresholds]
    if maes and min(maes) < best_mae * (1.0 - MIN_GAIN):
        return float(thresholds[int(np.argmin(maes))])
    return 0.0


def calibrate_model(
    model: Forecaster, train: pd.DataFrame, unobserved: np.ndarray | None = None
) -> None:
    """Fit ``model``'s point calibration, then its prediction intervals around the calibrated
    forecasts, on the held-out end of the training frame (one set of held-out forecasts for
    both). Raises DataValidationError when the training data is too short for either."""
    from flts.forecasting.intervals import calibrate_forecaster, calibration_forecasts

    config = model.train_config
    held_out = calibration_forecasts(model, train, config.validation_fraction, unobserved)
    model.point_calibration = fit_point_calibration(
        held_out.actual,
        held_out.forecast,
        held_out.observed,
        held_out.last,
        held_out.seasonal_naive,
        held_out.in_sample,
    )
    finished = held_out.with_forecast(model.finish(held_out.forecast, held_out.last))
    model.intervals = calibrate_forecaster(
        model, train, config.interval_levels, config.validation_fraction, unobserved, finished
    )
