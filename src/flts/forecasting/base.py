"""The one interface every forecaster implements, models and baselines alike."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from flts.domain.config import ModelType, TrainConfig
from flts.forecasting.intervals import ConformalIntervals
from flts.forecasting.point_calibration import PointCalibration
from flts.forecasting.spec import ForecastSpec

SPEC_FILE = "forecaster.json"


class EpochProgress(BaseModel):
    model_config = ConfigDict(frozen=True)

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None = None


ProgressCallback = Callable[[EpochProgress], None]


class FitSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    seconds: float
    epochs_run: int = 0
    best_epoch: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    train_windows: int = 0
    val_windows: int = 0


class Forecaster(ABC):
    """fit / predict / save / load over processed frames (see ``flts.forecasting``).

    ``predict`` returns an array of shape (len(origins), horizon) in the target's *original*
    units and must read no row at or after an origin: the model's ``_predict``, finished by its
    ``point_calibration`` (a floor, zeros; :mod:`flts.forecasting.point_calibration`).
    """

    model_type: ClassVar[ModelType]
    #: Calibrate the bands with a second fit that stops before the calibration rows
    #: (``flts.forecasting.intervals``): for models that fit every training row and are
    #: cheap to fit twice. Recurrent nets hold their validation tail out instead.
    calibrate_out_of_sample: ClassVar[bool] = False

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        self.spec = spec
        self.train_config = train_config or TrainConfig()
        #: Split-conformal bands calibrated after fitting (None until calibrated, and for
        #: models saved before intervals existed). Saved and loaded with the model.
        self.intervals: ConformalIntervals | None = None
        #: How point forecasts are finished (calibrated after fitting, like the bands; None:
        #: as forecast). Saved and loaded with the model.
        self.point_calibration: PointCalibration | None = None

    @property
    def min_history(self) -> int:
        """Rows of history an origin needs before it."""
        return self.spec.lookback

    @abstractmethod
    def fit(
        self,
        train: pd.DataFrame,
        progress: ProgressCallback | None = None,
        unobserved: np.ndarray | None = None,
    ) -> FitSummary:
        """Fit on the processed training frame (time-ordered validation is carved inside).

        ``unobserved`` flags the rows whose target preprocessing filled in (a missing step or an
        empty cell, interpolated; ``DatasetMeta.unobserved_target_rows``). A model learns no
        label from such a row, nor from an origin whose last input row is one
        (``windows.judged_pairs``: the rule scoring applies), where its kind allows: a model
        that needs an unbroken series (MSTL) fits the filled values too. None: all observed.
        """

    def predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Forecast ``horizon`` steps from each origin, in original units."""
        forecast = self._predict(frame, origins)
        point = self.point_calibration
        if point is None or point.persistence_weights is None:
            return self.finish(forecast)
        # _predict has checked the origins: each has the row before it.
        target = frame[self.spec.target].to_numpy(dtype=np.float64)
        return self.finish(forecast, target[np.asarray(origins, dtype=np.int64) - 1])

    def finish(self, forecast: np.ndarray, last: np.ndarray | None = None) -> np.ndarray:
        """Raw forecasts as served: after the point calibration, when there is one. ``last``:
        the target's value before each origin (what persistence forecasts), which a model
        hedged toward persistence needs."""
        if self.point_calibration is None:
            return forecast
        return self.point_calibration.apply(forecast, last)

    @abstractmethod
    def _predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """The model's own forecast of ``horizon`` steps from each origin, in original units."""

    def save(self, directory: Path) -> None:
        """Write the spec and config, then the model's own state (``_save_state``)."""
        directory.mkdir(parents=True, exist_ok=True)
        header = {
            "model_type": self.model_type.value,
            "spec": self.spec.model_dump(mode="json"),
            "train_config": self.train_config.model_dump(mode="json"),
        }
        (directory / SPEC_FILE).write_text(json.dumps(header, indent=2, sort_keys=True))
        if self.intervals is not None:
            self.intervals.save(directory)
        if self.point_calibration is not None:
            self.point_calibration.save(directory)
        self._save_state(directory)

    @classmethod
    def load(cls, directory: Path) -> Forecaster:
        header = json.loads((directory / SPEC_FILE).read_text())
        spec = ForecastSpec.model_validate(header["spec"])
        model = cls(spec, TrainConfig.model_validate(header["train_config"]))
        model._load_state(directory)
        model.intervals = ConformalIntervals.load(directory)
        model.point_calibration = PointCalibration.load(directory)
        return model

    def _save_state(self, directory: Path) -> None:  # noqa: B027 - baselines have no state
        """Persist fitted state; stateless forecasters keep the default."""

    def _load_state(self, directory: Path) -> None:  # noqa: B027
        """Restore what ``_save_state`` wrote."""


def read_model_type(directory: Path) -> ModelType:
    header = json.loads((directory / SPEC_FILE).read_text())
    return ModelType.parse(header["model_type"])
