"""Train stage: one claim of processed data in, one trained, scored and logged model out.

Idempotent per (identifier, config_hash, model_type): a replayed claim whose run already
finished re-emits that run's SUCCESS event without training again. The test set is never shown
to ``fit``; it only scores the fitted model next to its baselines on the same windows.

(A few lines over the ~400-line norm: fitting, scoring against the baselines and logging are
one idempotent unit per claim, and read best in one place.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from flts.domain.config import BASELINE_MODEL_TYPES, ModelType
from flts.domain.messages import (
    BaselineScores,
    ModelTrained,
    ModelTrainingFailed,
    ModelTrainingRunning,
    ProgressEvent,
    TrainingDataReady,
    utc_now_iso,
)
from flts.errors import DataValidationError, MessageError, TrackingError, is_transient
from flts.forecasting.base import EpochProgress, FitSummary, Forecaster, ProgressCallback
from flts.forecasting.point_calibration import PointCalibration, calibrate_model, weights_text
from flts.forecasting.spec import ForecastSpec
from flts.stages import scoring
from flts.stages._timefmt import iso_utc
from flts.stages.contracts import TrainStageConfig
from flts.stages.ports import StageContext, TrackedRun

#: Name of the logged model inside its run (``runs:/<run_id>/model``).
MODEL_NAME = "model"
SCORE_REPORT = "score_report.json"
_METRIC_FIELDS = ("rmse", "mae", "mse", "mape")


@dataclass(frozen=True)
class TrainingData:
    train: pd.DataFrame
    test: pd.DataFrame
    spec: ForecastSpec
    config_hash: str
    #: Leading rows of ``test`` that are training-tail history (never scored).
    test_context_rows: int = 0
    #: Rows of ``test`` whose target was filled in (``DatasetMeta.unobserved_target_rows``).
    test_unobserved: np.ndarray | None = None
    #: Rows of ``train`` whose target was filled in: not learned from (``Forecaster.fit``).
    train_unobserved: np.ndarray | None = None


def run(request: TrainingDataReady, config: TrainStageConfig, ctx: StageContext) -> ModelTrained:
    """Train ``config.model_type`` on the claimed data, or return the finished run of a replay.

    ``train_start`` is taken here, so the reported training time covers the whole job (data
    loading, fitting, scoring and logging), not only the fit.
    """
    started_at = ctx.clock.now()
    data: TrainingData | None = None
    config_hash = request.config_hash
    if config_hash is None:
        data = load_training_data(request, ctx)
        config_hash = data.config_hash
    tags = run_tags(request.identifier, config_hash, config.model_type.value)
    existing = ctx.tracker.find_finished_run(config.experiment, tags)
    if existing is not None:
        ctx.logger.info(
            "train %s: run %s already finished for identifier=%s config_hash=%s; not retraining",
            config.model_type.value,
            existing.run_id,
            request.identifier,
            config_hash,
        )
        return from_finished_run(existing, request.identifier, config_hash, config)
    if data is None:
        data = load_training_data(request, ctx)
    return _train(request, config, ctx, data, tags, started_at)


def run_tags(identifier: str, config_hash: str, model_type: str) -> dict[str, str]:
    """The tags that identify one training job; the idempotency key."""
    return {"identifier": identifier, "config_hash": config_hash, "model_type": model_type}


def load_training_data(request: TrainingDataReady, ctx: StageContext) -> TrainingData:
    """Read both processed objects of a claim and check they share one lineage."""
    from flts.forecasting.dataset import read_processed

    if not request.test_object:
        raise MessageError("training-data claim has no test_object; cannot score on the test set")
    train_src = f"s3://{request.bucket}/{request.object}"
    test_src = f"s3://{request.bucket}/{request.test_object}"
    train, train_meta = read_processed(
        ctx.store.get_bytes(request.bucket, request.object), train_src
    )
    test, test_meta = read_processed(
        ctx.store.get_bytes(request.bucket, request.test_object), test_src
    )
    if train_meta.config_hash != test_meta.config_hash:
        raise DataValidationError(
            f"{train_src} has config_hash {train_meta.config_hash} but {test_src} has "
            f"{test_meta.config_hash}; they come from different preprocessing runs"
        )
    if request.config_hash is not None and request.config_hash != train_meta.config_hash:
        raise DataValidationError(
            f"claim says config_hash {request.config_hash} but {train_src} carries "
            f"{train_meta.config_hash}"
        )
    if test_meta.spec.feature_order != train_meta.spec.feature_order:
        raise DataValidationError(
            f"{test_src} features {list(test_meta.spec.feature_order)} differ from "
            f"{train_src} features {list(train_meta.spec.feature_order)}"
        )
    return TrainingData(
        train,
        test,
        train_meta.spec,
        train_meta.config_hash,
        test_meta.context_rows,
        test_meta.unobserved_mask(),
        train_meta.unobserved_mask(),
    )


#: Fits a model (reporting epochs to the callback): the fitted model and its fit summary.
FitFn = Callable[[ProgressCallback], tuple[Forecaster, FitSummary]]


def _train(
    request: TrainingDataReady,
    config: TrainStageConfig,
    ctx: StageContext,
    data: TrainingData,
    tags: dict[str, str],
    started_at: datetime,
) -> ModelTrained:
    from flts.forecasting.models import create_forecaster

    def fit(progress: ProgressCallback) -> tuple[Forecaster, FitSummary]:
        model = create_forecaster(config.model_type, data.spec, config.train)
        return model, model.fit(data.train, progress, unobserved=data.train_unobserved)

    return train_with(request, config, ctx, data, tags, started_at, fit)


def train_with(
    request: TrainingDataReady,
    config: TrainStageConfig,
    ctx: StageContext,
    data: TrainingData,
    tags: dict[str, str],
    started_at: datetime,
    fit: FitFn,
    extra_params: dict[str, Any] | None = None,
) -> ModelTrained:
    """Run ``fit`` inside a tracked run, then calibrate, score on the test windows and log,
    exactly as for every trained model; the SUCCESS event. The global trainer passes a fit
    that hands over its series' share of the pooled fit."""
    model_type = config.model_type.value
    train_start = iso_utc(started_at)
    run_id = ctx.tracker.start_run(
        config.experiment,
        f"{model_type}-{data.config_hash[:12]}",
        {**tags, "flts.stage": "train"},
    )
    running = ModelTrainingRunning(
        model_type=model_type,
        config_hash=data.config_hash,
        run_id=run_id,
        identifier=request.identifier,
    )
    ctx.events.emit(running)  # the spec's RUNNING event carries no key
    try:
        ctx.tracker.log_params(run_id, {**_params(request, config, data), **(extra_params or {})})
        started = time.perf_counter()
        model, summary = fit(_progress(ctx, run_id, request.identifier, data, config))
        fit_seconds = time.perf_counter() - started
        calibrate(model, data.train, ctx, data.train_unobserved)
        scores = scoring.score_on_test(
            model, data.test, data.spec, data.test_context_rows, data.test_unobserved
        )
        logged = ctx.tracker.log_forecaster(run_id, model, MODEL_NAME)
        ctx.tracker.log_metrics(
            run_id, _metrics(scores, summary, fit_seconds, model.point_calibration)
        )
        ctx.tracker.log_artifact_bytes(run_id, SCORE_REPORT, _report(model, scores, summary))
        train_end = iso_utc(ctx.clock.now())
        ctx.tracker.log_params(
            run_id, {"flts.train_start": train_start, "flts.train_end": train_end}
        )
        ctx.tracker.end_run(run_id, "FINISHED")
    except BaseException:
        _fail_run(ctx, run_id)
        raise
    ctx.logger.info(
        "train %s: run %s finished in %.1fs, test rmse %.6g (persistence %.6g) on %d windows",
        model_type,
        run_id,
        fit_seconds,
        scores.model.rmse,
        scores.baselines[scoring.PERSISTENCE].rmse,
        scores.windows,
    )
    return ModelTrained(
        model_type=model_type,
        config_hash=data.config_hash,
        run_id=run_id,
        test_rmse=scores.model.rmse,
        test_mae=scores.model.mae,
        test_mse=scores.model.mse,
        train_start=train_start,
        train_end=train_end,
        identifier=request.identifier,
        artifact_uri=logged.artifact_uri,
        model_uri=logged.model_uri,
        test_mape=scores.model.mape,
        test_windows=scores.windows,
        horizon=scores.horizon,
        baselines=scores.baseline_scores(),
        test_mae_by_step=list(scores.model.mae_by_step),
        test_rmse_by_step=list(scores.model.rmse_by_step),
        test_intervals=list(scores.intervals) or None,
        global_series=_global_series(extra_params or {}),
        persistence_weights=_persistence_weights(model),
        test_days=scores.days,
    )


#: MLflow param of a global model's run: how many series its shared weights were fitted on.
GLOBAL_SERIES_PARAM = "global.series"


def _global_series(params: dict[str, Any]) -> int | None:
    value = params.get(GLOBAL_SERIES_PARAM)
    return None if value is None else int(value)


def failure_event(
    model_type: ModelType,
    claim: TrainingDataReady,
    exc: BaseException,
    dlq_topic: str | None = None,
) -> ModelTrainingFailed | None:
    """The FAILED event for a claim this model could not be trained on, or None when there is
    nothing to announce: an outage of the platform (retrying or replaying trains the model, and
    the evaluator keeps waiting for it) or a claim without a lineage to release."""
    if is_transient(exc) or claim.config_hash is None:
        return None
    return ModelTrainingFailed(
        model_type=model_type.value,
        config_hash=claim.config_hash,
        identifier=claim.identifier,
        error_type=type(exc).__name__,
        error_details=str(exc),
        dlq_topic=dlq_topic,
        failed_at=utc_now_iso(),
    )


def calibrate(
    model: Forecaster,
    train: pd.DataFrame,
    ctx: StageContext,
    unobserved: np.ndarray | None = None,
) -> None:
    """Fit ``model``'s point calibration (hedging toward persistence, a floor, zeros) and then
    its split-conformal bands around the calibrated forecasts, both on the end of the training
    frame (never the test set), at the run's ``interval_levels``. When the training data is too
    short for that, neither, with a warning: the model is still trained, scored and promotable.
    """
    try:
        calibrate_model(model, train, unobserved)
    except DataValidationError as exc:
        ctx.logger.warning(
            "train %s: no prediction intervals for this model: %s",
            model.model_type.value,
            exc,
        )
        model.intervals = None
    point = model.point_calibration
    if point is not None and point.persistence_weights is not None:
        ctx.logger.info(
            "train %s: loses to persistence on the held-out tail; forecasts hedged toward the "
            "last value with weights %s per step (held-out MAE %.4g -> %.4g)",
            model.model_type.value,
            weights_text(point.persistence_weights),
            point.raw_mae,
            point.calibrated_mae,
        )
    if point is not None and point.zero_below > 0.0:
        ctx.logger.info(
            "train %s: forecasts below %.4g become 0 (target 0 on %.0f%% of training rows; "
            "held-out MAE %.4g -> %.4g)",
            model.model_type.value,
            point.zero_below,
            100 * point.zero_share,
            point.raw_mae,
            point.calibrated_mae,
        )


def _persistence_weights(model: Forecaster) -> list[float] | None:
    point = model.point_calibration
    if point is None or point.persistence_weights is None:
        return None
    return list(point.persistence_weights)


def _fail_run(ctx: StageContext, run_id: str) -> None:
    try:
        ctx.tracker.end_run(run_id, "FAILED")
    except TrackingError:
        ctx.logger.exception("could not mark run %s FAILED", run_id)


def _progress(
    ctx: StageContext,
    run_id: str,
    identifier: str,
    data: TrainingData,
    config: TrainStageConfig,
) -> ProgressCallback:
    """Per-epoch losses go to the tracker (step = epoch) and out as progress events."""
    model_type = config.model_type.value

    def report(event: EpochProgress) -> None:
        losses = {"train_loss": event.train_loss}
        if event.val_loss is not None:
            losses["val_loss"] = event.val_loss
        ctx.tracker.log_metrics(run_id, losses, step=event.epoch)
        val = "n/a" if event.val_loss is None else f"{event.val_loss:.5f}"
        ctx.events.emit(
            ProgressEvent(
                stage="train",
                identifier=identifier,
                message=f"{model_type} epoch {event.epoch}/{event.epochs} "
                f"train_loss {event.train_loss:.5f} val_loss {val}",
                config_hash=data.config_hash,
                model_type=model_type,
                epoch=event.epoch,
                epochs=event.epochs,
                train_loss=event.train_loss,
                val_loss=event.val_loss,
                timestamp=iso_utc(ctx.clock.now()),
            ),
            key=f"progress-{model_type}",
        )

    return report


def _params(
    request: TrainingDataReady, config: TrainStageConfig, data: TrainingData
) -> dict[str, Any]:
    spec = data.spec
    params: dict[str, Any] = {
        "model_type": config.model_type.value,
        "identifier": request.identifier,
        "config_hash": data.config_hash,
        "training_object": f"{request.bucket}/{request.object}",
        "test_object": f"{request.bucket}/{request.test_object}",
        "spec.target": spec.target,
        "spec.lookback": spec.lookback,
        "spec.horizon": spec.horizon,
        "spec.step_seconds": spec.step_seconds,
        # Calendar months per step (monthly, quarterly data); 0: the fixed step_seconds.
        "spec.step_months": spec.step_months,
        "spec.season_steps": spec.season_steps,
        "spec.features": ",".join(spec.feature_order),
        # The data-driven configuration (detected seasons, default lags, covariates).
        "spec.seasonal_periods": ",".join(str(p) for p in spec.seasonal_periods) or "none",
        "spec.lags": ",".join(str(k) for k in spec.lags) or "none",
        "spec.covariates": ",".join(c for c in spec.raw_columns if c != spec.target) or "none",
        "spec.holidays": spec.holidays or "none",
        # The zone whose clock the seasonal lags follow (none: UTC steps).
        "spec.clock_zone": spec.clock_zone or "none",
        "test_context_rows": data.test_context_rows,
        # Interpolated by preprocessing, so not learned from (``Forecaster.fit``).
        "train_filled_targets": _count(data.train_unobserved),
    }
    params.update({f"train.{k}": v for k, v in config.train.model_dump(mode="json").items()})
    return params


def _count(flags: np.ndarray | None) -> int:
    return 0 if flags is None else int(np.count_nonzero(flags))


def _metrics(
    scores: scoring.ModelScores,
    summary: FitSummary,
    fit_seconds: float,
    point: PointCalibration | None = None,
) -> dict[str, float]:
    metrics: dict[str, float] = {
        "fit_seconds": fit_seconds,
        "epochs_run": float(summary.epochs_run),
        "test_windows": float(scores.windows),
        "horizon": float(scores.horizon),
    }
    for field in _METRIC_FIELDS:
        value = getattr(scores.model, field)
        if value is not None:
            metrics[f"test_{field}"] = float(value)
        for name, baseline in scores.baselines.items():
            value = getattr(baseline, field)
            if value is not None:
                metrics[f"{name.lower()}_{field}"] = float(value)
    metrics["composite_score"] = scoring.model_composite(scores.model, dict(scores.baselines))
    metrics.update(scoring.interval_metric_values(scores.intervals))
    if point is not None:
        metrics["point_zero_below"] = point.zero_below
        metrics["point_zero_share"] = point.zero_share
        # 1: the forecasts as the model made them; below 1: hedged toward persistence.
        weights = point.persistence_weights or (1.0,)
        metrics["point_persistence_weight_mean"] = float(np.mean(weights))
        for step, weight in enumerate(point.persistence_weights or (), start=1):
            metrics[f"point_persistence_weight_step{step}"] = weight
    for name, errors in [("test", scores.model), *scores.baselines.items()]:
        prefix = name if name == "test" else name.lower()
        for step, (mae, rmse) in enumerate(
            zip(errors.mae_by_step, errors.rmse_by_step, strict=True), start=1
        ):
            metrics[f"{prefix}_mae_step{step}"] = mae
            metrics[f"{prefix}_rmse_step{step}"] = rmse
    return metrics


def _report(model: Forecaster, scores: scoring.ModelScores, summary: FitSummary) -> bytes:
    body = {
        "model_type": model.model_type.value,
        "scores": scores.model_dump(mode="json"),
        "fit": summary.model_dump(mode="json"),
        # The calibrated band offsets per level and step (null: too little data to calibrate).
        "intervals": None if model.intervals is None else model.intervals.model_dump(mode="json"),
        # How point forecasts are finished (a floor, zeros; null: as forecast).
        "point_calibration": (
            None if model.point_calibration is None else model.point_calibration.model_dump()
        ),
        "units": "original units of the target " + repr(model.spec.target),
    }
    return json.dumps(body, indent=2, sort_keys=True).encode()


def from_finished_run(
    run: TrackedRun, identifier: str, config_hash: str, config: TrainStageConfig
) -> ModelTrained:
    """Rebuild a finished run's SUCCESS event from what it logged."""
    metrics, params = run.metrics, run.params
    try:
        horizon = int(metrics["horizon"])
        baselines = {
            mt.value: BaselineScores(
                rmse=metrics[f"{mt.value.lower()}_rmse"],
                mae=metrics[f"{mt.value.lower()}_mae"],
                mse=metrics[f"{mt.value.lower()}_mse"],
                mape=metrics.get(f"{mt.value.lower()}_mape"),
                mae_by_step=_logged_steps(metrics, f"{mt.value.lower()}_mae", horizon),
                rmse_by_step=_logged_steps(metrics, f"{mt.value.lower()}_rmse", horizon),
            )
            for mt in BASELINE_MODEL_TYPES
        }
        return ModelTrained(
            model_type=config.model_type.value,
            config_hash=config_hash,
            run_id=run.run_id,
            test_rmse=metrics["test_rmse"],
            test_mae=metrics["test_mae"],
            test_mse=metrics["test_mse"],
            train_start=params.get("flts.train_start", ""),
            train_end=params.get("flts.train_end", ""),
            identifier=identifier,
            artifact_uri=run.artifact_uri,
            model_uri=run.model_uri or f"runs:/{run.run_id}/{MODEL_NAME}",
            test_mape=metrics.get("test_mape"),
            test_windows=int(metrics["test_windows"]),
            horizon=horizon,
            baselines=baselines,
            test_mae_by_step=_logged_steps(metrics, "test_mae", horizon),
            test_rmse_by_step=_logged_steps(metrics, "test_rmse", horizon),
            test_intervals=scoring.intervals_from_metrics(metrics),
            global_series=_global_series(params),
            persistence_weights=_logged_steps(metrics, "point_persistence_weight", horizon),
        )
    except KeyError as exc:
        raise TrackingError(
            f"finished run {run.run_id} lacks metric {exc}; cannot rebuild its SUCCESS event"
        ) from exc


def _logged_steps(metrics: dict[str, float], prefix: str, horizon: int) -> list[float] | None:
    """Per-step errors logged as ``<prefix>_step<k>``; None for runs logged before they were."""
    keys = [f"{prefix}_step{k}" for k in range(1, horizon + 1)]
    if not all(k in metrics for k in keys):
        return None
    return [metrics[k] for k in keys]
