"""The ports a stage may use. Adapters implement them (S3, MLflow, Kafka) and so do the
in-memory doubles used by unit tests (``flts.adapters.memory``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from flts.domain.messages import WireMessage
from flts.forecasting.base import Forecaster

#: Buckets of the claim-check store (the spec's names).
BUCKET_DATASET = "dataset"
BUCKET_PROCESSED = "processed-data"
BUCKET_MLFLOW = "mlflow"
BUCKET_PROMOTION = "model-promotion"
BUCKET_INFERENCE_LOGS = "inference-logs"
ALL_BUCKETS = (
    BUCKET_DATASET,
    BUCKET_PROCESSED,
    BUCKET_MLFLOW,
    BUCKET_PROMOTION,
    BUCKET_INFERENCE_LOGS,
)


@runtime_checkable
class ObjectStore(Protocol):
    """Claim-check storage. Missing objects raise ``ObjectNotFoundError``."""

    def ensure_bucket(self, bucket: str) -> None: ...

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]: ...


class TrackedRun(BaseModel):
    """A finished tracking run, enough to re-emit its SUCCESS event without retraining."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    artifact_uri: str
    model_uri: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


class LoggedModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_uri: str
    artifact_uri: str


class Tracker(Protocol):
    """Experiment tracking and the model registry (MLflow in production)."""

    def find_finished_run(self, experiment: str, tags: dict[str, str]) -> TrackedRun | None: ...

    def start_run(self, experiment: str, run_name: str, tags: dict[str, str]) -> str: ...

    def log_params(self, run_id: str, params: dict[str, Any]) -> None: ...

    def log_metrics(
        self, run_id: str, metrics: dict[str, float], step: int | None = None
    ) -> None: ...

    def log_artifact_bytes(self, run_id: str, name: str, data: bytes) -> None: ...

    def log_forecaster(self, run_id: str, forecaster: Forecaster, name: str) -> LoggedModel: ...

    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...

    def register_champion(self, model_uri: str, registered_name: str, alias: str) -> str: ...

    def load_forecaster(self, model_uri: str) -> Forecaster: ...


class EventSink(Protocol):
    """Where a stage reports events it emits *during* its work (RUNNING, progress).

    The runtime decides the topic; the stage only says what happened.
    """

    def emit(self, event: WireMessage, key: str | None = None) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class NoTracker:
    """The tracker of a stage that tracks nothing (preprocess): any use is a programming error,
    reported as such rather than silently recorded somewhere nobody looks."""

    def _refuse(self, *_: Any, **__: Any) -> Any:
        from flts.errors import TrackingError

        raise TrackingError("this stage runs without a tracker; it must not log runs or models")

    find_finished_run = start_run = log_params = log_metrics = _refuse
    log_artifact_bytes = log_forecaster = end_run = register_champion = _refuse
    load_forecaster = _refuse


class NullSink:
    """Drops events; for runtimes that have nowhere to send them."""

    def emit(self, event: WireMessage, key: str | None = None) -> None:
        return None


@dataclass
class StageContext:
    store: ObjectStore
    tracker: Tracker
    events: EventSink = field(default_factory=NullSink)
    clock: Clock = field(default_factory=SystemClock)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("flts.stages"))
