"""Drift detection and the retraining request of the live loop. Pure decisions, no I/O.

:func:`judge` decides from the rolling live metrics whether the champion degraded:

* its live MAE is above ``persistence_ratio`` times the persistence MAE on the same points
  (a forecaster that loses clearly to "tomorrow looks like now" has stopped fitting), or
* above ``test_ratio`` times its own test MAE from training (the data moved away from what it
  was trained and scored on), or
* the coverage of an interval level fell ``coverage_drop`` below nominal (the bands no longer
  describe the errors: a level shift, a new variance).

It asks for at least ``min_points`` scored points and waits ``cooldown_steps`` of data time
after a request, so one shift gives one retrain, not a storm. :func:`retraining_csvs` cuts the
most recent rows into a training and a test CSV for the claim-check path; the test rows are the
"most recent windows" on which evaluation compares the challenger with the champion.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.prepare import min_train_rows
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec
from flts.stages.live import LiveMetrics

#: Time column of the retraining CSVs.
RETRAIN_TIME_COLUMN = "time"


@dataclass(frozen=True)
class DriftPolicy:
    persistence_ratio: float = 1.5
    test_ratio: float = 2.0
    coverage_drop: float = 0.25
    min_points: int = 48
    cooldown_steps: int = 288


@dataclass(frozen=True)
class DriftDecision:
    retrain: bool
    #: Why (or why not), for logs, the promotion history and the page.
    reason: str


def judge(
    metrics: LiveMetrics,
    policy: DriftPolicy,
    *,
    test_mae: float | None,
    steps_since_request: int | None,
) -> DriftDecision:
    """Whether the rolling live metrics show a degraded champion (see the module docstring).

    ``steps_since_request`` is None when no retraining was requested for this identifier yet.
    """
    if metrics.points < policy.min_points or metrics.mae is None:
        return DriftDecision(False, f"{metrics.points} scored points < {policy.min_points}")
    if steps_since_request is not None and steps_since_request < policy.cooldown_steps:
        left = policy.cooldown_steps - steps_since_request
        return DriftDecision(False, f"cooldown: {left} steps left")
    mae = metrics.mae
    persistence = metrics.persistence_mae
    if persistence is not None and persistence > 0 and mae > policy.persistence_ratio * persistence:
        return DriftDecision(
            True,
            f"live MAE {mae:.4g} is {mae / persistence:.2f}x the persistence MAE "
            f"{persistence:.4g} (threshold {policy.persistence_ratio:g}x) "
            f"over {metrics.points} points",
        )
    if test_mae is not None and test_mae > 0 and mae > policy.test_ratio * test_mae:
        return DriftDecision(
            True,
            f"live MAE {mae:.4g} is {mae / test_mae:.2f}x the champion's test MAE "
            f"{test_mae:.4g} (threshold {policy.test_ratio:g}x) over {metrics.points} points",
        )
    for level, coverage in sorted(metrics.coverage.items()):
        floor = level / 100.0 - policy.coverage_drop
        if coverage < floor:
            return DriftDecision(
                True,
                f"coverage of the {level}% band collapsed to {coverage:.0%} "
                f"(floor {floor:.0%}) over {metrics.points} points",
            )
    ratio = f"{mae / persistence:.2f}x persistence" if persistence else "no persistence yet"
    return DriftDecision(False, f"healthy: live MAE {mae:.4g} ({ratio})")


def retraining_config(spec: ForecastSpec) -> PreprocessConfig:
    """The champion's preprocessing, spelled out, so the challenger differs only by its data."""
    return PreprocessConfig(
        time_col=RETRAIN_TIME_COLUMN,
        target=spec.target,
        feature_columns=spec.raw_columns or (spec.target,),
        step_seconds=spec.step_seconds,
        step_months=spec.step_months or None,
        time_features=spec.time_features,
        lags=spec.lags,
        lookback=spec.lookback,
        horizon=spec.horizon,
        season_steps=spec.season_steps,
        # The champion's holiday inputs, their days read in its zone, and the clock its seasonal
        # lags follow (the retraining CSVs carry UTC offsets, so the zone never shifts their
        # timestamps).
        holidays=spec.holidays,
        timezone=spec.timezone or spec.clock_zone,
        local_clock_lags=spec.clock_zone is not None,
    )


def retraining_frames(
    recent: pd.DataFrame, config: PreprocessConfig, test_rows: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test rows from the most recent rows (``ds`` + raw columns).

    The test part is the newest ``test_rows`` rows; the training part everything before it,
    which must hold what preprocessing needs (``min_train_rows`` plus lag history).
    """
    need = min_train_rows(config) + max(config.lags or (0,)) + test_rows
    if len(recent) < need:
        raise DataValidationError(
            f"retraining needs {need} recent rows (training windows, lag history and "
            f"{test_rows} test rows); the live window holds {len(recent)}"
        )
    return recent.iloc[:-test_rows], recent.iloc[-test_rows:]


def retraining_csv(frame: pd.DataFrame) -> bytes:
    """One part of :func:`retraining_frames` as the CSV preprocessing reads."""
    frame = frame.rename(columns={TIME_COLUMN: RETRAIN_TIME_COLUMN})
    stamps = pd.to_datetime(frame[RETRAIN_TIME_COLUMN]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = frame.assign(**{RETRAIN_TIME_COLUMN: stamps})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.10g")
    return buffer.getvalue().encode()


def retraining_csvs(
    recent: pd.DataFrame, config: PreprocessConfig, test_rows: int
) -> tuple[bytes, bytes]:
    """:func:`retraining_frames` as training and test CSV bytes."""
    train, test = retraining_frames(recent, config, test_rows)
    return retraining_csv(train), retraining_csv(test)
