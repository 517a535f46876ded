"""Settings read from the environment, one class per concern.

Entrypoints call :func:`load_settings` once per process and pass the result down; library code
never reads ``os.environ`` itself. Field aliases are the spec's env var names, and defaults are
the spec's defaults (``SPEC_DEFAULTS`` lists them; a unit test keeps both in step). Secrets are
``SecretStr`` so they never show in a repr or a log line.

Example::

    kafka = load_settings(KafkaSettings)          # ConfigError names KAFKA_BOOTSTRAP_SERVERS
    train = load_settings(TrainSettings, MODEL_TYPE="GRU", CONSUMER_GROUP_ID="train-gru")

Longer than the ~400-line norm on purpose: every service's env vars in one module, so the whole
set can be checked against the spec's table (``SPEC_DEFAULTS``) in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from flts.domain.config import SPEC_MODEL_TYPES, TRAINABLE_MODEL_TYPES, ModelType, TrainConfig
from flts.errors import ConfigError, FltsError

#: The spec's env var defaults, per settings class (the same name can differ per service:
#: PRODUCER_TOPIC is "model-training" for trainers and "performance-eval" for inference).
SPEC_DEFAULTS: dict[str, dict[str, object]] = {
    "KafkaSettings": {
        "KAFKA_SESSION_TIMEOUT_MS": 6000,
        "KAFKA_HEARTBEAT_INTERVAL_MS": 500,
        "KAFKA_MAX_POLL_INTERVAL_MS": 600000,
    },
    "PreprocessSettings": {
        "PRODUCER_TOPIC_0": "training-data",
        "PRODUCER_TOPIC_1": "inference-data",
        "DLQ_PREPROCESS": "DLQ-preprocess",
    },
    "TrainSettings": {
        "CONSUMER_TOPIC": "training-data",
        "PRODUCER_TOPIC": "model-training",
        "MLFLOW_EXPERIMENT": "flts",
    },
    "EvalSettings": {
        "MODEL_TRAINING_TOPIC": "model-training",
        "MODEL_SELECTED_TOPIC": "model-selected",
        "EVAL_GROUP_ID": "eval-promoter",
        "DLQ_MODEL_SELECTED": "DLQ-model-selected",
        "EXPECTED_MODEL_TYPES": "GRU,LSTM,PROPHET",
        "REGISTERED_MODEL_NAME": "flts-forecaster",
        "CHAMPION_ALIAS": "champion",
    },
    "InferenceSettings": {
        "CONSUMER_TOPIC_0": "inference-data",
        "CONSUMER_TOPIC_1": "model-training",
        "PROMOTION_TOPIC": "model-selected",
        "CONSUMER_GROUP_ID": "batch-forecasting-v2",
        "PRODUCER_TOPIC": "performance-eval",
        "RUN_INFERENCE_ON_TRAIN_SUCCESS": 1,
        "API_HOST": "127.0.0.1",
        "API_PORT": 18000,
        "MAX_BATCH_SIZE": 64,
        "MAX_BATCH_WAIT_MS": 2,
        "REGISTERED_MODEL_NAME": "flts-forecaster",
        "CHAMPION_ALIAS": "champion",
    },
    "S3Settings": {"AWS_DEFAULT_REGION": "us-east-1"},
    "GatewaySettings": {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": 18080,
        "GATEWAY_MAX_UPLOAD_BYTES": 256 * 1024 * 1024,
    },
}

_D = SPEC_DEFAULTS


def _env(name: str, default: Any = ..., **kw: Any) -> Any:
    """A field read from env var ``name`` (also settable by field name in code)."""
    return Field(default, validation_alias=name, **kw)


class _Base(BaseSettings):
    model_config = SettingsConfigDict(
        populate_by_name=True, extra="ignore", frozen=True, case_sensitive=False
    )


class KafkaSettings(_Base):
    """Broker connection. Session/heartbeat defaults suit tansu's slow first group join."""

    bootstrap_servers: str = _env("KAFKA_BOOTSTRAP_SERVERS", min_length=1)
    session_timeout_ms: int = _env("KAFKA_SESSION_TIMEOUT_MS", 6000, gt=0)
    heartbeat_interval_ms: int = _env("KAFKA_HEARTBEAT_INTERVAL_MS", 500, gt=0)
    max_poll_interval_ms: int = _env("KAFKA_MAX_POLL_INTERVAL_MS", 600000, gt=0)
    security_protocol: str | None = _env("KAFKA_SECURITY_PROTOCOL", None)
    sasl_mechanism: str | None = _env("KAFKA_SASL_MECHANISM", None)
    sasl_username: str | None = _env("KAFKA_SASL_USERNAME", None)
    sasl_password: SecretStr | None = _env("KAFKA_SASL_PASSWORD", None)
    #: Added by FLTS: how services create missing topics at start-up. Production sets
    #: KAFKA_CREATE_TOPICS=false (topics provisioned with the cluster's replication) or a
    #: replication factor of 3 with min.insync.replicas 2.
    create_topics: bool = _env("KAFKA_CREATE_TOPICS", True)
    topic_partitions: int = _env("KAFKA_TOPIC_PARTITIONS", 1, ge=1)
    topic_replication_factor: int = _env("KAFKA_TOPIC_REPLICATION_FACTOR", 1, ge=1)
    min_insync_replicas: int | None = _env("KAFKA_TOPIC_MIN_INSYNC_REPLICAS", None, ge=1)
    #: Added by FLTS: a worker writes this file once its consumer group assigned it partitions
    #: (the readiness probe of a process supervisor such as `flts run`).
    ready_file: Path | None = _env("FLTS_READY_FILE", None)

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings common to producers, consumers and admin clients."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.security_protocol:
            conf["security.protocol"] = self.security_protocol
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        return conf


class PreprocessSettings(_Base):
    producer_topic_0: str = _env("PRODUCER_TOPIC_0", "training-data")
    producer_topic_1: str = _env("PRODUCER_TOPIC_1", "inference-data")
    dlq_topic: str = _env("DLQ_PREPROCESS", "DLQ-preprocess")
    #: Added by FLTS: the on-request mode (``flts service preprocess --listen``).
    request_topic: str = _env("PREPROCESS_REQUEST_TOPIC", "preprocess-requests")
    group_id: str = _env("PREPROCESS_GROUP_ID", "preprocess")
    #: Added by FLTS: progress events for `flts run` and operators (fire-and-forget).
    progress_topic: str = _env("PROGRESS_TOPIC", "flts-progress")


def _levels(value: Any) -> tuple[int, ...] | None:
    """INTERVAL_LEVELS: whole percentages, comma-separated (``80,95``)."""
    if value is None or not isinstance(value, str):
        return value  # type: ignore[no-any-return]
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"expected whole percentages like 80,95; got {value!r}") from None


class TrainerSettings(_Base):
    """What both trainer services read: where their results and progress go, the interval
    levels a model is calibrated for, the MLflow experiment, and the DLQ of the produce side.
    Each service names its own input (``consumer_topic``) and consumer group."""

    consumer_topic: str
    consumer_group_id: str
    producer_topic: str = _env("PRODUCER_TOPIC", "model-training")
    #: Added by FLTS: prediction-interval levels in percent, comma-separated (default 80,95).
    interval_levels: Annotated[tuple[int, ...] | None, NoDecode] = _env("INTERVAL_LEVELS", None)
    mlflow_experiment: str = _env("MLFLOW_EXPERIMENT", "flts")
    dlq_topic_override: str | None = _env("DLQ_TOPIC", None)
    progress_topic: str = _env("PROGRESS_TOPIC", "flts-progress")

    @field_validator("interval_levels", mode="before")
    @classmethod
    def _parse_levels(cls, value: Any) -> tuple[int, ...] | None:
        return _levels(value)

    @property
    def dlq_topic(self) -> str:
        """Where failures of the produce side go (spec: ``DLQ-{PRODUCER_TOPIC}``)."""
        return self.dlq_topic_override or f"DLQ-{self.producer_topic}"

    @property
    def consumer_dlq_topic(self) -> str:
        """Where undecodable input goes (``DLQ-<CONSUMER_TOPIC>``)."""
        return f"DLQ-{self.consumer_topic}"


class TrainSettings(TrainerSettings):
    """One trainer service. Hyper-parameter env vars override ``TrainConfig`` defaults."""

    consumer_topic: str = _env("CONSUMER_TOPIC", "training-data")
    consumer_group_id: str = _env("CONSUMER_GROUP_ID", min_length=1)
    model_type: ModelType = _env("MODEL_TYPE")
    epochs: int | None = _env("EPOCHS", None)
    batch_size: int | None = _env("BATCH_SIZE", None)
    hidden_size: int | None = _env("HIDDEN_SIZE", None)
    num_layers: int | None = _env("NUM_LAYERS", None)
    learning_rate: float | None = _env("LEARNING_RATE", None)
    patience: int | None = _env("PATIENCE", None)
    seed: int | None = _env("SEED", None)
    torch_threads: int | None = _env("TORCH_THREADS", None)

    @field_validator("model_type", mode="before")
    @classmethod
    def _parse_model_type(cls, value: Any) -> ModelType:
        try:
            parsed = ModelType.parse(str(value))
        except FltsError as exc:
            raise ValueError(str(exc)) from None
        if parsed not in TRAINABLE_MODEL_TYPES:
            known = ", ".join(m.value for m in TRAINABLE_MODEL_TYPES)
            raise ValueError(f"{parsed.value} is not trainable; use one of {known}")
        return parsed

    def train_config(self) -> TrainConfig:
        names = ["epochs", "batch_size", "hidden_size", "num_layers", "learning_rate"]
        names += ["patience", "seed", "torch_threads", "interval_levels"]
        overrides = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        try:
            return TrainConfig(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"invalid hyper-parameter override: {exc}") from exc


class GlobalTrainSettings(TrainerSettings):
    """The global trainer (added by FLTS, issue 13): one model fitted across a fleet's series."""

    consumer_topic: str = _env("CONSUMER_TOPIC", "global-training-requests")
    consumer_group_id: str = _env("CONSUMER_GROUP_ID", "train-global")
    result_topic: str = _env("GLOBAL_TRAINING_RESULTS_TOPIC", "global-training-results")

    def train_config(self) -> TrainConfig:
        if self.interval_levels is None:
            return TrainConfig()
        try:
            return TrainConfig(interval_levels=self.interval_levels)
        except ValidationError as exc:
            raise ConfigError(f"invalid INTERVAL_LEVELS: {exc}") from exc


class EvalSettings(_Base):
    model_training_topic: str = _env("MODEL_TRAINING_TOPIC", "model-training")
    model_selected_topic: str = _env("MODEL_SELECTED_TOPIC", "model-selected")
    eval_group_id: str = _env("EVAL_GROUP_ID", "eval-promoter")
    dlq_topic: str = _env("DLQ_MODEL_SELECTED", "DLQ-model-selected")
    expected_model_types: Annotated[tuple[ModelType, ...], NoDecode] = _env(
        "EXPECTED_MODEL_TYPES", SPEC_MODEL_TYPES
    )
    registered_model_name: str = _env("REGISTERED_MODEL_NAME", "flts-forecaster")
    champion_alias: str = _env("CHAMPION_ALIAS", "champion")
    progress_topic: str = _env("PROGRESS_TOPIC", "flts-progress")
    #: Added by FLTS (issue 12): a new lineage of an identifier must beat its champion on the
    #: new test windows to be promoted (flts.stages.challenge).
    challenge_champion: bool = _env("CHALLENGE_CHAMPION", True)
    #: Added by FLTS (issue 13): where the global trainer says which series a global fit left
    #: out; read only when EXPECTED_MODEL_TYPES holds a global type.
    global_results_topic: str = _env("GLOBAL_TRAINING_RESULTS_TOPIC", "global-training-results")

    @field_validator("expected_model_types", mode="before")
    @classmethod
    def _parse_types(cls, value: Any) -> tuple[ModelType, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        if not items or any(not str(i).strip() for i in items):
            raise ValueError(
                f"expected a comma-separated list like GRU,LSTM,PROPHET, got {value!r}"
            )
        try:
            return tuple(ModelType.parse(str(i)) for i in items)
        except FltsError as exc:
            raise ValueError(str(exc)) from None


class InferenceSettings(_Base):
    consumer_topic_0: str = _env("CONSUMER_TOPIC_0", "inference-data")
    consumer_topic_1: str = _env("CONSUMER_TOPIC_1", "model-training")
    promotion_topic: str = _env("PROMOTION_TOPIC", "model-selected")
    consumer_group_id: str = _env("CONSUMER_GROUP_ID", "batch-forecasting-v2")
    producer_topic: str = _env("PRODUCER_TOPIC", "performance-eval")
    run_inference_on_train_success: bool = _env("RUN_INFERENCE_ON_TRAIN_SUCCESS", True)
    api_host: str = _env("API_HOST", "127.0.0.1")
    api_port: int = _env("API_PORT", 18000, ge=0, le=65535)
    api_token: SecretStr | None = _env("API_TOKEN", None)
    max_batch_size: int = _env("MAX_BATCH_SIZE", 64, ge=1)
    max_batch_wait_ms: float = _env("MAX_BATCH_WAIT_MS", 2, ge=0)
    #: Added by FLTS: models (per config_hash) the inference service keeps loaded at most.
    max_loaded_models: int = _env("MAX_LOADED_MODELS", 8, ge=1)
    #: Added by FLTS (fleets): per-series champions the API keeps ready, by count and bytes.
    max_served_series: int = _env("MAX_SERVED_SERIES", 64, ge=1)
    max_served_series_bytes: int = _env("MAX_SERVED_SERIES_BYTES", 1 << 30, ge=1)
    # Serving limits (defaults and meaning: README, "The inference API").
    api_max_body_bytes: int = _env("API_MAX_BODY_BYTES", 1_048_576, ge=1)
    api_max_rows: int = _env("API_MAX_ROWS", 10_000, ge=1)
    api_max_queue: int = _env("API_MAX_QUEUE", 1_024, ge=1)
    api_request_timeout_ms: float = _env("API_REQUEST_TIMEOUT_MS", 5_000, gt=0)
    api_torch_threads: int = _env("API_TORCH_THREADS", 1, ge=1)
    #: Batched forwards on the API's event loop instead of a worker thread: for processes that
    #: only serve, one per core (README, "The inference API").
    api_forward_in_loop: bool = _env("API_FORWARD_IN_LOOP", False)
    #: Bind API_PORT with SO_REUSEPORT: inference replicas on one host share the port and the
    #: kernel spreads connections over them (instead of each taking the next port).
    api_reuse_port: bool = _env("API_REUSE_PORT", False)
    registered_model_name: str = _env("REGISTERED_MODEL_NAME", "flts-forecaster")
    champion_alias: str = _env("CHAMPION_ALIAS", "champion")
    #: Added by FLTS: rate at which a batch's bands adapt to the hits and misses revealed before
    #: each origin, as the live loop's do (``stages.infer.served_bands``); 0 serves the bands
    #: calibrated in training unchanged.
    batch_band_adaptation: float = _env("BATCH_BAND_ADAPTATION", 0.05, ge=0, le=1)


class LiveSettings(_Base):
    """The live loop (added by FLTS, issue 12), read by the inference service next to
    InferenceSettings. Steps are data time (observation timestamps), so a replay at any speed
    behaves the same as real time."""

    observations_topic: str = _env("OBSERVATIONS_TOPIC", "observations")
    forecasts_topic: str = _env("FORECASTS_TOPIC", "forecasts")
    #: Consumer group of the inference service's observations stream (its own thread).
    group_id: str = _env("OBSERVATIONS_GROUP_ID", "live-observations")
    #: How long the broker may hold an observations fetch open waiting for data
    #: (librdkafka ``fetch.wait.max.ms``). Kafka answers a waiting fetch as soon as data
    #: arrives, so the default costs no latency there; tansu holds it for the whole wait, so
    #: on the local stack 25 ms takes a live forecast from ~270 to ~75 ms (p50), but every
    #: fetch reads S3 and costs more as a topic accumulates record batches: at 25 ms a replay
    #: of single-record observations stalled after ~1,000 of them (SeaweedFS saturated).
    fetch_wait_ms: int = _env("OBSERVATIONS_FETCH_WAIT_MS", 500, ge=1, le=500)
    #: Records per observations partition replayed as warm-up when the service (re)starts or
    #: is handed a partition: the records just before the group's committed offset refill the
    #: windows, so forecasts follow the first new observation instead of a window's worth of
    #: them (a day of rows for a model that reads a day). Size it as identifiers per
    #: partition x the rows a champion reads (the bundled site's LINEAR reads 5,760). 0: start
    #: with empty windows. Measured on the local stack: ~650 single-record batches/s, so
    #: 10,000 records hold a restarted service's first forecast ~15 s.
    recovery_records: int = _env("LIVE_RECOVERY_RECORDS", 10_000, ge=0)
    #: Rate at which live bands widen after a miss and narrow after a hit, per level
    #: (``stages.bands.BandScale``, adaptive conformal); 0 keeps the bands calibrated in training.
    band_adaptation: float = _env("LIVE_BAND_ADAPTATION", 0.05, ge=0, le=1)
    #: Observations per identifier between two live PerformanceEval events (and log flushes).
    metrics_every: int = _env("LIVE_METRICS_EVERY", 12, ge=1)
    #: Scored (origin, step) points the rolling live metrics cover.
    metrics_window: int = _env("LIVE_METRICS_WINDOW", 288, ge=1)
    #: Drift: live MAE above this multiple of the persistence MAE on the same points.
    drift_persistence_ratio: float = _env("DRIFT_PERSISTENCE_RATIO", 1.5, gt=0)
    #: Drift: live MAE above this multiple of the champion's test MAE.
    drift_test_ratio: float = _env("DRIFT_TEST_RATIO", 2.0, gt=0)
    #: Drift: coverage of a level this far (fraction) below nominal.
    drift_coverage_drop: float = _env("DRIFT_COVERAGE_DROP", 0.25, gt=0, lt=1)
    #: Scored points needed in the window before drift is judged.
    drift_min_points: int = _env("DRIFT_MIN_POINTS", 48, ge=1)
    #: Steps after a retrain request before another may be made (no retrain storms).
    drift_cooldown_steps: int = _env("DRIFT_COOLDOWN_STEPS", 288, ge=0)
    #: Request retraining on drift (false: detect and report only).
    retrain_enabled: bool = _env("LIVE_RETRAIN", True)
    #: Rows of training windows a retraining gets beyond the champion's own history (so the
    #: retraining data is history + this + RETRAIN_TEST_STEPS of the most recent rows).
    retrain_window_steps: int = _env("RETRAIN_WINDOW_STEPS", 2016, ge=2)
    #: Most recent rows held out as the retraining test set (the windows champion and
    #: challenger are compared on).
    retrain_test_steps: int = _env("RETRAIN_TEST_STEPS", 288, ge=1)
    retrain_request_topic: str = _env("PREPROCESS_REQUEST_TOPIC", "preprocess-requests")


class S3Settings(_Base):
    endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("S3_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")
    )
    access_key_id: str | None = _env("AWS_ACCESS_KEY_ID", None)
    secret_access_key: SecretStr | None = _env("AWS_SECRET_ACCESS_KEY", None)
    region: str = _env("AWS_DEFAULT_REGION", "us-east-1")


class MlflowSettings(_Base):
    tracking_uri: str = _env("MLFLOW_TRACKING_URI", min_length=1)


class GatewaySettings(_Base):
    host: str = _env("GATEWAY_HOST", "127.0.0.1")
    port: int = _env("GATEWAY_PORT", 18080, ge=0, le=65535)
    token: SecretStr | None = _env("GATEWAY_TOKEN", None)
    max_upload_bytes: int = _env("GATEWAY_MAX_UPLOAD_BYTES", 256 * 1024 * 1024, gt=0)
    url: str | None = _env("GATEWAY_URL", None)


@dataclass(frozen=True)
class PipelineTopics:
    """Every topic of one pipeline, taken from the defaults of the services' settings.

    For the components that see the whole pipeline (the local stack creating topics, `flts run`
    watching them); each service reads its own topics from its env vars. The one place outside
    the settings classes where topic names are known.
    """

    training_data: str
    inference_data: str
    model_training: str
    model_selected: str
    performance_eval: str
    preprocess_requests: str
    progress: str
    preprocess_dlq: str
    #: The live loop's topics (issue 12).
    observations: str
    forecasts: str
    #: The global trainer's topics (issue 13).
    global_requests: str
    global_results: str

    @property
    def spec(self) -> tuple[str, ...]:
        """The spec's five topics, in pipeline order."""
        return (
            self.training_data,
            self.inference_data,
            self.model_training,
            self.model_selected,
            self.performance_eval,
        )

    @property
    def dead_letter(self) -> tuple[str, ...]:
        """``DLQ-preprocess`` plus ``DLQ-<topic>`` for every consumed or produced topic."""
        consumed_or_produced = (
            self.preprocess_requests,
            *self.spec,
            *self.live,
            self.global_requests,
        )
        return (self.preprocess_dlq, *(f"DLQ-{t}" for t in consumed_or_produced))

    @property
    def live(self) -> tuple[str, ...]:
        return (self.observations, self.forecasts)

    def all(self) -> tuple[str, ...]:
        return (
            *self.spec,
            self.preprocess_requests,
            self.progress,
            *self.live,
            self.global_requests,
            self.global_results,
            *self.dead_letter,
        )


def _default(cls: type[BaseSettings], field: str) -> str:
    return str(cls.model_fields[field].default)


def pipeline_topics() -> PipelineTopics:
    return PipelineTopics(
        training_data=_default(PreprocessSettings, "producer_topic_0"),
        inference_data=_default(PreprocessSettings, "producer_topic_1"),
        model_training=_default(TrainSettings, "producer_topic"),
        model_selected=_default(EvalSettings, "model_selected_topic"),
        performance_eval=_default(InferenceSettings, "producer_topic"),
        preprocess_requests=_default(PreprocessSettings, "request_topic"),
        progress=_default(PreprocessSettings, "progress_topic"),
        preprocess_dlq=_default(PreprocessSettings, "dlq_topic"),
        observations=_default(LiveSettings, "observations_topic"),
        forecasts=_default(LiveSettings, "forecasts_topic"),
        global_requests=_default(GlobalTrainSettings, "consumer_topic"),
        global_results=_default(GlobalTrainSettings, "result_topic"),
    )


S = TypeVar("S", bound=BaseSettings)


def _env_name(cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """The env var behind an error location (pydantic reports the alias, or the field name)."""
    first = str(loc[0]) if loc else "<settings>"
    field = cls.model_fields.get(first)
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    return first.upper()


def load_settings(cls: type[S], **values: Any) -> S:
    """Build ``cls`` from the environment (``values`` win); ConfigError names each bad env var.

    Error messages never include the offending value, since it may be a secret.
    """
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            name = _env_name(cls, err["loc"])
            if err["type"] == "missing":
                problems.append(f"{name} is required but not set")
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{name} is invalid: {msg}")
        raise ConfigError(f"{cls.__name__}: " + "; ".join(problems)) from None
