"""GRU and LSTM forecasters: one recurrent net, a linear head to all horizon steps at once.

The net reads a window of ``lookback`` scaled feature rows and emits the scaled target for every
horizon step (direct multi-output: no recursion, so errors do not compound and a day-long
horizon costs one forward pass). Scaling uses ``spec.scaler`` (fitted on training data by
preprocess); outputs are inverted to original units before they leave ``predict``.

The head predicts the *change* from the last observed target value (a residual connection
adds the window's last scaled target to every output), so an untrained net is persistence and
training only has to learn what differs from it; the seasonal lag columns of ``spec.lags``
(same time yesterday, last week) arrive as input features of every window row. Without it, on
a half-hourly demand series the GRU was 2.5x persistence RMSE after one epoch.
The head also reads the last input row (``last_row_skip``): with the seasonal lags on that row
the net contains a linear autoregression on them, which is what made the recurrent models weak
on 15- and 30-minute series without it (they lost to a twenty-line linear reference).
Models saved before either connection load without it (``rnn_meta.json`` says which).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from flts.domain.config import ModelType, TrainConfig
from flts.errors import DataValidationError, ModelError
from flts.forecasting.base import EpochProgress, FitSummary, Forecaster, ProgressCallback
from flts.forecasting.models._common import (
    check_finite,
    check_origins,
    feature_matrix,
    require_fitted,
)
from flts.forecasting.models._training import fit_network, split_windows
from flts.forecasting.spec import ForecastSpec
from flts.forecasting.windows import input_windows

logger = logging.getLogger(__name__)

STATE_FILE = "model.pt"
META_FILE = "rnn_meta.json"
#: Windows per forward pass at inference: large enough to amortise overhead, small in memory.
PREDICT_BATCH = 4096

CellKind = Literal["GRU", "LSTM"]


class RecurrentNet(nn.Module):
    """Recurrent layers, then a linear map from the last hidden state to ``horizon`` outputs.

    With ``last_row_skip`` the head also reads the window's last input row directly: its seasonal
    lags (same time yesterday and neighbours, last week), covariates and time features reach
    every output step through one linear map, so the net contains a linear autoregression on
    those inputs and the recurrent part learns what that misses.
    """

    def __init__(
        self,
        cell: CellKind,
        n_features: int,
        horizon: int,
        config: TrainConfig,
        residual_index: int | None = None,
        last_row_skip: bool = False,
    ) -> None:
        super().__init__()
        #: Input column added to every output (the scaled target), or None for a plain head.
        self.residual_index = residual_index
        self.last_row_skip = last_row_skip
        rnn_cls = nn.GRU if cell == "GRU" else nn.LSTM
        self.rnn = rnn_cls(
            input_size=n_features,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        head_inputs = config.hidden_size + (n_features if last_row_skip else 0)
        self.head = nn.Linear(head_inputs, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        hidden = out[:, -1, :]
        if self.last_row_skip:
            hidden = torch.cat((hidden, x[:, -1, :]), dim=1)
        result: torch.Tensor = self.head(hidden)
        if self.residual_index is not None:
            k = self.residual_index
            result = result + x[:, -1, k : k + 1]
        return result


class RecurrentForecaster(Forecaster):
    """Shared fit/predict/save/load; subclasses pick the recurrent cell."""

    cell: ClassVar[CellKind]

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        super().__init__(spec, train_config)
        self._net: RecurrentNet | None = None
        self._residual = True
        self._last_row_skip = True

    def _new_net(self) -> RecurrentNet:
        n_features = len(self.spec.feature_order)
        residual = self.spec.target_index if self._residual else None
        return RecurrentNet(
            self.cell,
            n_features,
            self.spec.horizon,
            self.train_config,
            residual,
            self._last_row_skip,
        )

    def _apply_threads(self) -> None:
        threads = self.train_config.torch_threads
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    # -- fitting -------------------------------------------------------------------------
    def fit(
        self,
        train: pd.DataFrame,
        progress: ProgressCallback | None = None,
        unobserved: np.ndarray | None = None,
    ) -> FitSummary:
        started = time.perf_counter()
        name = self.model_type.value
        matrix = feature_matrix(train, self.spec)
        check_finite(matrix, self.spec, name)
        scaled = self.spec.scaler.transform(matrix).astype(np.float32)
        windows = split_windows(
            scaled,
            self.spec,
            self.train_config.validation_fraction,
            name,
            unobserved,
            self.train_config.seed,
        )
        self._apply_threads()
        cfg = self.train_config
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        net = self._new_net()
        if self._last_row_skip:
            _start_from_least_squares(net, windows.x_train, windows.y_train, self.spec.target_index)
        result = fit_network(net, windows, cfg, _progress_logger(name, progress))
        self._net = net
        summary = FitSummary(
            seconds=time.perf_counter() - started,
            epochs_run=result.epochs_run,
            best_epoch=result.best_epoch,
            train_loss=result.train_loss,
            val_loss=result.val_loss,
            train_windows=windows.n_train,
            val_windows=windows.n_val,
        )
        logger.info("%s fitted: %s", name, summary.model_dump())
        return summary

    # -- prediction ----------------------------------------------------------------------
    def scale_window(self, frame_rows: pd.DataFrame) -> np.ndarray:
        """The last ``lookback`` rows of a frame, scaled: shape (lookback, features), float32.

        Lets a caller (the HTTP API) scale each request on its own and stack many windows into
        one ``predict_scaled_batch`` call.
        """
        matrix = feature_matrix(frame_rows, self.spec)
        lookback = self.spec.lookback
        if len(matrix) < lookback:
            raise DataValidationError(
                f"{self.model_type.value} needs {lookback} rows of history; got {len(matrix)}"
            )
        window = matrix[-lookback:]
        if not np.isfinite(window).all():
            raise DataValidationError(
                f"{self.model_type.value}: the input window holds missing or infinite values"
            )
        scaled: np.ndarray = self.spec.scaler.transform(window).astype(np.float32)
        return scaled

    def predict_scaled_batch(self, windows: np.ndarray) -> np.ndarray:
        """(batch, lookback, features) scaled float32 windows -> (batch, horizon) original units,
        finished as ``predict``'s (the API's batched path must answer what ``predict`` does)."""
        forecast = self._forward(windows)
        target = self.spec.feature_order.index(self.spec.target)
        # The value before each origin (persistence's forecast) is the window's last target.
        last = self.spec.scaler.inverse_column(
            self.spec.target, windows[:, -1, target].astype(np.float64)
        )
        return self.finish(forecast, last)

    def _forward(self, windows: np.ndarray) -> np.ndarray:
        """The net's forecast of scaled windows, in original units, before finishing."""
        require_fitted(self._net is not None, self.model_type.value)
        assert self._net is not None
        expected = (self.spec.lookback, len(self.spec.feature_order))
        if windows.ndim != 3 or tuple(windows.shape[1:]) != expected:
            raise DataValidationError(
                f"windows must have shape (batch, {expected[0]}, {expected[1]}); "
                f"got {windows.shape}"
            )
        # No _apply_threads() here or in predict(): torch threads are process-wide, and the
        # training torch_threads saved with a model must not override the process's serving
        # setting (API_TORCH_THREADS) on every forward. Only fit() applies it.
        self._net.eval()
        out = np.empty((len(windows), self.spec.horizon), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(windows), PREDICT_BATCH):
                chunk = np.ascontiguousarray(windows[start : start + PREDICT_BATCH], np.float32)
                out[start : start + len(chunk)] = self._net(torch.from_numpy(chunk)).numpy()
        return self.spec.scaler.inverse_column(self.spec.target, out)

    def _predict(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        require_fitted(self._net is not None, self.model_type.value)
        matrix = feature_matrix(frame, self.spec)
        idx = check_origins(origins, len(matrix), self.min_history, self.model_type.value)
        # Scale only the rows some window reads; rows at or after the last origin stay unread.
        end = int(idx.max()) if idx.size else 0
        scaled = self.spec.scaler.transform(matrix[:end]).astype(np.float32)
        return self._forward(input_windows(scaled, idx, self.spec.lookback))

    # -- persistence ---------------------------------------------------------------------
    def _save_state(self, directory: Path) -> None:
        require_fitted(self._net is not None, self.model_type.value)
        assert self._net is not None
        torch.save(self._net.state_dict(), directory / STATE_FILE)
        meta = {"residual": self._residual, "last_row_skip": self._last_row_skip}
        (directory / META_FILE).write_text(json.dumps(meta))

    def _load_state(self, directory: Path) -> None:
        path = directory / STATE_FILE
        try:
            meta_path = directory / META_FILE
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            self._residual = bool(meta.get("residual", False))
            self._last_row_skip = bool(meta.get("last_row_skip", False))
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = self._new_net()
            net.load_state_dict(state)
        except (OSError, RuntimeError, ValueError) as exc:
            name = self.model_type.value
            raise ModelError(f"cannot load {name} weights from {path}: {exc}") from exc
        net.eval()
        self._net = net


class GRUForecaster(RecurrentForecaster):
    model_type = ModelType.GRU
    cell = "GRU"


class LSTMForecaster(RecurrentForecaster):
    model_type = ModelType.LSTM
    cell = "LSTM"


#: Ridge penalty of the least-squares start (scaled units): only keeps the solve well posed.
_RIDGE = 1e-3


def _start_from_least_squares(
    net: RecurrentNet, x_train: torch.Tensor, y_train: torch.Tensor, target_index: int
) -> None:
    """Set the head's last-row part to the least-squares fit of the change from the last value.

    The recurrent part starts at zero weight in the head, so the untrained net *is* a linear
    autoregression on the last row's features (seasonal lags, covariates, time features) and
    training only adds what that misses; early stopping keeps it from getting worse on the
    validation tail. Without this start, five epochs of Adam did not reach the linear fit.
    """
    last = x_train[:, -1, :].double()
    change = y_train.double() - last[:, target_index : target_index + 1]
    design = torch.cat((last, torch.ones(len(last), 1, dtype=torch.float64)), dim=1)
    penalty = _RIDGE * len(design) * torch.eye(design.shape[1], dtype=torch.float64)
    gram = design.T @ design + penalty
    coef = torch.linalg.solve(gram, design.T @ change)  # (features + 1, horizon)
    hidden = net.head.in_features - last.shape[1]
    with torch.no_grad():
        net.head.weight[:, :hidden] = 0.0
        net.head.weight[:, hidden:] = coef[:-1].T.float()
        net.head.bias[:] = coef[-1].float()


def _progress_logger(name: str, progress: ProgressCallback | None) -> ProgressCallback:
    def report(event: EpochProgress) -> None:
        logger.debug("%s epoch %d/%d: %s", name, event.epoch, event.epochs, event.model_dump())
        if progress is not None:
            progress(event)

    return report
