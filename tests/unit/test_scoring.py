"""Shared scoring: same origins for model and baselines, composite score, champion ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _stage_data import SEASON, make_spec, synthetic_frame
from flts.domain.messages import BaselineScores
from flts.forecasting.models import create_forecaster
from flts.stages import scoring


def test_composite_score_is_mean_of_ratios_to_persistence() -> None:
    assert scoring.composite_score(5.0, 2.0, 10.0, 4.0) == pytest.approx(0.5)
    assert scoring.composite_score(10.0, 4.0, 10.0, 4.0) == pytest.approx(1.0)
    # Dimensionless: scaling every error by the same unit factor leaves it unchanged.
    assert scoring.composite_score(5e8, 3e8, 1e9, 4e8) == pytest.approx(
        scoring.composite_score(5.0, 3.0, 10.0, 4.0)
    )


def test_composite_score_handles_perfect_persistence() -> None:
    assert scoring.composite_score(0.0, 0.0, 0.0, 0.0) == 1.0
    assert math.isinf(scoring.composite_score(1.0, 1.0, 0.0, 0.0))


def test_score_on_test_uses_same_origins_and_original_units() -> None:
    frame = synthetic_frame(200)
    spec = make_spec(frame, horizon=3)
    model = create_forecaster("SEASONAL_NAIVE", spec)
    scores = scoring.score_on_test(model, frame, spec)
    origins = np.arange(SEASON, len(frame) - 3 + 1)
    assert scores.windows == len(origins)
    assert (scores.first_origin, scores.last_origin) == (int(origins[0]), int(origins[-1]))
    target = frame["down"].to_numpy()
    actual = target[origins[:, None] + np.arange(3)]
    persistence = np.repeat(target[origins - 1][:, None], 3, axis=1)
    expected_rmse = float(np.sqrt(np.mean((persistence - actual) ** 2)))
    assert scores.baselines["PERSISTENCE"].rmse == pytest.approx(expected_rmse)
    # The model under test is seasonal naive itself: identical to its baseline row.
    assert scores.model == scores.baselines["SEASONAL_NAIVE"]
    assert scores.model.rmse > 1.0  # original units (~1e3 scale), not standardised


def _row(model_type: str, rmse: float, mae: float, p_rmse: float = 10.0, p_mae: float = 8.0):
    metrics = BaselineScores(rmse=rmse, mae=mae, mse=rmse**2)
    persistence = BaselineScores(rmse=p_rmse, mae=p_mae, mse=p_rmse**2)
    return scoring.score_row(model_type, f"run-{model_type}", metrics, persistence)


def test_rank_candidates_picks_lowest_composite_that_beats_persistence() -> None:
    rows = [
        _row("PERSISTENCE", 10.0, 8.0),
        _row("SEASONAL_NAIVE", 1.0, 1.0),  # a baseline is never champion
        _row("GRU", 8.0, 7.0),
        _row("LSTM", 6.0, 6.0),
        _row("PROPHET", 12.0, 2.0),  # composite < 1 but RMSE worse than persistence
    ]
    champion = scoring.rank_candidates(rows)
    assert champion is not None
    assert champion.model_type == "LSTM"
    prophet = rows[-1]
    assert prophet.composite_score < 1.0
    assert not prophet.beats_persistence


def test_rank_candidates_none_when_nothing_beats_persistence() -> None:
    rows = [_row("PERSISTENCE", 10.0, 8.0), _row("GRU", 10.0, 8.0), _row("LSTM", 11.0, 9.0)]
    assert scoring.rank_candidates(rows) is None


def test_rank_candidates_tie_break_is_deterministic() -> None:
    a, b = _row("LSTM", 5.0, 4.0), _row("GRU", 5.0, 4.0)
    assert scoring.rank_candidates([a, b]).model_type == "GRU"  # type: ignore[union-attr]
    assert scoring.rank_candidates([b, a]).model_type == "GRU"  # type: ignore[union-attr]
