"""In-memory doubles of the stage ports, for unit tests and single-process dry runs.

They behave like the real adapters where a stage can tell the difference: a missing object
raises ``ObjectNotFoundError``, a logged model is really saved and reloaded (so a test proves
the save/load round trip), registry aliases move, and finished runs can be found by tags.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flts.domain.messages import WireMessage
from flts.errors import ObjectNotFoundError, TrackingError
from flts.forecasting.base import Forecaster
from flts.stages.ports import LoggedModel, TrackedRun

MEMORY_SCHEME = "memory://"


class InMemoryObjectStore:
    """An ``ObjectStore`` kept in a dict of buckets; thread-safe."""

    def __init__(self) -> None:
        self._buckets: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()

    def ensure_bucket(self, bucket: str) -> None:
        with self._lock:
            self._buckets.setdefault(bucket, {})

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        with self._lock:
            self._buckets.setdefault(bucket, {})[key] = bytes(data)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self._lock:
            try:
                return self._buckets[bucket][key]
            except KeyError:
                raise ObjectNotFoundError(f"object s3://{bucket}/{key} does not exist") from None

    def exists(self, bucket: str, key: str) -> bool:
        with self._lock:
            return key in self._buckets.get(bucket, {})

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(k for k in self._buckets.get(bucket, {}) if k.startswith(prefix))


@dataclass
class MemoryRun:
    """One tracking run as the in-memory tracker keeps it."""

    run_id: str
    experiment: str
    run_name: str
    tags: dict[str, str]
    status: str = "RUNNING"
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    #: Every logged value per metric key, as (step, value), for progress assertions.
    history: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    model_uri: str | None = None

    @property
    def artifact_uri(self) -> str:
        return f"{MEMORY_SCHEME}{self.run_id}/artifacts"


class InMemoryTracker:
    """A ``Tracker`` that keeps runs in a dict and models in a temporary directory.

    ``log_forecaster`` really calls ``Forecaster.save`` and ``load_forecaster`` really reloads
    through ``flts.forecasting.models.load_forecaster``, so tests exercise persistence.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="flts-memtracker-")) if root is None else root
        self.runs: dict[str, MemoryRun] = {}
        #: registered name -> list of model URIs (version n is index n-1).
        self.versions: dict[str, list[str]] = {}
        #: registered name -> alias -> version string.
        self.aliases: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Delete the saved models (only when this tracker created the directory)."""
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, run_id: str) -> MemoryRun:
        try:
            return self.runs[run_id]
        except KeyError:
            raise TrackingError(f"no tracking run {run_id!r}") from None

    def find_finished_run(self, experiment: str, tags: dict[str, str]) -> TrackedRun | None:
        with self._lock:
            matches = [
                r
                for r in self.runs.values()
                if r.experiment == experiment
                and r.status == "FINISHED"
                and all(r.tags.get(k) == v for k, v in tags.items())
            ]
        if not matches:
            return None
        run = matches[-1]
        return TrackedRun(
            run_id=run.run_id,
            artifact_uri=run.artifact_uri,
            model_uri=run.model_uri,
            params=dict(run.params),
            metrics=dict(run.metrics),
            tags=dict(run.tags),
        )

    def start_run(self, experiment: str, run_name: str, tags: dict[str, str]) -> str:
        run_id = uuid.uuid4().hex
        with self._lock:
            self.runs[run_id] = MemoryRun(run_id, experiment, run_name, dict(tags))
        return run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        with self._lock:
            self._run(run_id).params.update({k: str(v) for k, v in params.items()})

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        with self._lock:
            run = self._run(run_id)
            for key, value in metrics.items():
                run.metrics[key] = float(value)
                run.history.setdefault(key, []).append((step, float(value)))

    def log_artifact_bytes(self, run_id: str, name: str, data: bytes) -> None:
        with self._lock:
            self._run(run_id).artifacts[name] = bytes(data)

    def log_forecaster(self, run_id: str, forecaster: Forecaster, name: str) -> LoggedModel:
        run = self._run(run_id)
        forecaster.save(self.root / run_id / name)
        uri = f"{MEMORY_SCHEME}{run_id}/{name}"
        with self._lock:
            run.model_uri = uri
        return LoggedModel(model_uri=uri, artifact_uri=run.artifact_uri)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        with self._lock:
            self._run(run_id).status = status

    def register_champion(self, model_uri: str, registered_name: str, alias: str) -> str:
        with self._lock:
            versions = self.versions.setdefault(registered_name, [])
            versions.append(model_uri)
            version = str(len(versions))
            self.aliases.setdefault(registered_name, {})[alias] = version
        return version

    def model_uri_for_alias(self, registered_name: str, alias: str) -> str:
        """The model URI an alias points at (what a registry lookup would return)."""
        version = self.aliases[registered_name][alias]
        return self.versions[registered_name][int(version) - 1]

    def load_forecaster(self, model_uri: str) -> Forecaster:
        from flts.forecasting.models import load_forecaster

        if not model_uri.startswith(MEMORY_SCHEME):
            raise TrackingError(f"in-memory tracker cannot load {model_uri!r}")
        directory = self.root / model_uri.removeprefix(MEMORY_SCHEME)
        if not directory.is_dir():
            raise TrackingError(f"no model logged at {model_uri!r}")
        return load_forecaster(directory)


class RecordingSink:
    """An ``EventSink`` that keeps every ``(event, key)`` it is given, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[WireMessage, str | None]] = []
        self._lock = threading.Lock()

    def emit(self, event: WireMessage, key: str | None = None) -> None:
        with self._lock:
            self.events.append((event, key))

    def of_type(self, kind: type[WireMessage]) -> list[WireMessage]:
        return [e for e, _ in self.events if isinstance(e, kind)]


class FixedClock:
    """A ``Clock`` that returns a fixed instant, optionally advancing by ``step`` per call."""

    def __init__(
        self,
        start: datetime | None = None,
        step: timedelta = timedelta(0),
    ) -> None:
        self.current = start or datetime(2025, 11, 24, 12, 0, 0, tzinfo=UTC)
        self.step = step

    def now(self) -> datetime:
        value = self.current
        self.current = self.current + self.step
        return value
