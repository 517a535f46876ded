"""Wiring shared by the Kafka services, and how an orchestrator spawns them.

Each service reads its settings once, at start-up, from the spec's env vars (a missing or bad
variable raises ``ConfigError`` naming it, and ``flts service`` exits non-zero), builds its
adapters, and hands a stage handler to the generic :class:`~flts.messaging.worker.KafkaWorker`.

DLQ routing (one rule for every service):

- input that cannot be decoded or does not fit its contract (``MessageError``: not JSON, wrong
  types, missing fields, unknown status) -> ``DLQ-<consumed topic>``;
- any other failure while processing -> the service's own DLQ: train ``DLQ-{PRODUCER_TOPIC}``
  (``DLQ-model-training``), eval ``DLQ_MODEL_SELECTED`` (``DLQ-model-selected``), inference
  ``DLQ-{PRODUCER_TOPIC}`` (``DLQ-performance-eval``), preprocess ``DLQ_PREPROCESS``.

Spawning (the spec's mapping table)::

    subprocess.Popen(service_command("train-gru"), env=service_env("train-gru", base_env))
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import Producer
from pydantic import TypeAdapter, ValidationError

from flts.adapters.s3 import S3ObjectStore
from flts.errors import ConfigError, FltsError, MessageError
from flts.kafka_utils import create_producer, ensure_topics, require_topics
from flts.messaging.records import DlqRouter, FailureOutputs, Handler, dlq_of
from flts.messaging.sinks import KafkaEventSink, topic_router
from flts.messaging.worker import KafkaWorker, consumer_config
from flts.settings import (
    KafkaSettings,
    MlflowSettings,
    S3Settings,
    TrainerSettings,
    load_settings,
)
from flts.stages.ports import StageContext, Tracker

log = logging.getLogger(__name__)

#: A trainer service's settings (train or train-global).
S = TypeVar("S", bound=TrainerSettings)

#: ``flts service <name>`` commands.
SERVICE_NAMES: tuple[str, ...] = (
    "preprocess",
    "train",
    "train-global",
    "eval",
    "inference",
    "gateway",
)

#: The spec's containers -> (service command, env the mapping table fixes for it).
SPEC_SERVICES: dict[str, tuple[str, dict[str, str]]] = {
    "preprocess": ("preprocess", {}),
    "train-gru": ("train", {"MODEL_TYPE": "GRU", "CONSUMER_GROUP_ID": "train-gru"}),
    "train-lstm": ("train", {"MODEL_TYPE": "LSTM", "CONSUMER_GROUP_ID": "train-lstm"}),
    "nonml-prophet": ("train", {"MODEL_TYPE": "PROPHET", "CONSUMER_GROUP_ID": "nonml-prophet"}),
    # Added by issue 10 (not in the spec's table): one trainer per new model family.
    "train-linear": ("train", {"MODEL_TYPE": "LINEAR", "CONSUMER_GROUP_ID": "train-linear"}),
    "train-lightgbm": ("train", {"MODEL_TYPE": "LIGHTGBM", "CONSUMER_GROUP_ID": "train-lightgbm"}),
    "nonml-mstl": ("train", {"MODEL_TYPE": "MSTL", "CONSUMER_GROUP_ID": "nonml-mstl"}),
    # Added by issue 13: the global trainer of fleet runs (`flts run --global-model`).
    "train-global": ("train-global", {"CONSUMER_GROUP_ID": "train-global"}),
    "eval": ("eval", {"EVAL_GROUP_ID": "eval-promoter-r5"}),
    "inference": ("inference", {"CONSUMER_GROUP_ID": "batch-forecasting-v2"}),
    "gateway": ("gateway", {}),
}


def _spec_entry(name: str) -> tuple[str, dict[str, str]]:
    try:
        return SPEC_SERVICES[name]
    except KeyError:
        known = ", ".join(SPEC_SERVICES)
        raise ConfigError(f"unknown service {name!r}; known: {known}") from None


def service_command(name: str) -> list[str]:
    """argv that runs service ``name`` (a key of SPEC_SERVICES) with this interpreter."""
    command, _ = _spec_entry(name)
    return [sys.executable, "-m", "flts", "service", command]


def service_env(name: str, base_env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """``base_env`` + the mapping table's values for ``name`` + ``overrides`` (which win)."""
    _, fixed = _spec_entry(name)
    env = {**base_env, **fixed, **{k: str(v) for k, v in overrides.items()}}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def private_inference_topics(suffix: str) -> dict[str, str]:
    """Env overrides that give one inference service topics of its own (``<topic>-<suffix>``):
    the live bench and tests run it beside other runs on a shared broker."""
    return {
        "PROMOTION_TOPIC": f"model-selected-{suffix}",
        "OBSERVATIONS_TOPIC": f"observations-{suffix}",
        "FORECASTS_TOPIC": f"forecasts-{suffix}",
        "PRODUCER_TOPIC": f"performance-eval-{suffix}",
        "CONSUMER_TOPIC_0": f"inference-data-{suffix}",
        "CONSUMER_TOPIC_1": f"model-training-{suffix}",
    }


def reuses_port(env: Mapping[str, str]) -> bool:
    """Whether inference replicas started with ``env`` share API_PORT (API_REUSE_PORT, read
    as InferenceSettings reads it) instead of each taking the next port."""
    raw = env.get("API_REUSE_PORT", "false")
    try:
        return bool(TypeAdapter(bool).validate_python(raw))
    except ValidationError:
        raise ConfigError(f"API_REUSE_PORT={raw!r}: expected true or false") from None


def route_dlq(service_dlq: str) -> DlqRouter:
    """The DLQ rule above: MessageError -> DLQ-<consumed topic>; else ``service_dlq``."""

    def route(topic: str, exc: BaseException) -> str:
        return dlq_of(topic) if isinstance(exc, MessageError) else service_dlq

    return route


@dataclass
class Infra:
    """What every Kafka service needs, built once from the environment."""

    kafka: KafkaSettings
    s3: S3Settings
    producer: Producer

    @classmethod
    def from_env(cls) -> Infra:
        kafka = load_settings(KafkaSettings)
        s3 = load_settings(S3Settings)
        return cls(kafka=kafka, s3=s3, producer=create_producer(settings=kafka))

    def store(self) -> S3ObjectStore:
        return S3ObjectStore(self.s3)

    def ensure_topics(self, *topics: str) -> None:
        """The topics (and their DLQs) must exist: created with the KAFKA_TOPIC_* settings, or,
        with KAFKA_CREATE_TOPICS=false (production), checked and reported missing."""
        wanted = [*topics, *(dlq_of(t) for t in topics)]
        if not self.kafka.create_topics:
            require_topics(self.kafka.bootstrap_servers, wanted, settings=self.kafka)
            return
        created = ensure_topics(self.kafka.bootstrap_servers, wanted, settings=self.kafka)
        if created:
            log.info("created topics %s", created)

    def worker(
        self,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        dlq_topic: str,
        stop_event: threading.Event,
        operation: str,
        failure_outputs: FailureOutputs | None = None,
    ) -> KafkaWorker:
        """The claim worker a service runs: its group, its topics, DLQ by the contract's rule
        (:func:`route_dlq`), the shared producer and the supervisor's readiness file."""
        return KafkaWorker(
            consumer_config(self.kafka, group_id),
            list(topics),
            handler,
            self.producer,
            route_dlq(dlq_topic),
            stop_event,
            operation=operation,
            ready_file=self.kafka.ready_file,
            failure_outputs=failure_outputs,
        )


def warm_up(tracker: Tracker, experiment: str | None) -> None:
    """Pay the one-time costs (model libraries' imports, MLflow client and connection) at
    start-up, before joining the group, instead of on the first message of a run.

    Measured on 2 cores: ~6 s that otherwise sat inside the first training job.
    """
    started = time.perf_counter()
    import flts.forecasting.models  # noqa: F401  (torch, Prophet)

    if experiment is not None:
        try:
            tracker.find_finished_run(experiment, {"flts.warm_up": "1"})
        except FltsError as exc:  # the service still starts; the first message will retry
            log.warning("warm-up could not reach the tracker: %s", exc)
    log.info("warmed up in %.1fs", time.perf_counter() - started)


def mlflow_tracker() -> Tracker:
    """The MLflow tracker from MLFLOW_TRACKING_URI (imported lazily: mlflow is heavy)."""
    from flts.adapters.mlflow_tracker import MlflowTracker

    tracker: Tracker = MlflowTracker(load_settings(MlflowSettings).tracking_uri)
    return tracker


__all__ = [
    "SERVICE_NAMES",
    "SPEC_SERVICES",
    "Infra",
    "mlflow_tracker",
    "route_dlq",
    "service_command",
    "service_env",
    "warm_up",
]


def run_trainer(
    settings: S,
    build_handler: Callable[[S, StageContext, KafkaEventSink], Handler],
    operation: str,
    stop_event: threading.Event,
    *extra_topics: str,
    failure_outputs: FailureOutputs | None = None,
) -> int:
    """Run a trainer service (``train`` or ``train-global``) until ``stop_event`` is set.

    Both consume one topic in their group, train through a stage context whose events (RUNNING,
    epoch progress) go out through a Kafka sink, and warm up before joining the group.
    ``failure_outputs`` announces a dead-lettered claim downstream (the trainer's FAILED).
    """
    infra = Infra.from_env()
    tracker = mlflow_tracker()
    infra.ensure_topics(settings.consumer_topic, settings.producer_topic, *extra_topics)
    sink = KafkaEventSink(
        infra.producer, topic_router(settings.producer_topic, settings.progress_topic)
    )
    ctx = StageContext(store=infra.store(), tracker=tracker, events=sink)
    warm_up(tracker, settings.mlflow_experiment)
    worker = infra.worker(
        settings.consumer_group_id,
        [settings.consumer_topic],
        build_handler(settings, ctx, sink),
        settings.dlq_topic,
        stop_event,
        operation,
        failure_outputs,
    )
    worker.run()
    return 0
