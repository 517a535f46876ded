"""A global regression-on-lags model: one set of weights fitted across many series.

Each series is standardised with its *own* scaler, the one preprocess fitted on that series'
training file (``ForecastSpec.scaler``), so the pooled rows are unit-free and no series reads
another's test data or scale. The design rows and labels are those of the per-series
:class:`~flts.forecasting.models.lag_regression.LinearForecaster` (``lag_features``), stacked over
every series; one ridge per horizon step is fitted on the pooled rows. Each series then gets an
ordinary forecaster, :class:`GlobalLinearForecaster`: the shared weights plus that series' spec
(scaler, feature order), so its predictions come back in that series' original units and it
saves, loads, calibrates, scores and serves like any local model.

Who may join one fit (:func:`plan_global`): the same horizon, step, covariate names and
calendar setting (the design columns must mean the same thing); the largest such group joins,
every other series is left out with its reason. The seasonal periods are those every member
offers and most members can use (``MIN_TRAIN_ORIGINS`` training origins after the lags); a member
too short for them is left out.

Example::

    plan = plan_global([GlobalMember("a", spec_a, train_a), GlobalMember("b", spec_b, train_b)])
    fit = fit_global(plan, TrainConfig())
    fit.models["a"].predict(test_a, origins)   # in a's units
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flts.domain.config import ModelType, TrainConfig
from flts.errors import DataValidationError
from flts.forecasting.base import EpochProgress, FitSummary, ProgressCallback
from flts.forecasting.models import lag_features as lf
from flts.forecasting.models._common import check_finite, feature_matrix
from flts.forecasting.models.lag_regression import MIN_TRAIN_ORIGINS, LinearForecaster, ridge_step
from flts.forecasting.spec import ForecastSpec


class GlobalLinearForecaster(LinearForecaster):
    """The shared weights of a global fit, applied with one series' own spec and scaler.

    ``fit`` on one frame is a global fit over that one series (the conformance contract of
    every forecaster); the fleet path fits many series at once with :func:`fit_global`.
    """

    model_type = ModelType.GLOBAL_LINEAR
    #: The shared weights were fitted on many series; one series' refit would be another model.
    calibrate_out_of_sample = False

    def __init__(self, spec: ForecastSpec, train_config: TrainConfig | None = None) -> None:
        super().__init__(spec, train_config)
        #: How many series the shared weights were fitted on.
        self.fitted_on_series = 0

    def fit(
        self,
        train: pd.DataFrame,
        progress: ProgressCallback | None = None,
        unobserved: np.ndarray | None = None,
    ) -> FitSummary:
        plan = plan_global([GlobalMember("series", self.spec, train, unobserved)])
        if plan.excluded:
            raise DataValidationError(f"{self.model_type.value}: {plan.excluded['series']}")
        fit = fit_global(plan, self.train_config)
        self.adopt(fit.models["series"])
        if progress is not None:
            loss = fit.summary.train_loss or 0.0
            progress(EpochProgress(epoch=1, epochs=1, train_loss=loss, val_loss=None))
        return fit.summary

    def adopt(self, other: GlobalLinearForecaster) -> None:
        """Take ``other``'s fitted weights (keeping this model's spec)."""
        self._periods, self._coef, self._intercept = other._periods, other._coef, other._intercept
        self.fitted_on_series = other.fitted_on_series
        self._fitted = True

    def _state(self) -> dict[str, object]:
        return {**super()._state(), "fitted_on_series": self.fitted_on_series}

    def _restore(self, state: dict[str, object], directory: Path) -> None:
        super()._restore(state, directory)
        self.fitted_on_series = int(state.get("fitted_on_series", 1))  # type: ignore[call-overload]


@dataclass(frozen=True)
class GlobalMember:
    """One series offered to a global fit: its key (the identifier), spec and training frame."""

    key: str
    spec: ForecastSpec
    train: pd.DataFrame
    #: Training rows whose target was filled in (``Forecaster.fit``); None: all observed.
    unobserved: np.ndarray | None = None


@dataclass(frozen=True)
class GlobalPlan:
    """Who joins the fit, with which seasonal periods, and why the others do not."""

    members: tuple[GlobalMember, ...]
    periods: tuple[int, ...]
    excluded: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GlobalFit:
    #: Per member key: a fitted forecaster (shared weights, the member's own spec).
    models: dict[str, GlobalLinearForecaster]
    summary: FitSummary
    periods: tuple[int, ...]


def _signature(spec: ForecastSpec) -> tuple[object, ...]:
    return (spec.horizon, spec.step, lf.covariate_columns(spec))


def _describe(signature: tuple[object, ...]) -> str:
    horizon, step, covariates = signature
    names = ", ".join(str(c) for c in covariates) or "none"  # type: ignore[attr-defined]
    return f"horizon {horizon}, step {step} s, covariates [{names}]"


def plan_global(offered: Sequence[GlobalMember]) -> GlobalPlan:
    """Pick the members of one global fit (see the module docstring); never raises for a bad
    member, it is left out with its reason."""
    excluded: dict[str, str] = {}
    candidates: list[GlobalMember] = []
    for member in offered:
        try:
            check_finite(feature_matrix(member.train, member.spec), member.spec, "global fit")
        except DataValidationError as exc:
            excluded[member.key] = str(exc)
            continue
        candidates.append(member)
    groups: dict[tuple[object, ...], list[GlobalMember]] = {}
    for member in candidates:
        groups.setdefault(_signature(member.spec), []).append(member)
    if not groups:
        return GlobalPlan((), (), excluded)
    chosen = max(groups, key=lambda sig: len(groups[sig]))  # ties: first seen
    for signature, members in groups.items():
        if signature != chosen:
            for member in members:
                excluded[member.key] = (
                    f"its inputs ({_describe(signature)}) differ from those of the "
                    f"{len(groups[chosen])} series fitted together ({_describe(chosen)})"
                )
    joined = groups[chosen]
    periods = _common_periods(joined)
    horizon = joined[0].spec.horizon
    needed = lf.history_needed(periods) + horizon - 1 + MIN_TRAIN_ORIGINS
    fitted: list[GlobalMember] = []
    for member in joined:
        if len(member.train) < needed:
            excluded[member.key] = (
                f"training data has {len(member.train)} rows; at least {needed} are needed "
                f"by the global model (lag history {lf.history_needed(periods)}, "
                f"horizon {horizon}, {MIN_TRAIN_ORIGINS} origins)"
            )
        else:
            fitted.append(member)
    return GlobalPlan(tuple(fitted), periods, excluded)


def _common_periods(members: Sequence[GlobalMember]) -> tuple[int, ...]:
    """Periods every member offers and most members have enough training rows for (a short
    series is left out rather than costing every other series its seasonal lags)."""
    offered = set.intersection(*(set(lf.spec_periods(m.spec)) for m in members))
    usable = [
        set(lf.usable_periods(m.spec, len(m.train), MIN_TRAIN_ORIGINS)) & offered for m in members
    ]
    return tuple(sorted(p for p in offered if 2 * sum(p in u for u in usable) > len(members)))


def fit_global(plan: GlobalPlan, train_config: TrainConfig | None = None) -> GlobalFit:
    """One ridge per horizon step on the pooled, per-series-scaled rows of every member."""
    if not plan.members:
        raise DataValidationError("global fit: no series can join (see the reasons per series)")
    started = time.perf_counter()
    periods = plan.periods
    first = GlobalLinearForecaster(plan.members[0].spec, train_config)
    covariates = lf.covariate_columns(first.spec)
    horizon = first.spec.horizon
    history = lf.history_needed(periods)
    pooled: list[tuple[lf.ScaledSeries, np.ndarray]] = []
    for member in plan.members:
        n_rows = len(member.train)
        series = lf.ScaledSeries.from_frame(
            member.train, member.spec, covariates, n_rows, member.unobserved
        )
        pooled.append((series, np.arange(history, n_rows - horizon + 1, dtype=np.int64)))
    width = lf.n_features(periods, len(covariates), first.with_calendar)
    coef, intercept = np.zeros((horizon, width)), np.zeros(horizon)
    sq_err = 0.0
    for step in range(horizon):
        x, y = lf.judged_rows(
            np.vstack([lf.design(s, o, step, periods, first.with_calendar) for s, o in pooled]),
            np.concatenate([lf.labels(s, o, step) for s, o in pooled]),
        )
        coef[step], intercept[step], mse = ridge_step(x, y, first.alpha)
        sq_err += mse
    models: dict[str, GlobalLinearForecaster] = {}
    for member in plan.members:
        model = GlobalLinearForecaster(member.spec, train_config)
        model._periods, model._coef, model._intercept = periods, coef, intercept
        model.fitted_on_series = len(plan.members)
        model._fitted = True
        models[member.key] = model
    windows = sum(len(o) for _, o in pooled)
    summary = FitSummary(
        seconds=time.perf_counter() - started,
        epochs_run=1,
        train_loss=sq_err / horizon,
        train_windows=windows,
    )
    return GlobalFit(models, summary, periods)
