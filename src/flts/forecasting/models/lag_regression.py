"""Regression on lags: a ridge-regularised linear model and LightGBM, direct multi-horizon.

Both read only the features of ``flts.forecasting.models.lag_features`` (last value, recent
slope, the same time one season before the target for each detected period, covariates at the
previous step) and predict the change from the last value. Fitting is left to maintained
libraries: scikit-learn's ``Ridge`` (one model per horizon step, so each step gets its own
weights) and LightGBM (one pooled model with the step as a feature, so a day-long horizon is
one fit, not 48). Their fitted state is saved as plain JSON / LightGBM's text format, never
pickled, so a saved model loads under any library patch release that reads the format.
"""

from __future__ import annotations

import json
import logging
import time
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from flts.domain.config import ModelType, TrainConfig
from flts.errors import DataValidationError, ModelError
from flts.forecasting.base import EpochProgress, FitSummary, Forecaster, ProgressCallback
from flts.forecasting.models import lag_features as lf
from flts.forecasting.models._common import (
    check_finite,
    check_origins,
    check_training_rows,
    feature_matrix,
    require_fitted,
)
from flts.forecasting.spec import ForecastSpec

logger = logging.getLogger(__name__)

META_FILE = "lag_regression.json"
#: Fewest training origins worth fitting on (a period that leaves fewer is dropped).
MIN_TRAIN_ORIGINS = 24


class LagRegressionForecaster(Forecaster):
    """Shared windowing, checks and persistence; subclasses fit and apply the regressor."""

    calibrate_out_of_sample = True

    #: Add the target time's day/week phase to the features (see ``lag_features``).
    with_calendar: ClassVar[bool] = False
    #: Add holiday flags when the spec names a calendar (see ``lag_features``). LightGBM only:
    #: a holiday changes the load's shape through the day, which a tree can follow but one
    #: additive weight cannot (see ``public_holidays``).
    with_holidays: ClassVar[bool] = False
    #: How far back the target lags before the origin reach (``lag_features.recent_lags``).
    recent_most: ClassVar[int] = len(lf.TARGET_LAGS)

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        super().__init__(spec, train_config)
        self._periods: tuple[int, ...] = lf.spec_periods(spec)
        self._recent: tuple[int, ...] = lf.TARGET_LAGS
        self._covariates: tuple[str, ...] = lf.covariate_columns(spec)
        self._holidays = lf.HolidayInputs.of(spec) if self.with_holidays else None
        self._fitted = False

    @property
    def min_history(self) -> int:
        return lf.history_needed(self._periods)

    def fit(
        self,
        train: pd.DataFrame,
        progress: ProgressCallback | None = None,
        unobserved: np.ndarray | None = None,
    ) -> FitSummary:
        started = time.perf_counter()
        name = self.model_type.value
        check_finite(feature_matrix(train, self.spec), self.spec, name)
        n_rows, horizon = len(train), self.spec.horizon
        periods = lf.usable_periods(self.spec, n_rows, MIN_TRAIN_ORIGINS)
        dropped = sorted(set(lf.spec_periods(self.spec)) - set(periods))
        history = lf.history_needed(periods)
        why = f"{history} rows of lag history, a horizon of {horizon}, {MIN_TRAIN_ORIGINS} origins"
        check_training_rows(n_rows, history + horizon - 1 + MIN_TRAIN_ORIGINS, name, why)
        if dropped:
            logger.warning(
                "%s: seasonal periods %s need more training rows than the %d given; "
                "fitting without them",
                name,
                dropped,
                n_rows,
            )
        self._periods = periods
        self._recent = lf.recent_lags(periods, self.recent_most)
        series = lf.ScaledSeries.from_frame(
            train, self.spec, self._covariates, n_rows, _checked_mask(unobserved, n_rows, name)
        )
        origins = np.arange(history, n_rows - horizon + 1, dtype=np.int64)
        _require_judged_labels(series, origins, name)
        epochs, train_loss, val_loss, n_val = self._fit_regressor(series, origins)
        self._fitted = True
        if progress is not None:
            progress(EpochProgress(epoch=1, epochs=1, train_loss=train_loss, val_loss=val_loss))
        summary = FitSummary(
            seconds=time.perf_counter() - started,
            epochs_run=epochs,
            train_loss=train_loss,
            val_loss=val_loss,
            train_windows=len(origins) - n_val,
            val_windows=n_val,
        )
        logger.info("%s fitted (periods %s): %s", name, periods, summary.model_dump())
        return summary

    def _predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        require_fitted(self._fitted, self.model_type.value)
        self.spec.check_frame_columns(list(frame.columns))
        idx = check_origins(origins, len(frame), self.min_history, self.model_type.value)
        out = np.empty((len(idx), self.spec.horizon), dtype=np.float64)
        if idx.size == 0:
            return out
        series = lf.ScaledSeries.from_frame(frame, self.spec, self._covariates, int(idx.max()))
        last = series.target[idx - 1]
        for step in range(self.spec.horizon):
            out[:, step] = last + self._predict_step(self._design(series, idx, step), step)
        return self.spec.scaler.inverse_column(self.spec.target, out)

    def _design(self, series: lf.ScaledSeries, origins: np.ndarray, step: int) -> np.ndarray:
        return lf.design(
            series,
            origins,
            step,
            self._periods,
            self.with_calendar,
            self._holidays,
            self._recent,
        )

    def _width(self) -> int:
        n_covariates = len(self._covariates)
        return lf.n_features(
            self._periods,
            n_covariates,
            self.with_calendar,
            self._holidays is not None,
            self._recent,
        )

    # -- the regressor -------------------------------------------------------------------
    @abstractmethod
    def _fit_regressor(
        self, series: lf.ScaledSeries, origins: np.ndarray
    ) -> tuple[int, float, float | None, int]:
        """Fit on every training origin; return (iterations, train MSE, val MSE, val origins)."""

    @abstractmethod
    def _predict_step(self, design: np.ndarray, step: int) -> np.ndarray:
        """Predicted change from the last value (scaled units) for one horizon step."""

    @abstractmethod
    def _state(self) -> dict[str, object]:
        """The fitted regressor as JSON-able data."""

    @abstractmethod
    def _restore(self, state: dict[str, object], directory: Path) -> None:
        """Rebuild the regressor from ``_state`` (and any file it wrote to ``directory``)."""

    # -- persistence ---------------------------------------------------------------------
    def _save_state(self, directory: Path) -> None:
        require_fitted(self._fitted, self.model_type.value)
        meta = {
            "periods": list(self._periods),
            "covariates": list(self._covariates),
            "recent_lags": list(self._recent),
        }
        meta["regressor"] = self._state()  # type: ignore[assignment]
        self._write_files(directory)
        (directory / META_FILE).write_text(json.dumps(meta))

    def _write_files(self, directory: Path) -> None:
        """Extra files besides the JSON state."""

    def _load_state(self, directory: Path) -> None:
        try:
            meta = json.loads((directory / META_FILE).read_text())
            self._periods = tuple(int(p) for p in meta["periods"])
            self._covariates = tuple(str(c) for c in meta["covariates"])
            # Models saved before the lags were recorded read three (lag_features.TARGET_LAGS).
            self._recent = tuple(int(j) for j in meta.get("recent_lags", lf.TARGET_LAGS))
            self._restore(meta["regressor"], directory)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            name = self.model_type.value
            raise ModelError(f"cannot load {name} model from {directory}: {exc}") from exc
        self._fitted = True


def _checked_mask(unobserved: np.ndarray | None, n_rows: int, name: str) -> np.ndarray | None:
    if unobserved is None:
        return None
    mask = np.asarray(unobserved, dtype=bool)
    if mask.shape != (n_rows,):
        raise ModelError(f"{name}: {mask.shape} unobserved flags for {n_rows} training rows")
    return mask


def _require_judged_labels(series: lf.ScaledSeries, origins: np.ndarray, name: str) -> None:
    """Enough origins whose one-step label was read from the file, not filled in."""
    judged = int(np.isfinite(lf.labels(series, origins, 0)).sum())
    if judged < MIN_TRAIN_ORIGINS:
        raise DataValidationError(
            f"{name}: only {judged} of {len(origins)} training origins have an observed last "
            f"value and target (the rest were filled in by preprocessing); at least "
            f"{MIN_TRAIN_ORIGINS} are needed: supply a training file with fewer gaps"
        )


def ridge_step(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float, float]:
    """Ridge on standardised columns, folded back to raw-column weights: (coef, intercept, MSE).

    Shared by the per-series linear model and the global one (pooled rows of many series).
    """
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    ridge = Ridge(alpha=alpha).fit(scaler.transform(x), y)
    coef: np.ndarray = ridge.coef_ / scaler.scale_
    intercept = float(ridge.intercept_) - float(np.dot(coef, scaler.mean_))
    return coef, intercept, float(np.mean((x @ coef + intercept - y) ** 2))


class LinearForecaster(LagRegressionForecaster):
    """One ridge regression per horizon step on standardised lag features.

    The standardisation is folded into the saved weights, so prediction is one matrix product.
    ``alpha`` is small: the features are few and informative; it only keeps collinear seasonal
    neighbours from blowing up.
    """

    model_type = ModelType.LINEAR
    alpha = 1.0

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        super().__init__(spec, train_config)
        self._coef = np.empty((0, 0))
        self._intercept = np.empty(0)

    def _fit_regressor(
        self, series: lf.ScaledSeries, origins: np.ndarray
    ) -> tuple[int, float, float | None, int]:
        horizon = self.spec.horizon
        coef, intercept = np.zeros((horizon, self._width())), np.zeros(horizon)
        sq_err = 0.0
        for step in range(horizon):
            x, y = lf.judged_rows(
                self._design(series, origins, step), lf.labels(series, origins, step)
            )
            coef[step], intercept[step], mse = ridge_step(x, y, self.alpha)
            sq_err += mse
        self._coef, self._intercept = coef, intercept
        return 1, sq_err / horizon, None, 0

    def _predict_step(self, design: np.ndarray, step: int) -> np.ndarray:
        result: np.ndarray = design @ self._coef[step] + self._intercept[step]
        return result

    def _state(self) -> dict[str, object]:
        return {"coef": self._coef.tolist(), "intercept": self._intercept.tolist()}

    def _restore(self, state: dict[str, object], directory: Path) -> None:
        self._coef = np.asarray(state["coef"], dtype=np.float64)
        self._intercept = np.asarray(state["intercept"], dtype=np.float64)
        if self._coef.shape[0] != self.spec.horizon:
            raise ValueError(
                f"{self._coef.shape[0]} step models for a horizon of {self.spec.horizon}"
            )
