"""Baselines every model is scored against: persistence and seasonal naive.

They have nothing to learn, so ``fit`` only checks the frame; they exist so that a trained model
is promoted only when it beats "tomorrow looks like now" and "today looks like yesterday".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.domain.config import ModelType
from flts.forecasting.base import FitSummary, Forecaster, ProgressCallback
from flts.forecasting.models._common import check_origins, check_training_rows, target_column


class PersistenceForecaster(Forecaster):
    """Every horizon step equals the last observed target value (row ``i - 1``)."""

    model_type = ModelType.PERSISTENCE

    @property
    def min_history(self) -> int:
        return 1

    def fit(
        self,
        train: pd.DataFrame,
        progress: ProgressCallback | None = None,
        unobserved: np.ndarray | None = None,
    ) -> FitSummary:
        _check_baseline_frame(self, train)
        return FitSummary(seconds=0.0)

    def _predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        target = target_column(frame, self.spec)
        idx = check_origins(origins, len(target), self.min_history, "persistence")
        last = target[idx - 1]
        return np.repeat(last[:, None], self.spec.horizon, axis=1)


class SeasonalNaiveForecaster(Forecaster):
    """Step ``k`` (0-based) from origin ``i`` is the target whole seasons before it.

    ``target[i + k - S * m]`` with ``m = k // S + 1`` seasons: the latest same-phase value
    before the origin, so a horizon longer than the season repeats the last observed season
    instead of reading values not yet seen. Every value read lies before the origin.
    """

    model_type = ModelType.SEASONAL_NAIVE

    @property
    def min_history(self) -> int:
        return self.spec.season_steps

    def fit(
        self,
        train: pd.DataFrame,
        progress: ProgressCallback | None = None,
        unobserved: np.ndarray | None = None,
    ) -> FitSummary:
        _check_baseline_frame(self, train)
        return FitSummary(seconds=0.0)

    def _predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        target = target_column(frame, self.spec)
        idx = check_origins(origins, len(target), self.min_history, "seasonal naive")
        offsets = seasonal_offsets(self.spec.horizon, self.spec.season_steps)
        values: np.ndarray = target[idx[:, None] + offsets[None, :]]
        return values


def seasonal_offsets(horizon: int, season: int) -> np.ndarray:
    """Row offset from the origin that seasonal naive reads for each step: always < 0."""
    steps = np.arange(horizon, dtype=np.int64)
    offsets: np.ndarray = steps - season * (steps // season + 1)
    return offsets


def _check_baseline_frame(model: Forecaster, train: pd.DataFrame) -> None:
    """Nothing to learn, but a frame without one complete window is still a caller's mistake."""
    target_column(train, model.spec)
    needed = model.min_history + model.spec.horizon
    why = f"{model.min_history} of history plus a horizon of {model.spec.horizon}"
    check_training_rows(len(train), needed, model.model_type.value, why)
