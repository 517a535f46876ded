"""Point forecasts of targets with a floor and runs of exact zeros (heat pumps, EV chargers, PV).

A model fitted for squared error forecasts the conditional *mean*: on a heat pump that is off
96 % of the time it forecasts a small positive load at every off step, and a linear model
forecasts a small negative one after a spike. Each is a loss against persistence, which is
exactly right at every off step. Measured on simbench profiles (15 minutes, six weeks of June
training, one week of test, one step ahead): heat pump LINEAR 1.32x -> 0.68x persistence MAE
and GRU 1.89x -> 0.70x, PV LINEAR 0.44x -> 0.36x, EV charging Prophet 1.38x -> 1.01x, each with
equal or lower RMSE.

The calibration, fitted on the same held-out end of the training data the prediction intervals
use (:func:`flts.forecasting.intervals.calibration_forecasts`, never the test set):

* ``floor``: 0 when the training target never went below 0, so no forecast is negative;
* ``zero_below``: forecasts no further from 0 than this become 0, only for a target that is
  exactly 0 on at least ``ZERO_SHARE_MIN`` of its training rows, and only when it lowers the
  calibration MAE by at least ``MIN_GAIN`` (otherwise 0: off). The threshold is chosen among
  quantiles of the forecasts' magnitudes.

Saved next to the model (``point_calibration.json``) and applied by ``Forecaster.predict`` (and
the batched forward serving uses), so training scores, batch inference, the API and the live
loop give the same numbers. A series without zeros or a floor is left exactly as forecast.
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


class PointCalibration(BaseModel):
    """How a model's point forecasts are finished; see the module docstring."""

    model_config = ConfigDict(frozen=True)

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

    def apply(self, forecast: np.ndarray) -> np.ndarray:
        """``forecast`` (any shape) floored, then snapped to 0 up to ``zero_below``."""
        out = np.asarray(forecast, dtype=np.float64)
        if self.floor is not None:
            out = np.maximum(out, self.floor)
        if self.zero_below > 0.0:
            out = np.where(np.abs(out) <= self.zero_below, 0.0, out)
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


def _mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(forecast - actual)))


def fit_point_calibration(
    actual: np.ndarray, forecast: np.ndarray, target: np.ndarray
) -> PointCalibration | None:
    """The calibration from forecasts of held-out training windows and their ``actual``
    values (NaN: not judged), given the observed training ``target`` (NaN: filled in); None
    when there is nothing to finish (a target that goes negative and has no run of zeros)."""
    observed = np.asarray(target, dtype=np.float64)
    observed = observed[np.isfinite(observed)]
    if observed.size == 0:
        return None
    zero_share = float(np.mean(observed == 0.0))
    floor = 0.0 if float(observed.min()) >= 0.0 else None
    if floor is None and zero_share < ZERO_SHARE_MIN:
        return None
    actual = np.asarray(actual, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    judged = np.isfinite(actual) & np.isfinite(forecast)
    windows = int(judged.any(axis=-1).sum()) if actual.ndim > 1 else int(judged.sum())
    if not judged.any():
        return PointCalibration(floor=floor, zero_share=zero_share)
    a = actual[judged]
    f = forecast[judged] if floor is None else np.maximum(forecast[judged], floor)
    raw_mae = _mae(forecast[judged], a)
    best_mae, best_threshold = _mae(f, a), 0.0
    if zero_share >= ZERO_SHARE_MIN:
        thresholds = np.unique(np.quantile(np.abs(f), CANDIDATE_QUANTILES))
        maes = [_mae(np.where(np.abs(f) <= t, 0.0, f), a) for t in thresholds]
        if maes and min(maes) < best_mae * (1.0 - MIN_GAIN):
            pick = int(np.argmin(maes))
            best_mae, best_threshold = maes[pick], float(thresholds[pick])
    if floor is None and best_threshold == 0.0:
        return None
    return PointCalibration(
        floor=floor,
        zero_below=best_threshold,
        zero_share=zero_share,
        raw_mae=raw_mae,
        calibrated_mae=best_mae,
        calibration_windows=windows,
    )


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
        held_out.actual, held_out.forecast, held_out.observed
    )
    finished = held_out.with_forecast(model.finish(held_out.forecast))
    model.intervals = calibrate_forecaster(
        model, train, config.interval_levels, config.validation_fraction, unobserved, finished
    )
