"""Wire messages: one frozen pydantic model per event of the Kafka contract.

Field names are exactly those of the spec (shared/spec/kafka-usage-report.md). Readers are
tolerant: unknown fields are kept (``extra="allow"``) so a message relayed by FLTS never loses
what another producer added. Fields FLTS adds beyond the spec are optional, so messages from
existing producers still decode. Writers always emit every spec field (``to_wire``).

Longer than the ~400-line norm on purpose: the whole wire contract in one module, which
``schemas/`` is generated from (``make schemas``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flts.errors import MessageError

SCHEMA_VERSION: Literal[1] = 1


class WireMessage(BaseModel):
    """Base of every wire message: frozen, tolerant of extra fields, strict about types.

    Floats must be finite: JSON has no NaN or infinity, so such a message could not round-trip.
    """

    model_config = ConfigDict(
        frozen=True, extra="allow", populate_by_name=True, allow_inf_nan=False
    )
    #: Optional fields written even when null (spec fields that may legitimately be null).
    _always_emitted: ClassVar[frozenset[str]] = frozenset()

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict sent on the wire.

        Every spec field is present. Optional fields FLTS added are left out while unset, so a
        consumer of the existing pipeline sees the spec's fields plus only what carries data.
        """
        data = self.model_dump(mode="json")
        for name, info in type(self).model_fields.items():
            unset_optional = not info.is_required() and info.default is None
            if unset_optional and data.get(name) is None and name not in self._always_emitted:
                data.pop(name, None)
        return data

    def to_json_bytes(self) -> bytes:
        return orjson.dumps(self.to_wire())


class ClaimCheck(WireMessage):
    """A pointer to an object in S3-compatible storage (the claim-check pattern)."""

    bucket: str = Field(min_length=1)
    object: str = Field(min_length=1)
    size: int = Field(ge=0, le=2**63 - 1)  # a Kafka-side int64
    v: Literal[1] = SCHEMA_VERSION
    identifier: str = Field(min_length=1)
    # Added by FLTS (optional for compatibility): the lineage hash computed once by preprocess.
    config_hash: str | None = None


class TrainingDataReady(ClaimCheck):
    """Topic ``training-data``: the processed training set is ready. Key ``train-claim``."""

    # Added by FLTS (optional for compatibility): key of the processed test set in the same
    # bucket, so a trainer can score its model on exactly the test windows evaluation uses.
    test_object: str | None = None


class InferenceDataReady(ClaimCheck):
    """Topic ``inference-data``: the processed test set is ready. Key ``inference-claim``."""

    object_key: str = Field(min_length=1)
    operation: str = "post: test data"


class PreprocessRequested(WireMessage):
    """Topic ``preprocess-requests`` (added by FLTS): raw CSVs in the store, to preprocess.

    The on-request mode of the preprocess service; ``config`` holds PreprocessConfig fields.
    """

    identifier: str = Field(min_length=1)
    train_bucket: str = Field(min_length=1)
    train_object: str = Field(min_length=1)
    test_bucket: str = Field(min_length=1)
    test_object: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    v: Literal[1] = SCHEMA_VERSION


class ModelTrainingRunning(WireMessage):
    """Topic ``model-training``, status RUNNING: a trainer started on a claim."""

    model_type: str
    config_hash: str
    run_id: str
    status: Literal["RUNNING"] = "RUNNING"
    identifier: str


class ModelTrainingFailed(WireMessage):
    """Topic ``model-training``, status FAILED (added by FLTS): a trainer could not train on a
    claim for a reason of the data or the model, not of the platform. The claim itself is in
    the trainer's DLQ (``dlq_topic``; None under KFP, where this is the train task's output);
    the evaluator stops waiting for this model type in the lineage and ranks the others. Key
    ``trained-<MODEL_TYPE>``, as the SUCCESS it replaces.
    """

    model_type: str
    config_hash: str
    status: Literal["FAILED"] = "FAILED"
    identifier: str
    error_type: str
    error_details: str
    failed_at: str
    dlq_topic: str | None = None


class BaselineScores(BaseModel):
    """Errors of one baseline on exactly the windows the model was scored on."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    rmse: float
    mae: float
    mse: float
    mape: float | None = None
    #: Errors per horizon step (1..H) over the same origins (added by FLTS; None from old events).
    mae_by_step: list[float] | None = None
    rmse_by_step: list[float] | None = None


class IntervalScore(BaseModel):
    """How one level's prediction intervals did on the test windows (added by FLTS)."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    #: Nominal coverage in percent (80 means the 10% and 90% conformal quantiles).
    level: int
    #: Share of test actuals inside [lower, upper], 0..1.
    coverage: float
    #: Mean of upper - lower, in the target's original units.
    mean_width: float
    #: Mean Winkler (interval) score: width + 2/alpha * miss distance. Lower is better.
    winkler: float
    #: The same three for the bands the live loop would have served over the test period,
    #: origin after origin, scaled after each revealed hit or miss (``flts.stages.bands``,
    #: the default LIVE_BAND_ADAPTATION); None for events from before they existed.
    adaptive_coverage: float | None = None
    adaptive_mean_width: float | None = None
    adaptive_winkler: float | None = None


class DayError(BaseModel):
    """One calendar day of the test period: the model's and persistence's MAE over the
    (origin, step) pairs whose target falls on it (``flts.forecasting.diagnosis``)."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    date: str
    #: Abbreviated English weekday name ("Mon"), as the day is read (the data's clock zone).
    weekday: str
    pairs: int
    mae: float
    persistence_mae: float
    #: How much this day adds to the model's MAE over the whole test period beyond what
    #: persistence's errors on it add (negative: the day helps the model).
    excess_mae: float


class DayBreakdown(BaseModel):
    """The model's errors per test day, summarised: how many full days, the median day's MAE /
    persistence MAE, and the days that cost the model most."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    days: int
    #: Judged (origin, step) pairs over the whole test period, partial days included.
    pairs: int
    #: None when persistence was exact on every day (no ratio is defined).
    median_ratio: float | None
    worst: tuple[DayError, ...]


class ModelTrained(WireMessage):
    """Topic ``model-training``, status SUCCESS: a model is trained, scored and logged.

    Metrics are in the target's original units, on the test windows only.
    """

    model_type: str
    config_hash: str
    run_id: str
    status: Literal["SUCCESS"] = "SUCCESS"
    test_rmse: float
    test_mae: float
    test_mse: float
    train_start: str
    train_end: str
    identifier: str
    artifact_uri: str
    # Added by FLTS: what evaluation needs to compare models honestly.
    model_uri: str | None = None
    test_mape: float | None = None
    test_windows: int | None = None
    horizon: int | None = None
    baselines: dict[str, BaselineScores] | None = None
    #: The model's errors per horizon step (1..H), same origins as the baselines'.
    test_mae_by_step: list[float] | None = None
    test_rmse_by_step: list[float] | None = None
    #: Prediction-interval scores per level on the same test origins; None when the model has
    #: no calibrated intervals (too little training data) or came from an older trainer.
    test_intervals: list[IntervalScore] | None = None
    #: Set on a global model's SUCCESS (issue 13): how many series the shared weights were
    #: fitted on (this series among them). Absent for a per-series model.
    global_series: int | None = None
    #: Per horizon step, the weight of the model's forecast against persistence when it lost to
    #: persistence on its held-out tail and was hedged toward the last value
    #: (``flts.forecasting.point_calibration``); None: served as the model forecast.
    persistence_weights: list[float] | None = None
    #: The model's errors per calendar day of the test period against persistence's (the
    #: worst days first); None for daily or coarser data, test periods under three days,
    #: events rebuilt from a finished MLflow run, and events from before it existed.
    test_days: DayBreakdown | None = None


class GlobalTrainingRequested(WireMessage):
    """Topic ``global-training-requests`` (added by FLTS, issue 13): fit one global model over
    these series' training claims. ``identifier`` names the fleet run's group
    (``<run>/_global``, which no series id can take: sanitised ids never start with ``_``)."""

    identifier: str = Field(min_length=1)
    model_type: str = "GLOBAL_LINEAR"
    claims: list[TrainingDataReady] = Field(min_length=1)
    v: Literal[1] = SCHEMA_VERSION


class GlobalExclusion(BaseModel):
    """A series offered to a global fit that did not join it, and why."""

    model_config = ConfigDict(frozen=True, extra="allow")

    identifier: str
    config_hash: str | None = None
    reason: str


class GlobalTrainingDone(WireMessage):
    """Topic ``global-training-results`` (added by FLTS, issue 13): a global fit finished.

    Every member also got its own ``model-training`` SUCCESS; an excluded series gets none, and
    the evaluator stops waiting for ``model_type`` for that (identifier, config_hash).
    """

    identifier: str
    model_type: str
    members: list[str]
    excluded: list[GlobalExclusion] = Field(default_factory=list)
    v: Literal[1] = SCHEMA_VERSION


class ModelSelected(WireMessage):
    """Topic ``model-selected``: the evaluator promoted a champion. Key ``promotion``."""

    model_uri: str
    model_type: str
    run_id: str
    config_hash: str
    composite_score: float
    test_rmse: float
    test_mae: float
    test_mse: float
    promotion_time: str
    identifier: str
    # Added by FLTS.
    registered_model: str | None = None
    model_version: str | None = None


class PerformanceEval(WireMessage):
    """Topic ``performance-eval``: metrics of one batch inference (monitoring sink)."""

    identifier: str
    config_hash: str
    model_type: str
    run_id: str
    rows: int
    windows: int
    latency_ms: float
    latency_per_window_ms: float
    rmse: float | None = None
    mae: float | None = None
    mse: float | None = None
    mape: float | None = None
    output_bucket: str
    output_object: str
    timestamp: str
    v: Literal[1] = SCHEMA_VERSION
    # Added by FLTS (issue 12): rolling live metrics of the live loop. ``kind`` is "live" on
    # those events (absent on batch events); errors are over the last ``live_points`` scored
    # (origin, step) points, persistence on exactly the same points.
    kind: str | None = None
    live_points: int | None = None
    live_mae: float | None = None
    live_persistence_mae: float | None = None
    #: Share of scored points inside each level's band, by level ("80", "95").
    live_coverage: dict[str, float] | None = None
    observations: int | None = None
    forecasts: int | None = None
    dropped_out_of_order: int | None = None
    dropped_duplicate: int | None = None
    gap_filled_steps: int | None = None


class DlqRecord(WireMessage):
    """Topic ``DLQ-<base-topic>``: a message that could not be processed, with why."""

    _always_emitted: ClassVar[frozenset[str]] = frozenset({"payload"})

    operation: str
    status: str
    error_details: str
    payload: Any = None
    timestamp: str
    # Added by FLTS: where the failed message came from, when known.
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    error_type: str | None = None


class ProgressEvent(WireMessage):
    """Topic ``flts-progress`` (added by FLTS): live progress of long work, for humans."""

    stage: str
    identifier: str
    message: str
    config_hash: str | None = None
    model_type: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    #: Seconds the stage spent on its own work, on a "done" event.
    duration_s: float | None = None
    timestamp: str = Field(default_factory=lambda: utc_now_iso())


# --- the live loop (added by FLTS, issue 12) ------------------------------------------------


class Observation(WireMessage):
    """Topic ``observations`` (added by FLTS), key = identifier: one measured row, live.

    ``values`` maps each raw column the champion reads (target first) to a number in original
    units; extra columns are ignored. Strings, booleans, NaN and infinity are refused, so a
    malformed row goes to ``DLQ-observations`` naming the field.
    """

    identifier: str = Field(min_length=1)
    #: Time of the measurement, ISO 8601 (a naive time is read as UTC).
    timestamp: datetime
    values: dict[str, Annotated[float, Field(strict=True)]] = Field(min_length=1)
    #: When the producer sent it (ISO 8601, UTC); lets the service measure end-to-end latency.
    sent_at: str | None = None
    #: History only (a replay's warm-up rows): fills the window, no forecast, never scored.
    warmup: bool | None = None


class ForecastStep(BaseModel):
    """One horizon step of a live forecast; ``lower_<level>``/``upper_<level>`` keys carry the
    band of each calibrated level (absent when the champion has no intervals)."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        allow_inf_nan=False,
        json_schema_extra={"patternProperties": {"^(lower|upper)_[0-9]{1,2}$": {"type": "number"}}},
    )

    step: int = Field(ge=1)
    target_timestamp: str
    point: float


class LiveForecast(WireMessage):
    """Topic ``forecasts`` (added by FLTS), key = identifier: the next H steps after one
    observation, in original units, from the champion answering for that identifier."""

    identifier: str
    #: Timestamp of the last observation the forecast read (the origin), ISO 8601 UTC.
    origin_timestamp: str
    run_id: str
    model_type: str
    config_hash: str
    horizon: int = Field(ge=1)
    steps: list[ForecastStep]
    #: True when the window was completed by filling missing steps (as preprocessing does).
    gap_filled: bool = False
    gap_filled_steps: int = 0
    #: Interval levels present in ``steps`` (empty when the model is not calibrated).
    levels: list[int] = Field(default_factory=list)
    sent_at: str | None = None
    timestamp: str = Field(default_factory=lambda: utc_now_iso())
    v: Literal[1] = SCHEMA_VERSION


M = TypeVar("M", bound=WireMessage)


def utc_now_iso() -> str:
    """UTC timestamp in the ISO form the spec uses (``2025-11-24T12:00:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _load_object(what: str, raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    try:
        data = orjson.loads(raw) if isinstance(raw, bytes | str) else raw
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"{what}: payload is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise MessageError(f"{what}: payload must be a JSON object, got {type(data).__name__}")
    return data


def decode(model: type[M], raw: bytes | str | dict[str, Any]) -> M:
    """Decode raw bytes/JSON/dict into ``model``; raise MessageError naming the bad fields."""
    data = _load_object(model.__name__, raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MessageError(f"{model.__name__}: {problems}") from exc


ModelTrainingEvent = ModelTrainingRunning | ModelTrained | ModelTrainingFailed


def decode_model_training(raw: bytes | str | dict[str, Any]) -> ModelTrainingEvent:
    """The model-training topic carries three events; dispatch on ``status``."""
    data = _load_object("model-training event", raw)
    status = data.get("status")
    if status == "RUNNING":
        return decode(ModelTrainingRunning, data)
    if status == "SUCCESS":
        return decode(ModelTrained, data)
    if status == "FAILED":
        return decode(ModelTrainingFailed, data)
    raise MessageError(
        f"model-training event: unknown status {status!r} (RUNNING, SUCCESS or FAILED)"
    )


#: Every wire message, by the name its JSON Schema file carries.
ALL_MESSAGES: dict[str, type[WireMessage]] = {
    "preprocess-requests": PreprocessRequested,
    "training-data": TrainingDataReady,
    "inference-data": InferenceDataReady,
    "model-training.running": ModelTrainingRunning,
    "model-training.success": ModelTrained,
    "model-training.failed": ModelTrainingFailed,
    "model-selected": ModelSelected,
    "performance-eval": PerformanceEval,
    "dlq": DlqRecord,
    "flts-progress": ProgressEvent,
    "observations": Observation,
    "forecasts": LiveForecast,
    "global-training-requests": GlobalTrainingRequested,
    "global-training-results": GlobalTrainingDone,
}
