"""Checks and conversions every forecaster shares, so each model refuses bad input the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.errors import DataValidationError, ModelError
from flts.forecasting.spec import ForecastSpec


def feature_matrix(frame: pd.DataFrame, spec: ForecastSpec) -> np.ndarray:
    """The frame's features as float64 in ``spec.feature_order``, whatever the frame's order."""
    spec.check_frame_columns(list(frame.columns))
    return frame.loc[:, list(spec.feature_order)].to_numpy(dtype=np.float64)


def target_column(frame: pd.DataFrame, spec: ForecastSpec) -> np.ndarray:
    """The target in original units; the other features need not be read."""
    spec.check_frame_columns(list(frame.columns))
    return frame[spec.target].to_numpy(dtype=np.float64)


def check_origins(origins: np.ndarray, n_rows: int, min_history: int, name: str) -> np.ndarray:
    """Origins as int64, each with ``min_history`` rows before it and none past the frame's end.

    An origin equal to ``n_rows`` is allowed: it forecasts the steps right after the frame.
    """
    arr = np.asarray(origins)
    if arr.ndim != 1:
        raise DataValidationError(f"{name}: origins must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataValidationError(f"{name}: origins must be integer row indices, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size == 0:
        return arr
    low, high = int(arr.min()), int(arr.max())
    if low < min_history:
        raise DataValidationError(
            f"{name}: origin {low} has only {low} rows of history; "
            f"this model needs at least {min_history}"
        )
    if high > n_rows:
        raise DataValidationError(
            f"{name}: origin {high} lies past the end of a frame of {n_rows} rows"
        )
    return arr


def check_finite(matrix: np.ndarray, spec: ForecastSpec, name: str) -> None:
    """Refuse NaN/inf in training data: preprocessing should have filled them."""
    bad = ~np.isfinite(matrix)
    if bad.any():
        rows, cols = np.nonzero(bad)
        columns = sorted({spec.feature_order[c] for c in cols})
        raise DataValidationError(
            f"{name}: training data holds {int(bad.sum())} missing or infinite values "
            f"(columns {columns}, first at row {int(rows[0])}); fill them before fitting"
        )


def check_training_rows(n_rows: int, needed: int, name: str, why: str) -> None:
    """Refuse a training frame too short to fit on, saying how many rows it has and needs."""
    if n_rows < needed:
        raise DataValidationError(
            f"{name}: training data has {n_rows} rows; at least {needed} are needed ({why})"
        )


def require_fitted(fitted: bool, name: str) -> None:
    if not fitted:
        raise ModelError(f"{name} is not fitted; call fit() or load() before predict()")
