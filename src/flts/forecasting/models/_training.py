"""Windowing and the training loop for the recurrent forecasters.

Validation is the time-ordered tail of the training windows, with a gap of ``horizon`` windows
before it so no target value is both trained on and validated on. Windows are built once as one
float32 tensor; mini-batches are index gathers, so there is no per-sample Python work.
"""

from __future__ import annotations

import copy
import logging
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

logger = logging.getLogger(__name__)

#: Fewest training windows (after the validation tail and gap) worth fitting on.
MIN_TRAIN_WINDOWS = MIN_FIT_WINDOWS
#: Windows per forward pass when scoring the validation split.
EVAL_BATCH = 4096
#: Most training windows fitted on: beyond it (a year of minutes holds half a million) an epoch
#: takes minutes on two cores and the windows gigabytes, while more of the same days teach the
#: net little. A seeded sample spread over the whole training span is kept (every season seen),
#: as LightGBM samples its rows; the validation tail is always whole.
MAX_TRAIN_WINDOWS = 200_000


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
    seed: int = 0,
) -> TrainingWindows:
    """Every complete (input, target) window of a scaled training matrix, split in time order
    (at most ``MAX_TRAIN_WINDOWS`` training windows, a sample drawn with ``seed``).

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
    train_idx = np.arange(n_train)
    val_idx = np.arange(len(origins) - n_val, len(origins))
    if unobserved is not None and np.any(unobserved):
        judged = np.all(judged_pairs(unobserved, origins, spec.horizon), axis=1)
        train_idx = np.flatnonzero(judged[:n_train])
        if judged[val_idx].any():  # else the tail is all filled in: early-stop on it anyway
            val_idx = val_idx[judged[val_idx]]
        if len(train_idx) < MIN_TRAIN_WINDOWS:
            raise DataValidationError(
                f"{name}: only {len(train_idx)} of {n_train} training windows have an observed "
                f"last input and targets (the rest hold values filled in by preprocessing); at "
                f"least {MIN_TRAIN_WINDOWS} are needed: supply a training file with fewer gaps"
            )
    if len(train_idx) > MAX_TRAIN_WINDOWS:
        logger.warning(
            "%s: fitting on %d of the %d training windows, sampled over the whole span "
            "(more cost minutes per epoch and teach little more)",
            name,
            MAX_TRAIN_WINDOWS,
            len(train_idx),
        )
        rng = np.random.default_rng(seed)
        train_idx = np.sort(rng.choice(train_idx, size=MAX_TRAIN_WINDOWS, replace=False))
    x_train, y_train = _windows(scaled, spec, origins[train_idx])
    x_val, y_val = _windows(scaled, spec, origins[val_idx])
    return TrainingWindows(x_train, y_train, x_val, y_val)


def _windows(
    scaled: np.ndarray, spec: ForecastSpec, origins: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (input, target) windows of ``origins`` as float32 tensors."""
    x = np.ascontiguousarray(input_windows(scaled, origins, spec.lookback), dtype=np.float32)
    y = np.ascontiguousarray(actuals(scaled[:, spec.target_index], origins, spec.horizon))
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32, copy=False))


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
