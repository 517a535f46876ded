"""Service ``preprocess``: raw CSVs -> processed Parquet -> two claim checks.

Two modes. One-shot (``flts service preprocess --train ... --test ...``) and on request
(``--listen``): a worker consumes PreprocessRequested events from PREPROCESS_REQUEST_TOPIC
(raw CSVs already in the store) and produces the same two claims, so an orchestrator pays no
process start per run. One-shot details:

Uploads the CSVs to bucket ``dataset`` under keys derived from their content
(``raw/<sha256[:16]>/<file name>``), runs the preprocess stage, and publishes
TrainingDataReady to PRODUCER_TOPIC_0 (key ``train-claim``) and InferenceDataReady to
PRODUCER_TOPIC_1 (key ``inference-claim``), each confirmed by the broker. An identical rerun
reuses the processed data and re-emits the same claims. Any failure is published to
DLQ_PREPROCESS and re-raised, so the process exits non-zero.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from pydantic import ValidationError

from flts.domain.config import PreprocessConfig
from flts.domain.messages import PreprocessRequested, decode
from flts.errors import ConfigError, MessageError, MessagingError
from flts.kafka_utils import produce_message, publish_error
from flts.messaging.records import Handler, Output, Record
from flts.messaging.sinks import KafkaEventSink, topic_router
from flts.services.wiring import Infra
from flts.settings import PreprocessSettings, load_settings
from flts.stages import preprocess
from flts.stages.contracts import ObjectRef, PreprocessRequest, PreprocessResult
from flts.stages.ports import BUCKET_DATASET, NoTracker, ObjectStore, StageContext

log = logging.getLogger(__name__)
TRAIN_KEY, INFERENCE_KEY = "train-claim", "inference-claim"


@dataclass(frozen=True)
class PreprocessJob:
    """What one preprocess invocation is asked to do."""

    train_csv: Path
    test_csv: Path
    identifier: str | None = None
    config: PreprocessConfig = field(default_factory=PreprocessConfig)


def build_config(
    config_json: str | None,
    time_col: str | None = None,
    target: str | None = None,
    *,
    timezone: str | None = None,
    holidays: str | None = None,
    local_clock_lags: bool = False,
) -> PreprocessConfig:
    """PreprocessConfig from ``--config`` JSON, with ``--time-col``/``--target``/``--timezone``/
    ``--holidays`` winning, and ``--local-clock-lags`` turning the option on."""
    try:
        base = PreprocessConfig.model_validate_json(config_json or "{}")
    except ValidationError as exc:
        raise ConfigError(f"--config is not a valid PreprocessConfig: {exc}") from exc
    overrides: dict[str, Any] = {
        "time_col": time_col,
        "target": target,
        "timezone": timezone,
        "holidays": holidays,
        "local_clock_lags": True if local_clock_lags else None,
    }
    update = {k: v for k, v in overrides.items() if v is not None}
    try:
        return PreprocessConfig.model_validate({**base.model_dump(), **update})
    except ValidationError as exc:
        raise ConfigError(f"invalid preprocess option: {exc}") from exc


def upload_raw(store: ObjectStore, path: Path) -> tuple[ObjectRef, str]:
    """Put a local CSV in ``dataset`` under a content-derived key; returns (ref, sha256)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read CSV {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    key = f"raw/{digest[:16]}/{path.name}"
    store.ensure_bucket(BUCKET_DATASET)
    if not store.exists(BUCKET_DATASET, key):
        store.put_bytes(BUCKET_DATASET, key, data, "text/csv")
    return ObjectRef(bucket=BUCKET_DATASET, key=key), digest


def run_job(
    job: PreprocessJob,
    store: ObjectStore,
    producer: Producer,
    settings: PreprocessSettings,
) -> PreprocessResult:
    """Upload, preprocess and publish both claims (confirmed); raises on any failure."""
    train_ref, train_sha = upload_raw(store, job.train_csv)
    test_ref, test_sha = upload_raw(store, job.test_csv)
    identifier = (
        job.identifier
        or "run-" + hashlib.sha256(f"{train_sha}:{test_sha}".encode()).hexdigest()[:12]
    )
    sink = KafkaEventSink(producer, topic_router(None, settings.progress_topic))
    ctx = StageContext(store=store, tracker=NoTracker(), events=sink)
    request = PreprocessRequest(identifier=identifier, train=train_ref, test=test_ref)
    result = preprocess.run(request, job.config, ctx)
    for topic, claim, key in (
        (settings.producer_topic_0, result.training, TRAIN_KEY),
        (settings.producer_topic_1, result.inference, INFERENCE_KEY),
    ):
        if not produce_message(producer, topic, claim, key=key):
            raise MessagingError(f"claim for {identifier} was not confirmed by topic {topic!r}")
    log.info(
        "claims published%s",
        " (processed data reused)" if result.reused else "",
        extra={"stage": "preprocess", "identifier": identifier, "config_hash": result.config_hash},
    )
    return result


def build_request_handler(settings: PreprocessSettings, ctx: StageContext) -> Handler:
    """On-request mode: decode a request, run the stage, return both claims as outputs."""

    def handle(record: Record) -> list[Output]:
        req = decode(PreprocessRequested, record.body)
        try:
            config = PreprocessConfig.model_validate(req.config)
        except ValidationError as exc:
            raise MessageError(f"PreprocessRequested.config: {exc}") from exc
        request = PreprocessRequest(
            identifier=req.identifier,
            train=ObjectRef(bucket=req.train_bucket, key=req.train_object),
            test=ObjectRef(bucket=req.test_bucket, key=req.test_object),
        )
        result = preprocess.run(request, config, ctx)
        return [
            Output(settings.producer_topic_0, result.training, TRAIN_KEY),
            Output(settings.producer_topic_1, result.inference, INFERENCE_KEY),
        ]

    return handle


def serve(stop_event: threading.Event) -> int:
    """On-request mode until ``stop_event`` is set (SIGTERM/SIGINT)."""
    settings = load_settings(PreprocessSettings)
    infra = Infra.from_env()
    topics = (settings.request_topic, settings.producer_topic_0, settings.producer_topic_1)
    infra.ensure_topics(*topics)
    sink = KafkaEventSink(infra.producer, topic_router(None, settings.progress_topic))
    ctx = StageContext(store=infra.store(), tracker=NoTracker(), events=sink)
    worker = infra.worker(
        settings.group_id,
        [settings.request_topic],
        build_request_handler(settings, ctx),
        settings.dlq_topic,
        stop_event,
        "preprocess",
    )
    worker.run()
    return 0


def request_for(
    store: ObjectStore, identifier: str, train_csv: Path, test_csv: Path, config: PreprocessConfig
) -> PreprocessRequested:
    """Upload the CSVs (content-addressed) and build the request an orchestrator sends."""
    train_ref, _ = upload_raw(store, train_csv)
    test_ref, _ = upload_raw(store, test_csv)
    return PreprocessRequested(
        identifier=identifier,
        train_bucket=train_ref.bucket,
        train_object=train_ref.key,
        test_bucket=test_ref.bucket,
        test_object=test_ref.key,
        config=config.model_dump(mode="json"),
    )


def run(job: PreprocessJob) -> PreprocessResult:
    """The one-shot service: settings from env, DLQ record on failure, then re-raise."""
    settings = load_settings(PreprocessSettings)
    infra = Infra.from_env()
    infra.ensure_topics(settings.producer_topic_0, settings.producer_topic_1)
    try:
        return run_job(job, infra.store(), infra.producer, settings)
    except Exception as exc:
        payload = {
            "train": str(job.train_csv),
            "test": str(job.test_csv),
            "identifier": job.identifier,
            "config": job.config.model_dump(mode="json"),
        }
        publish_error(
            infra.producer,
            settings.dlq_topic,
            "preprocess",
            "Failure",
            f"{type(exc).__name__}: {exc}",
            payload,
            error_type=type(exc).__name__,
        )
        raise
    finally:
        infra.producer.flush(5.0)
