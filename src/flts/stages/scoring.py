"""Scoring shared by train and evaluate: one set of test windows, two baselines, one ranking.

Every model is scored on exactly the origins its baselines are scored on, in the target's
original units, so the numbers in a ``ModelTrained`` event are comparable across trainers.

The composite score is ``(rmse / persistence_rmse + mae / persistence_mae) / 2``: the mean of
the model's errors relative to the persistence baseline. It is dimensionless (comparable across
targets and units), and < 1 means better than persistence on average. It never adds squared
errors to absolute ones, which would weigh whichever happens to be larger in raw units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from flts.domain.config import BASELINE_MODEL_TYPES, ModelType
from flts.domain.messages import BaselineScores
from flts.errors import DataValidationError
from flts.forecasting import windows
from flts.forecasting.base import Forecaster
from flts.forecasting.metrics import ErrorMetrics, error_metrics
from flts.forecasting.spec import ForecastSpec
from flts.stages.contracts import ScoreRow

PERSISTENCE = ModelType.PERSISTENCE.value


class ModelScores(BaseModel):
    """A model's errors and its baselines' errors on the same test origins."""

    model_config = ConfigDict(frozen=True)

    model: ErrorMetrics
    #: Baseline model type value -> errors on the same origins.
    baselines: dict[str, ErrorMetrics]
    windows: int
    horizon: int
    first_origin: int
    last_origin: int

    def baseline_scores(self) -> dict[str, BaselineScores]:
        """The baselines in their wire form (``ModelTrained.baselines``)."""
        return {
            name: BaselineScores(rmse=m.rmse, mae=m.mae, mse=m.mse, mape=m.mape)
            for name, m in self.baselines.items()
        }


def scoring_origins(
    n_rows: int, spec: ForecastSpec, forecasters: Iterable[Forecaster]
) -> np.ndarray:
    """The shared origins, trimmed so every forecaster has the history it needs."""
    origins = windows.evaluation_origins(n_rows, spec)
    need = max(f.min_history for f in forecasters)
    origins = origins[origins >= need]
    if len(origins) == 0:
        raise DataValidationError(
            f"test data has {n_rows} rows; no origin leaves {need} rows of history "
            f"and {spec.horizon} rows of actuals"
        )
    return origins


def score_on_test(model: Forecaster, test_frame: pd.DataFrame, spec: ForecastSpec) -> ModelScores:
    """Score ``model`` and both baselines on identical origins of the processed test frame."""
    from flts.forecasting.models import create_forecaster

    baselines = {mt.value: create_forecaster(mt, spec) for mt in BASELINE_MODEL_TYPES}
    origins = scoring_origins(len(test_frame), spec, [model, *baselines.values()])
    target = test_frame[spec.target].to_numpy(dtype=np.float64)
    actual = windows.actuals(target, origins, spec.horizon)
    scores = {
        name: error_metrics(actual, forecaster.predict(test_frame, origins))
        for name, forecaster in baselines.items()
    }
    return ModelScores(
        model=error_metrics(actual, model.predict(test_frame, origins)),
        baselines=scores,
        windows=len(origins),
        horizon=spec.horizon,
        first_origin=int(origins[0]),
        last_origin=int(origins[-1]),
    )


def _ratio(value: float, reference: float) -> float:
    """``value / reference``; equal zeros count as 1 (no better, no worse than persistence)."""
    if reference > 0:
        return value / reference
    return 1.0 if value == 0 else math.inf


def composite_score(
    rmse: float, mae: float, persistence_rmse: float, persistence_mae: float
) -> float:
    """Mean of the RMSE and MAE ratios to persistence: < 1 means better than persistence."""
    return (_ratio(rmse, persistence_rmse) + _ratio(mae, persistence_mae)) / 2.0


def score_row(
    model_type: str,
    run_id: str | None,
    metrics: ErrorMetrics | BaselineScores,
    persistence: ErrorMetrics | BaselineScores,
) -> ScoreRow:
    """One report row: the errors, the ratios to persistence and the verdict."""
    is_baseline = model_type in {m.value for m in BASELINE_MODEL_TYPES}
    composite = composite_score(metrics.rmse, metrics.mae, persistence.rmse, persistence.mae)
    beats = (
        not is_baseline
        and composite < 1.0
        and metrics.rmse < persistence.rmse
        and metrics.mae < persistence.mae
    )
    return ScoreRow(
        model_type=model_type,
        run_id=run_id,
        is_baseline=is_baseline,
        rmse=metrics.rmse,
        mae=metrics.mae,
        mse=metrics.mse,
        mape=metrics.mape,
        rmse_vs_persistence=_ratio(metrics.rmse, persistence.rmse),
        mae_vs_persistence=_ratio(metrics.mae, persistence.mae),
        composite_score=composite,
        beats_persistence=beats,
    )


def rank_candidates(rows: Iterable[ScoreRow]) -> ScoreRow | None:
    """The champion: the best non-baseline row that beats persistence, or None.

    "Beats persistence" means composite < 1 and both RMSE and MAE strictly below persistence's.
    Ties break on (composite, rmse, model_type) so the choice never depends on arrival order.
    """
    eligible = [
        r
        for r in rows
        if not r.is_baseline
        and r.composite_score < 1.0
        and r.rmse_vs_persistence < 1.0
        and r.mae_vs_persistence < 1.0
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda r: (r.composite_score, r.rmse, r.model_type))
