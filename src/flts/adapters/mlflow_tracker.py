"""The ``Tracker`` port on MLflow: runs, metrics, models and the registry.

Everything goes through one ``MlflowClient`` bound to this tracker's URI, never the fluent
``mlflow.start_run`` state: services handle messages on several threads. The one exception is
``Model.log`` (the pyfunc logger), which resolves the tracking URI globally; it runs under a
lock with this tracker's URI set and is always given the run id explicitly.

Models are logged as MLflow pyfunc models whose ``forecaster`` artifact is the forecaster's own
saved directory; ``load_forecaster`` downloads only that directory (no pyfunc machinery), so the
fast path and ``mlflow.pyfunc.load_model`` read the same files.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from flts.errors import FltsError, TrackingError
from flts.forecasting.base import Forecaster
from flts.stages.ports import LoggedModel, TrackedRun

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: Run tag holding the URI of the model logged in that run (read back by find_finished_run).
MODEL_URI_TAG = "flts.model_uri"
#: Explicit requirements of the logged pyfunc (inferring them costs seconds per model).
PIP_REQUIREMENTS = (
    "mlflow==3.17.2",
    "torch==2.13.0",
    "pandas",
    "numpy",
    "pyarrow",
    "pydantic>=2.7,<3",
)
_GLOBAL_URI_LOCK = threading.Lock()


def _flts_requirement() -> str:
    from flts import __version__

    return f"flts=={__version__}"


class MlflowTracker:
    """``flts.stages.ports.Tracker`` backed by an MLflow tracking server and registry."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        self._experiments: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- helpers --------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run an MLflow call, turning its exceptions into ``TrackingError``."""
        try:
            return fn()
        except FltsError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow at {self.tracking_uri}: {what} failed: {exc}") from exc

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created on first use (race-safe)."""
        with self._lock:
            cached = self._experiments.get(name)
        if cached is not None:
            return cached

        def get_or_create() -> str:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            try:
                return str(self.client.create_experiment(name))
            except Exception:
                # Another worker created it between our get and create.
                again = self.client.get_experiment_by_name(name)
                if again is None:
                    raise
                return str(again.experiment_id)

        exp_id = self._call(f"get or create experiment {name!r}", get_or_create)
        with self._lock:
            self._experiments[name] = exp_id
        return exp_id

    # -- runs -----------------------------------------------------------------------------
    def find_finished_run(self, experiment: str, tags: dict[str, str]) -> TrackedRun | None:
        exp_id = self.experiment_id(experiment)
        clauses = [f"tags.`{k}` = '{_quote(v)}'" for k, v in sorted(tags.items())]
        clauses.append("attributes.status = 'FINISHED'")
        runs = self._call(
            f"search runs in {experiment!r}",
            lambda: self.client.search_runs(
                [exp_id],
                filter_string=" and ".join(clauses),
                max_results=1,
                order_by=["attributes.start_time DESC"],
            ),
        )
        if not runs:
            return None
        run = runs[0]
        run_tags = dict(run.data.tags)
        return TrackedRun(
            run_id=run.info.run_id,
            artifact_uri=run.info.artifact_uri,
            model_uri=run_tags.get(MODEL_URI_TAG),
            params=dict(run.data.params),
            metrics={k: float(v) for k, v in run.data.metrics.items()},
            tags=run_tags,
        )

    def start_run(self, experiment: str, run_name: str, tags: dict[str, str]) -> str:
        exp_id = self.experiment_id(experiment)
        run = self._call(
            f"create run {run_name!r}",
            lambda: self.client.create_run(exp_id, run_name=run_name, tags=dict(tags)),
        )
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        batch = [Param(k, str(v)) for k, v in params.items()]
        self._call(
            f"log params to run {run_id}", lambda: self.client.log_batch(run_id, params=batch)
        )

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self._call(
            f"log metrics to run {run_id}", lambda: self.client.log_batch(run_id, metrics=batch)
        )

    def log_artifact_bytes(self, run_id: str, name: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="flts-artifact-") as tmp:
            path = Path(tmp) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            parent = str(Path(name).parent) if Path(name).parent != Path(".") else None
            self._call(
                f"log artifact {name!r} to run {run_id}",
                lambda: self.client.log_artifact(run_id, str(path), artifact_path=parent),
            )

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._call(
            f"end run {run_id} as {status}",
            lambda: self.client.set_terminated(run_id, status=status),
        )

    # -- models ---------------------------------------------------------------------------
    @contextmanager
    def _tracking_uri_set(self) -> Iterator[None]:
        """Point MLflow's global URI at this tracker while ``Model.log`` runs (it reads it)."""
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        with _GLOBAL_URI_LOCK, _use_tracking_uri(self.tracking_uri):
            yield

    def log_forecaster(self, run_id: str, forecaster: Forecaster, name: str) -> LoggedModel:
        import mlflow.pyfunc
        from mlflow.models import Model

        from flts.adapters.mlflow_pyfunc import FORECASTER_ARTIFACT, FltsPyfuncModel

        run = self._call(f"get run {run_id}", lambda: self.client.get_run(run_id))
        # Created here so the model lands in the run's experiment (Model.log would use the
        # process-wide default experiment).
        entry = self._call(
            f"create logged model {name!r} for run {run_id}",
            lambda: self.client.create_logged_model(
                experiment_id=run.info.experiment_id,
                name=name,
                source_run_id=run_id,
                tags={"model_type": forecaster.model_type.value},
            ),
        )
        with tempfile.TemporaryDirectory(prefix="flts-model-") as tmp:
            directory = Path(tmp) / FORECASTER_ARTIFACT
            forecaster.save(directory)

            def log() -> Any:
                with self._tracking_uri_set():
                    return Model.log(
                        artifact_path=None,
                        name=name,
                        flavor=mlflow.pyfunc,
                        run_id=run_id,
                        model_id=entry.model_id,
                        python_model=FltsPyfuncModel(),
                        artifacts={FORECASTER_ARTIFACT: str(directory)},
                        pip_requirements=[*PIP_REQUIREMENTS, _flts_requirement()],
                        await_registration_for=0,
                    )

            info = self._call(f"log model {name!r} to run {run_id}", log)
        model_uri = str(info.model_uri)
        self._call(
            f"tag run {run_id}", lambda: self.client.set_tag(run_id, MODEL_URI_TAG, model_uri)
        )
        return LoggedModel(model_uri=model_uri, artifact_uri=str(run.info.artifact_uri))

    def load_forecaster(self, model_uri: str) -> Forecaster:
        """Download the logged model and load its forecaster directory (no pyfunc machinery).

        The whole model is downloaded (its other files are a few KiB) because only that works
        for every URI form: ``runs:/``, ``models:/m-<id>`` and ``models:/<name>@<alias>``.
        MLflow resolves ``models:/`` URIs with a client on the *global* URI, hence the lock.
        """
        import mlflow.artifacts

        from flts.adapters.mlflow_pyfunc import FORECASTER_ARTIFACT
        from flts.forecasting.models import load_forecaster

        source = self.resolve_model_uri(model_uri)

        def download(tmp: str) -> str:
            with self._tracking_uri_set():
                return str(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=source, dst_path=tmp, tracking_uri=self.tracking_uri
                    )
                )

        with tempfile.TemporaryDirectory(prefix="flts-load-") as tmp:
            local = self._call(f"download model {model_uri}", lambda: download(tmp))
            directory = Path(local) / "artifacts" / FORECASTER_ARTIFACT
            if not directory.is_dir():
                raise TrackingError(
                    f"model {model_uri} has no {FORECASTER_ARTIFACT!r} artifact; "
                    "it was not logged by FLTS"
                )
            return load_forecaster(directory)

    def resolve_model_uri(self, model_uri: str) -> str:
        """``runs:/<run_id>/<name>`` -> ``models:/<model_id>`` when the run logged model ``name``.

        MLflow 3 keeps a logged model's files under the model, not the run, so the spec's
        ``runs:/`` form must be mapped to the logged model before downloading.
        """
        run_id = _run_id_of(model_uri)
        if run_id is None:
            return model_uri
        name = model_uri.removeprefix(f"runs:/{run_id}").strip("/")
        run = self._call(f"get run {run_id}", lambda: self.client.get_run(run_id))
        outputs = run.outputs.model_outputs if run.outputs is not None else []
        for model_id in [str(o.model_id) for o in outputs]:
            logged = self._call(
                f"get logged model {model_id}", partial(self.client.get_logged_model, model_id)
            )
            if logged.name == name:
                return f"models:/{logged.model_id}"
        return model_uri

    def register_champion(self, model_uri: str, registered_name: str, alias: str) -> str:
        """Register ``model_uri`` as a new version of ``registered_name``; point ``alias`` at it."""
        from mlflow.exceptions import MlflowException

        def ensure_registered_model() -> None:
            try:
                self.client.create_registered_model(registered_name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise

        self._call(f"create registered model {registered_name!r}", ensure_registered_model)
        source = self.resolve_model_uri(model_uri)
        run_id, model_id = _run_id_of(model_uri), _logged_model_id_of(source)
        if model_id is not None and run_id is None:
            logged = self._call(
                f"get logged model {model_id}", lambda: self.client.get_logged_model(model_id)
            )
            run_id = logged.source_run_id

        def create_version() -> Any:
            # A file/sqlite store resolves the source URI with the global client: set it.
            with self._tracking_uri_set():
                return self.client.create_model_version(
                    registered_name, source=source, run_id=run_id, model_id=model_id
                )

        version = self._call(f"register {model_uri} as {registered_name!r}", create_version)
        number = str(version.version)
        self._call(
            f"set alias {alias!r} of {registered_name!r} to version {number}",
            lambda: self.client.set_registered_model_alias(registered_name, alias, number),
        )
        logger.info(
            "registered %s as %s version %s (@%s)", model_uri, registered_name, number, alias
        )
        return number


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _logged_model_id_of(model_uri: str) -> str | None:
    """The id inside a ``models:/m-<id>`` URI (None for registered-model URIs)."""
    rest = model_uri.removeprefix("models:/")
    if rest != model_uri and rest.startswith("m-") and "/" not in rest and "@" not in rest:
        return rest
    return None


def _run_id_of(model_uri: str) -> str | None:
    """The run id inside a ``runs:/<run_id>/...`` URI (None for ``models:/`` URIs)."""
    if model_uri.startswith("runs:/"):
        return model_uri.removeprefix("runs:/").split("/", 1)[0] or None
    return None
