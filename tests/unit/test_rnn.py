"""GRU/LSTM specifics: time-ordered split, early stopping, progress, long horizons, fast path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _synthetic import bundled_problem, synthetic_problem

from flts.domain.config import ModelType, TrainConfig
from flts.errors import DataValidationError
from flts.forecasting.base import EpochProgress
from flts.forecasting.models import create_forecaster
from flts.forecasting.models._training import min_training_rows, split_windows
from flts.forecasting.models.rnn import RecurrentForecaster
from flts.forecasting.spec import ForecastSpec

RNN_TYPES = [ModelType.GRU, ModelType.LSTM]
SMALL = TrainConfig(epochs=2, hidden_size=8, num_layers=1, batch_size=64, torch_threads=1)


def _rnn(model_type: ModelType, spec: ForecastSpec, config: TrainConfig) -> RecurrentForecaster:
    model = create_forecaster(model_type, spec, config)
    assert isinstance(model, RecurrentForecaster)
    return model


def test_validation_is_the_time_ordered_tail_with_a_horizon_gap() -> None:
    spec = synthetic_problem(horizon=4).spec
    # The target column holds the row index, so each window's targets name the rows they use.
    matrix = np.zeros((200, len(spec.feature_order)), dtype=np.float32)
    matrix[:, spec.target_index] = np.arange(200)
    data = split_windows(matrix, spec, validation_fraction=0.2, name="GRU")
    n_windows = 200 - spec.lookback - spec.horizon + 1
    assert data.n_train + spec.horizon + data.n_val == n_windows
    assert float(data.y_train.max()) < float(data.y_val.min())
    assert float(data.y_val.max()) == 199.0
    assert data.x_train.dtype == torch.float32


def test_long_training_spans_are_sampled_over_the_whole_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond MAX_TRAIN_WINDOWS the training windows are a seeded sample from the first to the
    last (every season seen); the validation tail stays whole."""
    from flts.forecasting.models import _training

    spec = synthetic_problem(horizon=2).spec
    matrix = np.zeros((2000, len(spec.feature_order)), dtype=np.float32)
    matrix[:, spec.target_index] = np.arange(2000)
    whole = split_windows(matrix, spec, validation_fraction=0.1, name="GRU")
    monkeypatch.setattr(_training, "MAX_TRAIN_WINDOWS", 300)
    sampled = split_windows(matrix, spec, validation_fraction=0.1, name="GRU", seed=7)
    assert sampled.n_train == 300 < whole.n_train
    first_targets = sampled.y_train[:, 0].numpy()
    assert np.all(np.diff(first_targets) > 0)  # time order kept
    assert first_targets[0] < 0.1 * whole.n_train
    assert first_targets[-1] > 0.9 * whole.n_train
    assert torch.equal(sampled.y_val, whole.y_val)
    again = split_windows(matrix, spec, validation_fraction=0.1, name="GRU", seed=7)
    assert torch.equal(again.y_train, sampled.y_train)


@pytest.mark.parametrize("model_type", RNN_TYPES)
def test_series_just_too_short_names_rows_given_and_needed(model_type: ModelType) -> None:
    p = synthetic_problem()
    given = p.spec.lookback + p.spec.horizon + 3
    needed = min_training_rows(p.spec, SMALL.validation_fraction)
    with pytest.raises(DataValidationError, match=f"has {given} rows; at least {needed}"):
        _rnn(model_type, p.spec, SMALL).fit(p.train.iloc[:given])
    summary = _rnn(model_type, p.spec, SMALL).fit(p.train.iloc[:needed])
    assert summary.train_windows >= 16


def test_progress_reports_every_epoch_and_early_stopping_keeps_the_best() -> None:
    p = synthetic_problem()
    rng = np.random.default_rng(3)
    noise = p.train.copy()
    noise["down"] = 1e8 + 1e7 * rng.standard_normal(len(noise))
    config = TrainConfig(
        epochs=40, patience=2, hidden_size=8, num_layers=1, learning_rate=0.02, torch_threads=1
    )
    events: list[EpochProgress] = []
    summary = _rnn(ModelType.GRU, p.spec, config).fit(noise, progress=events.append)
    assert [e.epoch for e in events] == list(range(1, summary.epochs_run + 1))
    assert all(e.epochs == 40 and e.val_loss is not None for e in events)
    assert summary.best_epoch is not None
    best_seen = min(e.val_loss for e in events if e.val_loss is not None)
    if summary.best_epoch == 0:  # the least-squares start beat every epoch on pure noise
        assert summary.val_loss is not None
        assert summary.val_loss < best_seen
    else:
        assert summary.val_loss == best_seen
    assert summary.epochs_run < 40
    assert summary.epochs_run - summary.best_epoch == 2


@pytest.mark.parametrize("model_type", RNN_TYPES)
def test_a_one_day_horizon_is_forecast_in_one_pass(model_type: ModelType) -> None:
    p = synthetic_problem(n_rows=1700, n_train=1600, horizon=720)
    frame = pd.concat([p.train, p.test], ignore_index=True)
    config = SMALL.model_copy(update={"epochs": 1, "batch_size": 256})
    model = _rnn(model_type, p.spec, config)
    model.fit(p.train)
    pred = model.predict(frame, np.array([1600, 1650, 1700]))
    assert pred.shape == (3, 720)
    assert np.isfinite(pred).all()


@pytest.mark.parametrize("model_type", RNN_TYPES)
def test_fast_path_matches_predict(model_type: ModelType) -> None:
    p = synthetic_problem()
    frame = pd.concat([p.train, p.test], ignore_index=True)
    model = _rnn(model_type, p.spec, SMALL)
    model.fit(p.train)
    origins = np.array([400, 420, 479])
    lookback = p.spec.lookback
    windows = np.stack([model.scale_window(frame.iloc[o - lookback : o]) for o in origins])
    assert windows.dtype == np.float32
    np.testing.assert_allclose(
        model.predict_scaled_batch(windows), model.predict(frame, origins), rtol=1e-6
    )
    with pytest.raises(DataValidationError, match="shape"):
        model.predict_scaled_batch(windows[:, 1:])
    with pytest.raises(DataValidationError, match=f"needs {lookback} rows"):
        model.scale_window(frame.iloc[:3])
    holed = frame.iloc[:lookback].copy()
    holed.loc[2, "down"] = np.nan
    with pytest.raises(DataValidationError, match="missing or infinite"):
        model.scale_window(holed)


def test_missing_values_in_training_data_are_refused() -> None:
    p = synthetic_problem()
    broken = p.train.copy()
    broken.loc[5, "up"] = np.nan
    with pytest.raises(DataValidationError, match=r"columns \['up'\], first at row 5"):
        _rnn(ModelType.LSTM, p.spec, SMALL).fit(broken)


def test_missing_feature_column_is_refused() -> None:
    p = synthetic_problem()
    with pytest.raises(DataValidationError, match="missing feature columns"):
        _rnn(ModelType.GRU, p.spec, SMALL).fit(p.train.drop(columns=["users"]))


def test_gru_on_bundled_data_predicts_in_original_units() -> None:
    p = bundled_problem(train_rows=3000)
    config = TrainConfig(epochs=1, torch_threads=1)
    model = _rnn(ModelType.GRU, p.spec, config)
    summary = model.fit(p.train)
    assert summary.epochs_run == 1
    origins = np.arange(p.spec.lookback, 1030)
    pred = model.predict(p.test, origins)
    target_median = float(np.median(p.train["down"]))
    assert 1e7 < target_median < 1e9
    assert 0.2 * target_median < float(np.median(pred)) < 5.0 * target_median
