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


def test_a_model_that_loses_to_seasonal_naive_is_never_champion() -> None:
    """The issue's day-ahead case: LSTM beats persistence (419 < 521) but not seasonal naive."""
    persistence = BaselineScores(rmse=700.0, mae=521.0, mse=700.0**2)
    naive = BaselineScores(rmse=450.0, mae=334.0, mse=450.0**2)
    lstm = BaselineScores(rmse=560.0, mae=419.0, mse=560.0**2)
    row = scoring.score_row("LSTM", "run-lstm", lstm, persistence, naive)
    assert row.beats_persistence
    assert not row.beats_baselines
    assert row.composite_score == pytest.approx((560 / 450 + 419 / 334) / 2)
    assert row.mae_vs_persistence == pytest.approx(419 / 521)
    assert scoring.rank_candidates([row]) is None


def test_reference_is_the_better_baseline_on_each_metric() -> None:
    persistence = BaselineScores(rmse=10.0, mae=6.0, mse=100.0)
    naive = BaselineScores(rmse=8.0, mae=7.0, mse=64.0)
    assert scoring.reference_errors(persistence, naive) == (8.0, 6.0)
    # Below both on RMSE (7 < 8) and MAE (5.9 < 6): promoted.
    good = scoring.score_row(
        "GRU", "g", BaselineScores(rmse=7.0, mae=5.9, mse=49.0), persistence, naive
    )
    # Beats persistence on RMSE only thanks to naive's bar being lower: 9 > 8 fails.
    bad = scoring.score_row(
        "LSTM", "l", BaselineScores(rmse=9.0, mae=5.0, mse=81.0), persistence, naive
    )
    assert good.beats_baselines
    assert not bad.beats_baselines
    assert scoring.rank_candidates([good, bad]) == good


def test_per_step_errors_average_to_the_overall_mae() -> None:
    actual = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]])
    predicted = np.array([[1.0, 1.0, 0.0], [2.0, 5.0, 4.0]])
    from flts.forecasting.metrics import error_metrics

    m = error_metrics(actual, predicted)
    assert m.mae_by_step == pytest.approx((0.0, 1.5, 1.5))
    assert m.rmse_by_step == pytest.approx((0.0, np.sqrt(2.5), np.sqrt(4.5)))
    assert m.mae == pytest.approx(np.mean(m.mae_by_step))
    assert m.n == 6


def test_mape_is_undefined_not_infinite_when_every_actual_is_zero() -> None:
    from flts.forecasting.metrics import error_metrics

    m = error_metrics(np.zeros((4, 2)), np.ones((4, 2)))
    assert m.mape is None
    assert m.mae == 1.0
    # Zeros among other actuals are skipped (undefined there), never divided by.
    partial = error_metrics(np.array([[0.0, 2.0]]), np.array([[1.0, 1.0]]))
    assert partial.mape == pytest.approx(50.0)
