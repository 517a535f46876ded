"""Scoring shared by train and evaluate: one set of test windows, two baselines, one ranking.

Every model is scored on exactly the origins its baselines are scored on, in the target's
original units, so the numbers in a ``ModelTrained`` event are comparable across trainers.

The reference is the *better* of the two baselines on each metric: ``ref_rmse = min(persistence
rmse, seasonal-naive rmse)`` and likewise for MAE, on the same origins and steps. The composite
score is ``(rmse / ref_rmse + mae / ref_mae) / 2``: dimensionless (comparable across targets and
units), and < 1 means better than the best free baseline on average. It never adds squared
errors to absolute ones. The promotion gate asks for composite < 1 *and* both RMSE and MAE
strictly below the reference, so a model that loses to either baseline on either metric is never
promoted, at any horizon. Ratios to persistence alone are kept in the rows for reading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from flts.domain.config import BASELINE_MODEL_TYPES, ModelType
from flts.domain.messages import BaselineScores, DayBreakdown, IntervalScore
from flts.errors import DataValidationError
from flts.forecasting import diagnosis, windows
from flts.forecasting.base import Forecaster
from flts.forecasting.intervals import interval_metrics
from flts.forecasting.metrics import ErrorMetrics, error_metrics
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec
from flts.stages.bands import replayed_bands
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
    #: The model's prediction intervals on the same origins, one per level; empty when the
    #: model has no calibrated intervals.
    intervals: tuple[IntervalScore, ...] = ()
    #: The model's errors per test day against persistence's (``flts.forecasting.diagnosis``);
    #: None for daily or coarser data and test periods under three days.
    days: DayBreakdown | None = None

    def baseline_scores(self) -> dict[str, BaselineScores]:
        """The baselines in their wire form (``ModelTrained.baselines``)."""
        return {
            name: BaselineScores(
                rmse=m.rmse,
                mae=m.mae,
                mse=m.mse,
                mape=m.mape,
                mae_by_step=list(m.mae_by_step),
                rmse_by_step=list(m.rmse_by_step),
            )
            for name, m in self.baselines.items()
        }


def scoring_origins(
    n_rows: int, spec: ForecastSpec, forecasters: Iterable[Forecaster], context_rows: int = 0
) -> np.ndarray:
    """The shared origins, trimmed so every forecaster has the history it needs."""
    origins = windows.evaluation_origins(n_rows, spec, context_rows)
    need = max(f.min_history for f in forecasters)
    origins = origins[origins >= need]
    if len(origins) == 0:
        raise DataValidationError(
            f"test data has {n_rows} rows; no origin leaves {need} rows of history "
            f"and {spec.horizon} rows of actuals"
        )
    return origins


def score_on_test(
    model: Forecaster,
    test_frame: pd.DataFrame,
    spec: ForecastSpec,
    context_rows: int = 0,
    unobserved: np.ndarray | None = None,
) -> ModelScores:
    """Score ``model`` and both baselines on identical origins of the processed test frame.

    The first ``context_rows`` rows are training-tail history (see ``DatasetMeta.context_rows``):
    read by forecasters, never scored. Filled-in targets (``unobserved``) are not judged, nor
    the forecasts from just after one (``windows.scorable_actuals``).
    """
    from flts.forecasting.models import create_forecaster

    baselines = {mt.value: create_forecaster(mt, spec) for mt in BASELINE_MODEL_TYPES}
    forecasters = [model, *baselines.values()]
    origins = scoring_origins(len(test_frame), spec, forecasters, context_rows)
    target = test_frame[spec.target].to_numpy(dtype=np.float64)
    actual = windows.scorable_actuals(target, origins, spec.horizon, unobserved)
    predicted = {
        name: np.asarray(forecaster.predict(test_frame, origins), dtype=np.float64)
        for name, forecaster in baselines.items()
    }
    point = np.asarray(model.predict(test_frame, origins), dtype=np.float64)
    return ModelScores(
        model=error_metrics(actual, point),
        baselines={name: error_metrics(actual, values) for name, values in predicted.items()},
        days=_errors_by_day(test_frame, spec, origins, actual, point, predicted[PERSISTENCE]),
        windows=len(origins),
        horizon=spec.horizon,
        first_origin=int(origins[0]),
        last_origin=int(origins[-1]),
        intervals=score_intervals(
            model,
            actual,
            point,
            None if model.intervals is None else model.intervals.scales_at(target, origins),
        ),
    )


def _errors_by_day(
    test_frame: pd.DataFrame,
    spec: ForecastSpec,
    origins: np.ndarray,
    actual: np.ndarray,
    point: np.ndarray,
    persistence: np.ndarray,
) -> DayBreakdown | None:
    """:func:`diagnosis.errors_by_day` on the target times of each (origin, step) pair, in the
    run's zone (``--timezone``, else the one the time column's name gives; None: UTC days)."""
    stamps = windows.actuals(test_frame[TIME_COLUMN].to_numpy(), origins, spec.horizon)
    zone = spec.timezone or spec.clock_zone
    return diagnosis.errors_by_day(stamps, actual, point, persistence, zone=zone)


def score_intervals(
    model: Forecaster,
    actual: np.ndarray,
    point: np.ndarray,
    scales: np.ndarray | None = None,
) -> tuple[IntervalScore, ...]:
    """Coverage, mean width and Winkler score per level of the model's bands around ``point``
    (every step of every consecutive origin; ``scales``: their levels for locally scaled
    bands, ``ConformalIntervals.scales_at``), or () for a model without calibrated intervals."""
    if model.intervals is None:
        return ()
    adaptive = replayed_bands(model.intervals, point, actual, scales=scales)
    scores = []
    for level, (lower, upper) in model.intervals.bands(point, scales).items():
        static = interval_metrics(actual, lower, upper, level)
        live = interval_metrics(actual, *adaptive[level], level)
        scores.append(
            IntervalScore(
                **static.model_dump(),
                adaptive_coverage=live.coverage,
                adaptive_mean_width=live.mean_width,
                adaptive_winkler=live.winkler,
            )
        )
    return tuple(scores)


#: IntervalScore's live-loop figures, logged as ``<field>_<level>`` when present.
ADAPTIVE_FIELDS = ("adaptive_coverage", "adaptive_mean_width", "adaptive_winkler")


def interval_metric_values(intervals: Iterable[IntervalScore]) -> dict[str, float]:
    """The tracker's names for interval scores: ``coverage_80``, ``interval_width_80``, ..."""
    metrics: dict[str, float] = {}
    for score in intervals:
        metrics[f"coverage_{score.level}"] = score.coverage
        metrics[f"interval_width_{score.level}"] = score.mean_width
        metrics[f"winkler_{score.level}"] = score.winkler
        for name in ADAPTIVE_FIELDS:
            value = getattr(score, name)
            if value is not None:
                metrics[f"{name}_{score.level}"] = value
    return metrics


def intervals_from_metrics(metrics: dict[str, float]) -> list[IntervalScore] | None:
    """Inverse of :func:`interval_metric_values` for a logged run; None when it logged none."""
    levels = sorted(
        int(name.removeprefix("coverage_"))
        for name in metrics
        if name.startswith("coverage_") and name.removeprefix("coverage_").isdigit()
    )
    scores = [
        IntervalScore(
            level=level,
            coverage=metrics[f"coverage_{level}"],
            mean_width=metrics[f"interval_width_{level}"],
            winkler=metrics[f"winkler_{level}"],
            **{name: metrics.get(f"{name}_{level}") for name in ADAPTIVE_FIELDS},
        )
        for level in levels
        if f"interval_width_{level}" in metrics and f"winkler_{level}" in metrics
    ]
    return scores or None


def _ratio(value: float, reference: float) -> float:
    """``value / reference``; equal zeros count as 1 (no better, no worse than the reference)."""
    if reference > 0:
        return value / reference
    return 1.0 if value == 0 else math.inf


Metrics = ErrorMetrics | BaselineScores


def composite_score(rmse: float, mae: float, reference_rmse: float, reference_mae: float) -> float:
    """Mean of the RMSE and MAE ratios to the reference: < 1 means better than it."""
    return (_ratio(rmse, reference_rmse) + _ratio(mae, reference_mae)) / 2.0


def reference_errors(persistence: Metrics, *others: Metrics | None) -> tuple[float, float]:
    """(rmse, mae) of the better baseline on each metric: the bar a model must clear."""
    given = [persistence, *(m for m in others if m is not None)]
    return min(m.rmse for m in given), min(m.mae for m in given)


def model_composite(metrics: Metrics, baselines: dict[str, Metrics]) -> float:
    """The composite of ``metrics`` against the better of the baselines in ``baselines``."""
    ref_rmse, ref_mae = reference_errors(
        baselines[PERSISTENCE], *(m for n, m in baselines.items() if n != PERSISTENCE)
    )
    return composite_score(metrics.rmse, metrics.mae, ref_rmse, ref_mae)


def _steps(values: list[float] | tuple[float, ...] | None) -> tuple[float, ...]:
    return tuple(values or ())


def score_row(
    model_type: str,
    run_id: str | None,
    metrics: Metrics,
    persistence: Metrics,
    seasonal_naive: Metrics | None = None,
) -> ScoreRow:
    """One report row: the errors, the ratios to persistence and to the better baseline, and the
    verdict (``beats_baselines``; ``beats_persistence`` is kept for readers of old reports)."""
    is_baseline = model_type in {m.value for m in BASELINE_MODEL_TYPES}
    ref_rmse, ref_mae = reference_errors(persistence, seasonal_naive)
    composite = composite_score(metrics.rmse, metrics.mae, ref_rmse, ref_mae)
    beats_reference = (
        not is_baseline and composite < 1.0 and metrics.rmse < ref_rmse and metrics.mae < ref_mae
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
        rmse_vs_best_baseline=_ratio(metrics.rmse, ref_rmse),
        mae_vs_best_baseline=_ratio(metrics.mae, ref_mae),
        composite_score=composite,
        beats_persistence=(
            not is_baseline and metrics.rmse < persistence.rmse and metrics.mae < persistence.mae
        ),
        beats_baselines=beats_reference,
        mae_by_step=_steps(metrics.mae_by_step),
        rmse_by_step=_steps(metrics.rmse_by_step),
    )


def rank_candidates(rows: Iterable[ScoreRow]) -> ScoreRow | None:
    """The champion: the best non-baseline row that beats the better baseline, or None.

    "Beats" means composite < 1 and both RMSE and MAE strictly below the better baseline's (per
    metric, the lower of persistence and seasonal naive). Ties break on (composite, rmse,
    model_type) so the choice never depends on arrival order.
    """
    eligible = [
        r
        for r in rows
        if not r.is_baseline
        and r.composite_score < 1.0
        and r.rmse_vs_best_baseline < 1.0
        and r.mae_vs_best_baseline < 1.0
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda r: (r.composite_score, r.rmse, r.model_type))
