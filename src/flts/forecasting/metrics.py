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


def error_metrics(actual: np.ndarray, predicted: np.ndarray) -> ErrorMetrics:
    actual = np.asarray(actual, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    if actual.shape != predicted.shape:
        raise ValueError(f"shape mismatch: actual {actual.shape} vs predicted {predicted.shape}")
    if actual.size == 0:
        raise ValueError("no points to score")
    err = predicted - actual
    mse = float(np.mean(err**2))
    nonzero = actual != 0
    mape = float(np.mean(np.abs(err[nonzero] / actual[nonzero])) * 100.0) if nonzero.any() else None
    return ErrorMetrics(
        rmse=float(np.sqrt(mse)), mae=float(np.mean(np.abs(err))), mse=mse, mape=mape, n=actual.size
    )
