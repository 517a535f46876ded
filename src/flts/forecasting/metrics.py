"""Point-forecast errors in the target's original units."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict


class ErrorMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    rmse: float
    mae: float
    mse: float
    #: Mean absolute percentage error over actuals that are not zero; None if all are zero.
    mape: float | None
    n: int
    #: Per horizon step (1..H), over every origin; empty for a flat (1-D) input.
    mae_by_step: tuple[float, ...] = ()
    rmse_by_step: tuple[float, ...] = ()


def error_metrics(actual: np.ndarray, predicted: np.ndarray) -> ErrorMetrics:
    """Errors over every (origin, step) pair; per-step errors too when given (origins, H).

    A NaN actual is a pair that is not judged (a filled-in value, see
    ``windows.scorable_actuals``): it counts in no error and not in ``n``. MAPE skips zero
    actuals (it is undefined there) and is None when every actual is zero.
    """
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if actual.shape != predicted.shape:
        raise ValueError(f"shape mismatch: actual {actual.shape} vs predicted {predicted.shape}")
    judged = ~np.isnan(actual)
    if not judged.any():
        raise ValueError("no points to score")
    err = np.where(judged, predicted - actual, 0.0)
    by_step: dict[str, tuple[float, ...]] = {}
    if actual.ndim == 2:
        count = np.maximum(judged.sum(axis=0), 1)  # a step with no judged pair reports 0
        by_step = {
            "mae_by_step": tuple(float(v) for v in np.abs(err).sum(axis=0) / count),
            "rmse_by_step": tuple(float(v) for v in np.sqrt((err**2).sum(axis=0) / count)),
        }
    err, actual = err[judged], actual[judged]
    mse = float(np.mean(err**2))
    nonzero = actual != 0
    mape = float(np.mean(np.abs(err[nonzero] / actual[nonzero])) * 100.0) if nonzero.any() else None
    return ErrorMetrics(
        rmse=float(np.sqrt(mse)),
        mae=float(np.mean(np.abs(err))),
        mse=mse,
        mape=mape,
        n=int(actual.size),
        **by_step,
    )
