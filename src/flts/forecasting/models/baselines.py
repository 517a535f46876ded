"""Baselines every model is scored against: persistence and seasonal naive.

They have nothing to learn, so ``fit`` only checks the frame; they exist so that a trained model
is promoted only when it beats "tomorrow looks like now" and "today looks like yesterday".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.domain.config import ModelType, TrainConfig
from flts.errors import ModelError
from flts.forecasting.base import FitSummary, Forecaster, ProgressCallback
from flts.forecasting.models._common import check_origins, check_training_rows, target_column
from flts.forecasting.spec import ForecastSpec


class PersistenceForecaster(Forecaster):
    """Every horizon step equals the last observed target value (row ``i - 1``)."""

    model_type = ModelType.PERSISTENCE

    @property
    def min_history(self) -> int:
        return 1

    def fit(self, train: pd.DataFrame, progress: ProgressCallback | None = None) -> FitSummary:
        _check_baseline_frame(self, train)
        return FitSummary(seconds=0.0)

    def predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        target = target_column(frame, self.spec)
        idx = check_origins(origins, len(target), self.min_history, "persistence")
        last = target[idx - 1]
        return np.repeat(last[:, None], self.spec.horizon, axis=1)


class SeasonalNaiveForecaster(Forecaster):
    """Step ``k`` from origin ``i`` equals the target one season before it: ``target[i+k-S]``.

    With ``horizon <= season_steps`` every value read lies before the origin; a longer horizon
    would need values that have not been observed yet, so it is refused.
    """

    model_type = ModelType.SEASONAL_NAIVE

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        super().__init__(spec, train_config)
        if spec.horizon > spec.season_steps:
            raise ModelError(
                f"seasonal naive needs horizon <= season_steps; got horizon {spec.horizon} "
                f"and season_steps {spec.season_steps}"
            )

    @property
    def min_history(self) -> int:
        return self.spec.season_steps

    def fit(self, train: pd.DataFrame, progress: ProgressCallback | None = None) -> FitSummary:
        _check_baseline_frame(self, train)
        return FitSummary(seconds=0.0)

    def predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        target = target_column(frame, self.spec)
        idx = check_origins(origins, len(target), self.min_history, "seasonal naive")
        steps = np.arange(self.spec.horizon, dtype=np.int64)
        return target[idx[:, None] + steps[None, :] - self.spec.season_steps]


def _check_baseline_frame(model: Forecaster, train: pd.DataFrame) -> None:
    """Nothing to learn, but a frame without one complete window is still a caller's mistake."""
    target_column(train, model.spec)
    needed = model.min_history + model.spec.horizon
    why = f"{model.min_history} of history plus a horizon of {model.spec.horizon}"
    check_training_rows(len(train), needed, model.model_type.value, why)
