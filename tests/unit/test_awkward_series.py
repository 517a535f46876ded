"""Constant, zero and negative series go through preprocessing and scoring without crashing,
and the numbers say what they mean (no inf MAPE, nothing promoted over a perfect baseline)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _rawcsv import START, to_csv

from flts.domain.config import PreprocessConfig, TrainConfig
from flts.forecasting.models import create_forecaster
from flts.forecasting.prepare import prepare_datasets
from flts.stages import scoring

CONFIG = PreprocessConfig(lookback=5, horizon=2, season_steps=10)


def _files(down: np.ndarray, train_rows: int = 200) -> tuple[bytes, bytes]:
    times = [str(START + pd.Timedelta(minutes=i)) for i in range(len(down))]
    frame = pd.DataFrame({"time": times, "down": down, "temp": np.linspace(-5.0, 5.0, len(down))})
    return to_csv(frame.iloc[:train_rows]), to_csv(frame.iloc[train_rows:])


def _scores(down: np.ndarray) -> scoring.ModelScores:
    prepared = prepare_datasets(*_files(down), CONFIG, config_hash="h")
    model = create_forecaster("GRU", prepared.spec, TrainConfig(epochs=1, hidden_size=4))
    model.fit(prepared.train)
    return scoring.score_on_test(model, prepared.test, prepared.spec, prepared.test_context_rows)


def test_constant_series_scores_finite_and_promotes_nothing_over_a_perfect_baseline() -> None:
    scores = _scores(np.full(260, 5.0))
    persistence = scores.baselines["PERSISTENCE"]
    assert (persistence.mae, persistence.rmse) == (0.0, 0.0)
    assert np.isfinite(scores.model.mae)
    row = scoring.score_row(
        "GRU", "r", scores.model, persistence, scores.baselines["SEASONAL_NAIVE"]
    )
    assert not row.beats_baselines
    assert scoring.rank_candidates([row]) is None


def test_all_zero_target_has_no_mape_rather_than_inf() -> None:
    scores = _scores(np.zeros(260))
    assert scores.model.mape is None
    assert scores.baselines["PERSISTENCE"].mape is None


def test_negative_values_are_kept_in_original_units() -> None:
    t = np.arange(260)
    down = -50.0 + 20.0 * np.sin(2 * np.pi * t / 10)  # entirely negative, like net export
    scores = _scores(down)
    assert scores.baselines["SEASONAL_NAIVE"].mae == pytest.approx(0.0, abs=1e-9)
    assert scores.model.mape is not None
    assert np.isfinite(scores.model.mape)
