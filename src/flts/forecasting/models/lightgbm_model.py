"""LightGBM on the lag features: one pooled model, the horizon step is a feature.

Pooling the steps keeps a 48-step horizon one fit; rows beyond ``MAX_ROWS`` are subsampled with
the seed so the fit stays a few seconds on two cores. Early stopping watches the time-ordered
tail of the training origins (after a gap of one horizon), then the model keeps its best round.
``deterministic`` and a fixed thread count make two fits with the same seed identical.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from flts.domain.config import ModelType, TrainConfig
from flts.forecasting.models import lag_features as lf
from flts.forecasting.models.lag_regression import LagRegressionForecaster
from flts.forecasting.spec import ForecastSpec

BOOSTER_FILE = "lightgbm.txt"
#: Most (origin, step) rows fitted on; more mostly repeats the same days.
MAX_ROWS = 200_000
MAX_ROUNDS = 400
EARLY_STOPPING = 30
PARAMS: dict[str, Any] = {
    "objective": "l2",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}


class LightGBMForecaster(LagRegressionForecaster):
    model_type = ModelType.LIGHTGBM
    with_calendar = True
    with_holidays = True

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        super().__init__(spec, train_config)
        self._booster: Any = None

    def _params(self) -> dict[str, Any]:
        threads = self.train_config.torch_threads or 2
        return {**PARAMS, "seed": self.train_config.seed, "num_threads": threads}

    def _stacked(
        self, series: lf.ScaledSeries, origins: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        xs = [self._design(series, origins, k) for k in range(self.spec.horizon)]
        ys = [lf.labels(series, origins, k) for k in range(self.spec.horizon)]
        return lf.judged_rows(np.vstack(xs), np.concatenate(ys))

    def _fit_regressor(
        self, series: lf.ScaledSeries, origins: np.ndarray
    ) -> tuple[int, float, float | None, int]:
        import lightgbm as lgb

        n_val = max(1, int(len(origins) * self.train_config.validation_fraction))
        fit_origins = origins[: len(origins) - n_val - self.spec.horizon]
        val_origins = origins[len(origins) - n_val :]
        x, y = self._stacked(series, fit_origins)
        if len(y) > MAX_ROWS:
            rng = np.random.default_rng(self.train_config.seed)
            keep = np.sort(rng.choice(len(y), size=MAX_ROWS, replace=False))
            x, y = x[keep], y[keep]
        x_val, y_val = self._stacked(series, val_origins)
        if len(y_val) == 0:  # the validation tail is all filled in: stop on unfiltered rows
            x_val, y_val = self._stacked(replace(series, unobserved=None), val_origins)
        params = self._params()
        train_set = lgb.Dataset(x, y, params=params, free_raw_data=True)
        val_set = lgb.Dataset(x_val, y_val, reference=train_set)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=MAX_ROUNDS,
            valid_sets=[val_set],
            callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
        )
        # Keep only the best rounds, so the saved text model and this one predict the same.
        self._booster = lgb.Booster(
            model_str=booster.model_to_string(num_iteration=booster.best_iteration)
        )
        train_mse = float(np.mean((self._booster.predict(x) - y) ** 2))
        val_mse = float(np.mean((self._booster.predict(x_val) - y_val) ** 2))
        return int(booster.best_iteration or MAX_ROUNDS), train_mse, val_mse, n_val

    def _predict_step(self, design: np.ndarray, step: int) -> np.ndarray:
        result: np.ndarray = np.asarray(self._booster.predict(design), dtype=np.float64)
        return result

    def _state(self) -> dict[str, object]:
        return {"booster_file": BOOSTER_FILE}

    def _write_files(self, directory: Path) -> None:
        (directory / BOOSTER_FILE).write_text(self._booster.model_to_string())

    def _restore(self, state: dict[str, object], directory: Path) -> None:
        import lightgbm as lgb

        text = (directory / str(state["booster_file"])).read_text()
        self._booster = lgb.Booster(model_str=text)
