"""Global train stage (issue 13): one model fitted across the series of a fleet.

In: the training-data claims of a fleet's series (``GlobalTrainingRequested``). Each claim is
read like the per-series trainer reads it; :func:`flts.forecasting.models.global_linear.plan_global`
decides who can join (same horizon, step and covariates; long enough) and the rest are left out
with a reason. One pooled fit over the members' per-series-scaled rows
(:func:`~flts.forecasting.models.global_linear.fit_global`), then, per member, an ordinary tracked
run: the shared weights with that series' own scaler, conformal intervals calibrated on that
series' training file, scores on that series' test windows next to its own baselines. Out: one
``ModelTrained`` per member (identifier and config_hash of that series, model type
``GLOBAL_LINEAR``, ``global_series`` = members) and a ``GlobalTrainingDone`` naming the members
and every left-out series with its reason.

Idempotent: a member whose run for the same group (the members and their config_hash) already
finished is re-emitted from that run; when every member has one, nothing is fitted again.
"""

from __future__ import annotations

from dataclasses import dataclass

from flts.domain.config import canonical_json, sha256_hex
from flts.domain.messages import (
    GlobalExclusion,
    GlobalTrainingDone,
    GlobalTrainingRequested,
    ModelTrained,
    TrainingDataReady,
)
from flts.errors import DataValidationError, MessageError, ObjectNotFoundError
from flts.forecasting.base import FitSummary, Forecaster, ProgressCallback
from flts.forecasting.models.global_linear import (
    GlobalFit,
    GlobalLinearForecaster,
    GlobalMember,
    fit_global,
    plan_global,
)
from flts.stages import train
from flts.stages.contracts import TrainStageConfig
from flts.stages.ports import StageContext, TrackedRun

#: Tag and param naming the group of series one global fit covered.
GROUP_TAG = "global_group"


@dataclass(frozen=True)
class GlobalTrainingOutcome:
    #: One SUCCESS per member, in request order.
    trained: tuple[ModelTrained, ...]
    done: GlobalTrainingDone


def group_hash(members: list[tuple[str, str]]) -> str:
    """Which series (identifier, config_hash) one global fit covered: part of its runs' tags."""
    return sha256_hex(canonical_json(sorted(members)))[:16]


def run(
    request: GlobalTrainingRequested, config: TrainStageConfig, ctx: StageContext
) -> GlobalTrainingOutcome:
    started_at = ctx.clock.now()
    model_type = config.model_type.value
    claims: dict[str, TrainingDataReady] = {}
    for claim in request.claims:  # a repeated identifier: the last claim wins
        claims[claim.identifier] = claim
    excluded: dict[str, GlobalExclusion] = {}
    loaded: dict[str, train.TrainingData] = {}
    for identifier, claim in claims.items():
        try:
            loaded[identifier] = train.load_training_data(claim, ctx)
        except (DataValidationError, MessageError, ObjectNotFoundError) as exc:
            excluded[identifier] = GlobalExclusion(
                identifier=identifier,
                config_hash=claim.config_hash,
                reason=f"its processed data cannot be used: {exc}",
            )
    plan = plan_global(
        [GlobalMember(i, d.spec, d.train, d.train_unobserved) for i, d in loaded.items()]
    )
    for identifier, reason in plan.excluded.items():
        excluded[identifier] = GlobalExclusion(
            identifier=identifier, config_hash=loaded[identifier].config_hash, reason=reason
        )
    members = [m.key for m in plan.members]
    group = group_hash([(i, loaded[i].config_hash) for i in members])
    tags = {
        i: {**train.run_tags(i, loaded[i].config_hash, model_type), GROUP_TAG: group}
        for i in members
    }
    finished: dict[str, TrackedRun | None] = {
        i: ctx.tracker.find_finished_run(config.experiment, tags[i]) for i in members
    }
    fit: GlobalFit | None = None
    if any(run is None for run in finished.values()):
        fit = fit_global(plan, config.train)
        ctx.logger.info(
            "train %s: one fit over %d series (periods %s) in %.2fs, %d pooled windows",
            model_type,
            len(members),
            list(fit.periods),
            fit.summary.seconds,
            fit.summary.train_windows,
        )
    results: list[ModelTrained] = []
    for identifier in members:
        data = loaded[identifier]
        existing = finished[identifier]
        if existing is not None:
            results.append(train.from_finished_run(existing, identifier, data.config_hash, config))
            continue
        assert fit is not None  # fitted above whenever a member has no finished run
        model = fit.models[identifier]
        params = {
            train.GLOBAL_SERIES_PARAM: len(members),
            "global.group": group,
            "global.periods": ",".join(str(p) for p in fit.periods) or "none",
            "global.pooled_windows": fit.summary.train_windows,
        }
        results.append(
            train.train_with(
                claims[identifier],
                config,
                ctx,
                data,
                tags[identifier],
                started_at,
                _handed_over(model, fit.summary),
                extra_params=params,
            )
        )
    for identifier, exclusion in excluded.items():
        ctx.logger.warning("train %s: %s left out: %s", model_type, identifier, exclusion.reason)
    done = GlobalTrainingDone(
        identifier=request.identifier,
        model_type=model_type,
        members=members,
        excluded=[excluded[i] for i in claims if i in excluded],
    )
    return GlobalTrainingOutcome(tuple(results), done)


def _handed_over(
    model: GlobalLinearForecaster, summary: FitSummary
) -> train.FitFn:  # the pooled fit is done; each series' run records its share of it
    def fit(progress: ProgressCallback) -> tuple[Forecaster, FitSummary]:
        return model, summary

    return fit
