"""Windowing and the training loop for the recurrent forecasters.

Validation is the time-ordered tail of the training windows, with a gap of ``horizon`` windows
before it so no target value is both trained on and validated on. Windows are built once as one
float32 tensor; mini-batches are index gathers, so there is no per-sample Python work.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from flts.domain.config import TrainConfig
from flts.errors import DataValidationError, ModelError
from flts.forecasting.base import EpochProgress, ProgressCallback
from flts.forecasting.models._common import check_training_rows
from flts.forecasting.spec import ForecastSpec
from flts.forecasting.windows import (
    MIN_FIT_WINDOWS,
    actuals,
    input_windows,
    judged_pairs,
    min_fit_windows,
    split_sizes,
)

#: Fewest training windows (after the validation tail and gap) worth fitting on.
MIN_TRAIN_WINDOWS = MIN_FIT_WINDOWS
#: Windows per forward pass when scoring the validation split.
EVAL_BATCH = 4096


@dataclass(frozen=True)
class TrainingWindows:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_val(self) -> int:
        return len(self.x_val)


@dataclass(frozen=True)
class FitResult:
    epochs_run: int
    best_epoch: int
    train_loss: float
    val_loss: float


def min_training_rows(spec: ForecastSpec, validation_fraction: float) -> int:
    """Fewest rows a training frame needs: lookback, horizon, gap, validation and training."""
    return min_fit_windows(spec.horizon, validation_fraction) + spec.lookback + spec.horizon - 1


def split_windows(
    scaled: np.ndarray,
    spec: ForecastSpec,
    validation_fraction: float,
    name: str,
    unobserved: np.ndarray | None = None,
) -> TrainingWindows:
    """Every complete (input, target) window of a scaled training matrix, split in time order.

    Windows with a filled-in target or last input row (``unobserved``, see ``Forecaster.fit``)
    are left out of both parts; the split itself stays positional, so the gap between training
    and validation windows is the same with or without gaps in the data.
    """
    n_rows = len(scaled)
    needed = min_training_rows(spec, validation_fraction)
    why = (
        f"a lookback of {spec.lookback}, a horizon of {spec.horizon}, "
        f"{MIN_TRAIN_WINDOWS} training windows and a validation split"
    )
    check_training_rows(n_rows, needed, name, why)
    origins = np.arange(spec.lookback, n_rows - spec.horizon + 1, dtype=np.int64)
    n_train, n_val = split_sizes(len(origins), spec.horizon, validation_fraction)
    x = np.ascontiguousarray(input_windows(scaled, origins, spec.lookback), dtype=np.float32)
    y = np.ascontiguousarray(actuals(scaled[:, spec.target_index], origins, spec.horizon))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32, copy=False))
    if unobserved is None or not np.any(unobserved):
        return TrainingWindows(xt[:n_train], yt[:n_train], xt[-n_val:], yt[-n_val:])
    judged = np.all(judged_pairs(unobserved, origins, spec.horizon), axis=1)
    train_idx = np.flatnonzero(judged[:n_train])
    val_idx = len(origins) - n_val + np.flatnonzero(judged[-n_val:])
    if len(val_idx) == 0:  # the validation tail is all filled in: early-stop on it anyway
        val_idx = np.arange(len(origins) - n_val, len(origins))
    if len(train_idx) < MIN_TRAIN_WINDOWS:
        raise DataValidationError(
            f"{name}: only {len(train_idx)} of {n_train} training windows have an observed "
            f"last input and targets (the rest hold values filled in by preprocessing); at "
            f"least {MIN_TRAIN_WINDOWS} are needed: supply a training file with fewer gaps"
        )
    train_t, val_t = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
    return TrainingWindows(xt[train_t], yt[train_t], xt[val_t], yt[val_t])


def _mean_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(x), EVAL_BATCH):
            pred = net(x[start : start + EVAL_BATCH])
            err = pred - y[start : start + EVAL_BATCH]
            total += float((err * err).sum())
    return total / (len(x) * y.shape[1])


def _train_epoch(
    net: nn.Module,
    data: TrainingWindows,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    net.train()
    loss_fn = nn.MSELoss()
    order = torch.randperm(data.n_train, generator=generator)
    total = 0.0
    for start in range(0, data.n_train, batch_size):
        idx = order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(data.x_train[idx]), data.y_train[idx])
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total / data.n_train


def fit_network(
    net: nn.Module, data: TrainingWindows, config: TrainConfig, report: ProgressCallback
) -> FitResult:
    """Adam on MSE, early stopping on validation loss; leaves ``net`` with the best weights."""
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    # Epoch 0 competes too: a net that starts from a good fit (the recurrent models' least-squares
    # start) keeps it when no epoch beats it on the validation tail.
    best_val, best_epoch = _mean_loss(net, data.x_val, data.y_val), 0
    best_train = _mean_loss(net, data.x_train, data.y_train)
    if not math.isfinite(best_val):
        best_val = math.inf
    best_state = copy.deepcopy(net.state_dict())
    stale = 0
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        train_loss = _train_epoch(net, data, optimizer, config.batch_size, generator)
        val_loss = _mean_loss(net, data.x_val, data.y_val)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise ModelError(
                f"training diverged at epoch {epoch} (train loss {train_loss}, validation loss "
                f"{val_loss}); lower the learning rate or check the scaler"
            )
        report(
            EpochProgress(
                epoch=epoch, epochs=config.epochs, train_loss=train_loss, val_loss=val_loss
            )
        )
        if val_loss < best_val:
            best_val, best_epoch, best_train, stale = val_loss, epoch, train_loss, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best_state)
    net.eval()
    return FitResult(epoch, best_epoch, best_train, best_val)
