"""Requests, configs and results of the four stages that are not themselves wire messages.

Wire messages (``flts.domain.messages``) are the requests/results where the spec defines one:
train takes a ``TrainingDataReady`` and returns a ``ModelTrained``; infer takes an
``InferenceDataReady`` and returns a ``PerformanceEval``; evaluate returns a ``ModelSelected``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from flts.domain.config import ModelType, TrainConfig
from flts.domain.messages import (
    DayBreakdown,
    InferenceDataReady,
    IntervalScore,
    ModelSelected,
    ModelTrained,
    TrainingDataReady,
)
from flts.stages.bands import DEFAULT_BAND_ADAPTATION


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectRef(Frozen):
    bucket: str
    key: str


# --- preprocess -------------------------------------------------------------------------------


class PreprocessRequest(Frozen):
    """Raw CSVs already in the object store (the CLI uploads local files to ``dataset``)."""

    identifier: str = Field(min_length=1)
    train: ObjectRef
    test: ObjectRef


class PreprocessResult(Frozen):
    training: TrainingDataReady
    inference: InferenceDataReady
    config_hash: str
    #: True when processed data for this (identifier, config_hash) already existed and was reused.
    reused: bool
    train_rows: int
    test_rows: int
    #: Human-readable notes: rows filled, values clipped, inferred step, ...
    notes: tuple[str, ...] = ()


# --- train --------------------------------------------------------------------------------------


class TrainStageConfig(Frozen):
    model_type: ModelType
    train: TrainConfig = TrainConfig()
    experiment: str = "flts"


# --- evaluate -----------------------------------------------------------------------------------


class EvaluateRequest(Frozen):
    identifier: str
    config_hash: str
    #: SUCCESS events of every expected model type for this (identifier, config_hash).
    results: tuple[ModelTrained, ...]
    #: Expected types that will not come for this lineage, with why (a global fit left the
    #: series out); the record lists them.
    waived: dict[str, str] = Field(default_factory=dict)


class EvaluateStageConfig(Frozen):
    expected_model_types: tuple[ModelType, ...] = (ModelType.GRU, ModelType.LSTM, ModelType.PROPHET)
    registered_model_name: str = "flts-forecaster"
    alias: str = "champion"
    #: A new lineage of an identifier must beat its current champion on the new test windows
    #: (``flts.stages.challenge``).
    challenge_champion: bool = True


class ScoreRow(Frozen):
    """One line of the evaluation report: a model or a baseline on the shared test windows."""

    model_type: str
    run_id: str | None
    is_baseline: bool
    rmse: float
    mae: float
    mse: float
    mape: float | None
    rmse_vs_persistence: float
    mae_vs_persistence: float
    #: Ratios to the better baseline on each metric (lower of persistence and seasonal naive).
    rmse_vs_best_baseline: float
    mae_vs_best_baseline: float
    #: Mean of the two ratios to the better baseline: < 1 means better than it on average.
    composite_score: float
    beats_persistence: bool
    #: The promotion gate: composite < 1 and RMSE and MAE both below the better baseline's.
    beats_baselines: bool = False
    #: Errors per horizon step (1..H) over the same origins; empty when not reported.
    mae_by_step: tuple[float, ...] = ()
    rmse_by_step: tuple[float, ...] = ()
    #: Prediction-interval scores per level on the same windows; empty for baselines and for
    #: models without calibrated intervals.
    intervals: tuple[IntervalScore, ...] = ()
    #: Per horizon step, the weight of the model's forecast against persistence (hedged: it lost
    #: to persistence on its held-out tail); empty: served as the model forecast.
    persistence_weights: tuple[float, ...] = ()
    #: The model's errors per test day against persistence's, worst days first; None for
    #: baselines, daily or coarser data and short test periods.
    days: DayBreakdown | None = None


class EvaluationReport(Frozen):
    identifier: str
    config_hash: str
    rows: tuple[ScoreRow, ...]
    champion: str | None
    reason: str


class EvaluateResult(Frozen):
    report: EvaluationReport
    #: None when no model beat persistence (nothing promoted).
    selected: ModelSelected | None
    promotion_record: ObjectRef | None


# --- infer --------------------------------------------------------------------------------------


class InferStageConfig(Frozen):
    model_uri: str
    model_type: str
    run_id: str
    #: Rate at which the served bands adapt to the hits and misses revealed before each origin
    #: (``stages.bands.replayed_bands``: the bands the live loop would have served); 0 serves
    #: the bands calibrated in training unchanged.
    band_adaptation: float = Field(default=DEFAULT_BAND_ADAPTATION, ge=0, le=1)


class InferRequest(Frozen):
    claim: InferenceDataReady
