"""Evaluate stage: compare every trained model of one config_hash and promote a champion.

Models are compared only when they were scored on the same test windows as the same baselines;
a model that does not beat the better of persistence and seasonal naive (on each of RMSE and
MAE, same origins and steps) is never promoted. The decision is written as a plain
JSON promotion record (history plus ``current.json``) so it survives restarts and audits.
Replaying the same decision reuses the recorded registration instead of registering again.
"""

from __future__ import annotations

import math
from datetime import datetime

import orjson

from flts.domain.config import BASELINE_MODEL_TYPES, ModelType
from flts.domain.messages import BaselineScores, ModelSelected, ModelTrained
from flts.domain.series import champion_alias
from flts.errors import DataValidationError, MessageError
from flts.stages import challenge, scoring
from flts.stages._timefmt import compact_utc, iso_utc
from flts.stages.contracts import (
    EvaluateRequest,
    EvaluateResult,
    EvaluateStageConfig,
    EvaluationReport,
    ObjectRef,
    ScoreRow,
)
from flts.stages.ports import BUCKET_PROMOTION, StageContext

#: Model name inside a run when a SUCCESS event carries no ``model_uri`` (FLTS trainers' name).
DEFAULT_MODEL_NAME = "model"
_REL_TOL = 1e-9


def run(request: EvaluateRequest, config: EvaluateStageConfig, ctx: StageContext) -> EvaluateResult:
    """Rank the results, register the champion if one beats both baselines, record the decision."""
    results = _validated_results(request, config)
    report = build_report(request, results)
    now = ctx.clock.now()
    prefix = f"{request.identifier or 'global'}/{request.config_hash}"
    if report.champion is None:
        ctx.logger.warning("evaluate %s: no promotion: %s", prefix, report.reason)
        ref = _write_record(ctx, prefix, now, _record(None, report, iso_utc(now), request.waived))
        return EvaluateResult(report=report, selected=None, promotion_record=ref)
    champion = results[report.champion]
    row = next(r for r in report.rows if r.model_type == report.champion)
    previous = _current_selection(ctx, prefix, champion.run_id)
    if previous is not None:
        ctx.logger.info(
            "evaluate %s: %s run %s already promoted as version %s; not registering again",
            prefix,
            previous.model_type,
            previous.run_id,
            previous.model_version,
        )
        return EvaluateResult(
            report=report,
            selected=previous,
            promotion_record=ObjectRef(bucket=BUCKET_PROMOTION, key=f"{prefix}/current.json"),
        )
    verdict = None
    if config.challenge_champion and request.identifier:
        verdict = challenge.challenge(ctx, request.identifier, request.config_hash, champion)
    if verdict is not None:
        report = report.model_copy(update={"reason": f"{report.reason}; {verdict.reason}"})
        if not verdict.promote:
            report = report.model_copy(update={"champion": None})
            ctx.logger.warning("evaluate %s: no promotion: %s", prefix, verdict.reason)
            record = _record(None, report, iso_utc(now), request.waived)
            ref = _write_record(ctx, prefix, now, record)
            return EvaluateResult(report=report, selected=None, promotion_record=ref)
    selected = _promote(request, config, ctx, champion, row, iso_utc(now))
    ref = _write_record(ctx, prefix, now, _record(selected, report, iso_utc(now), request.waived))
    if request.identifier:
        challenge.record_champion(ctx, selected)
    ctx.logger.info(
        "evaluate %s: promoted %s run %s (composite %.4f) as %s@%s version %s",
        prefix,
        selected.model_type,
        selected.run_id,
        selected.composite_score,
        config.registered_model_name,
        champion_alias(request.identifier, config.alias),
        selected.model_version,
    )
    return EvaluateResult(report=report, selected=selected, promotion_record=ref)


def _validated_results(
    request: EvaluateRequest, config: EvaluateStageConfig
) -> dict[str, ModelTrained]:
    """One result per model type, all of this lineage, all scored on the same windows."""
    by_type: dict[str, ModelTrained] = {}
    for result in request.results:
        if result.config_hash != request.config_hash or result.identifier != request.identifier:
            raise MessageError(
                f"result of {result.model_type} run {result.run_id} belongs to identifier="
                f"{result.identifier} config_hash={result.config_hash}, not identifier="
                f"{request.identifier} config_hash={request.config_hash}"
            )
        kept = by_type.get(result.model_type)
        # Replays can deliver one model type twice; keep the latest run, deterministically.
        if kept is None or (result.train_end, result.run_id) > (kept.train_end, kept.run_id):
            by_type[result.model_type] = result
    if not by_type:
        raise MessageError(f"cannot evaluate config_hash {request.config_hash}: no results given")
    missing = [
        m.value
        for m in config.expected_model_types
        if m.value not in by_type and m.value not in request.waived
    ]
    if missing:
        raise MessageError(
            f"cannot evaluate config_hash {request.config_hash}: no SUCCESS result for model "
            f"types {missing} (have {sorted(by_type)})"
        )
    _check_same_windows(list(by_type.values()))
    return by_type


def _check_same_windows(results: list[ModelTrained]) -> None:
    """Refuse to compare models that were not scored on identical windows and baselines."""
    for result in results:
        names = [m.value for m in BASELINE_MODEL_TYPES]
        if (
            result.test_windows is None
            or result.horizon is None
            or result.baselines is None
            or any(n not in result.baselines for n in names)
        ):
            raise MessageError(
                f"result of {result.model_type} run {result.run_id} lacks test_windows, horizon "
                f"or baselines {names}; it cannot be compared fairly"
            )
    first = results[0]
    assert first.baselines is not None
    for other in results[1:]:
        assert other.baselines is not None
        same = (other.test_windows, other.horizon) == (first.test_windows, first.horizon) and all(
            math.isclose(
                getattr(first.baselines[n], f), getattr(other.baselines[n], f), rel_tol=_REL_TOL
            )
            for n in first.baselines
            if n in other.baselines
            for f in ("rmse", "mae", "mse")
        )
        if not same:
            raise DataValidationError(
                f"{first.model_type} and {other.model_type} were scored on different test windows "
                f"(windows {first.test_windows} vs {other.test_windows}, horizon {first.horizon} "
                f"vs {other.horizon}, or different baseline errors); refusing to compare them"
            )


def build_report(request: EvaluateRequest, results: dict[str, ModelTrained]) -> EvaluationReport:
    """Score rows for every model and both baselines, and the champion (if any)."""
    any_result = results[min(results)]
    assert any_result.baselines is not None
    persistence = any_result.baselines[scoring.PERSISTENCE]
    naive = any_result.baselines.get(ModelType.SEASONAL_NAIVE.value)
    rows = [
        scoring.score_row(name, None, any_result.baselines[name], persistence, naive)
        for name in (m.value for m in BASELINE_MODEL_TYPES)
    ]
    for name in sorted(results):
        r = results[name]
        row = scoring.score_row(name, r.run_id, _as_baseline(r), persistence, naive)
        if r.test_intervals:
            row = row.model_copy(update={"intervals": tuple(r.test_intervals)})
        if r.persistence_weights:
            row = row.model_copy(update={"persistence_weights": tuple(r.persistence_weights)})
        if r.test_days is not None:
            row = row.model_copy(update={"days": r.test_days})
        rows.append(row)
    champion = scoring.rank_candidates(rows)
    ref_rmse, ref_mae = scoring.reference_errors(persistence, naive)
    if champion is None:
        reason = (
            "no model beat the better of persistence and seasonal naive (composite < 1 and both "
            f"RMSE and MAE below {ref_rmse:.6g} / {ref_mae:.6g}); nothing promoted"
            f"{_closest(rows)}"
        )
    else:
        reason = (
            f"{champion.model_type} has the lowest composite score {champion.composite_score:.4f} "
            "among models that beat the better of persistence and seasonal naive"
        )
    return EvaluationReport(
        identifier=request.identifier,
        config_hash=request.config_hash,
        rows=tuple(rows),
        champion=None if champion is None else champion.model_type,
        reason=reason,
    )


def _as_baseline(result: ModelTrained) -> BaselineScores:
    return BaselineScores(
        rmse=result.test_rmse,
        mae=result.test_mae,
        mse=result.test_mse,
        mape=result.test_mape,
        mae_by_step=result.test_mae_by_step,
        rmse_by_step=result.test_rmse_by_step,
    )


def _promote(
    request: EvaluateRequest,
    config: EvaluateStageConfig,
    ctx: StageContext,
    champion: ModelTrained,
    row: ScoreRow,
    promotion_time: str,
) -> ModelSelected:
    model_uri = champion.model_uri or f"runs:/{champion.run_id}/{DEFAULT_MODEL_NAME}"
    # A fleet series gets its own alias so one series' promotion never moves another's champion.
    alias = champion_alias(request.identifier, config.alias)
    version = ctx.tracker.register_champion(model_uri, config.registered_model_name, alias)
    return ModelSelected(
        model_uri=model_uri,
        model_type=champion.model_type,
        run_id=champion.run_id,
        config_hash=request.config_hash,
        composite_score=row.composite_score,
        test_rmse=champion.test_rmse,
        test_mae=champion.test_mae,
        test_mse=champion.test_mse,
        promotion_time=promotion_time,
        identifier=request.identifier,
        registered_model=config.registered_model_name,
        model_version=version,
    )


def _record(
    selected: ModelSelected | None,
    report: EvaluationReport,
    decided_at: str,
    waived: dict[str, str] | None = None,
) -> dict[str, object]:
    base: dict[str, object] = {} if selected is None else dict(selected.to_wire())
    if waived:  # expected candidates that never came, and why (e.g. left out of a global fit)
        base["waived"] = dict(waived)
    base.update(
        {
            "identifier": report.identifier,
            "config_hash": report.config_hash,
            "champion": report.champion,
            "reason": report.reason,
            "report": report.model_dump(mode="json"),
            "decided_at": decided_at,
        }
    )
    return base


def _write_record(
    ctx: StageContext, prefix: str, now: datetime, record: dict[str, object]
) -> ObjectRef:
    """The dated history entry plus ``current.json`` beside it (overwritten)."""
    body = orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    key = f"{prefix}/{compact_utc(now)}.json"
    ctx.store.ensure_bucket(BUCKET_PROMOTION)
    ctx.store.put_bytes(BUCKET_PROMOTION, key, body, content_type="application/json")
    ctx.store.put_bytes(BUCKET_PROMOTION, f"{prefix}/current.json", body, "application/json")
    return ObjectRef(bucket=BUCKET_PROMOTION, key=key)


def _current_selection(ctx: StageContext, prefix: str, run_id: str) -> ModelSelected | None:
    """The recorded promotion of ``run_id`` for this lineage, if it is the current one."""
    key = f"{prefix}/current.json"
    if not ctx.store.exists(BUCKET_PROMOTION, key):
        return None
    try:
        record = orjson.loads(ctx.store.get_bytes(BUCKET_PROMOTION, key))
        if record.get("run_id") != run_id or not record.get("model_version"):
            return None
        return ModelSelected.model_validate(
            {
                k: v
                for k, v in record.items()
                if k not in {"report", "decided_at", "champion", "reason"}
            }
        )
    except (orjson.JSONDecodeError, ValueError, AttributeError):
        ctx.logger.warning(
            "promotion record %s/%s is unreadable; deciding afresh", BUCKET_PROMOTION, key
        )
        return None


def _closest(rows: list[ScoreRow]) -> str:
    """What came nearest to the gate and what to do about it, for a report without a champion."""
    models = [r for r in rows if not r.is_baseline]
    baselines = sorted((r for r in rows if r.is_baseline), key=lambda r: r.composite_score)
    if not models or not baselines:
        return ""
    near = min(models, key=lambda r: (r.composite_score, r.rmse, r.model_type))
    best = baselines[0].model_type
    if best == scoring.PERSISTENCE:
        why = (
            "the last value is hard to beat on a series that moves little from one step to the "
            "next; at a longer --horizon learned seasonality pays"
        )
    else:
        why = (
            "the value one season earlier is hard to beat on a series that repeats itself; "
            "more training history lets the models learn more than the season"
        )
    return (
        f". Closest: {near.model_type}, MAE {near.mae_vs_best_baseline:.3g}x and RMSE "
        f"{near.rmse_vs_best_baseline:.3g}x the better baseline; {best} is the better forecast "
        f"here ({why})"
    )
