"""Service ``train``: one trainer per MODEL_TYPE (any trainable type), group CONSUMER_GROUP_ID.

Consumes claims from CONSUMER_TOPIC (training-data), runs the train stage, and produces the
SUCCESS event to PRODUCER_TOPIC (model-training) with key ``trained-<MODEL_TYPE>``. The RUNNING
event and epoch progress are emitted by the stage through the Kafka event sink while it trains.

A claim this model cannot be trained on (an error of the data or the model, not an outage of
the platform) goes to the trainer's DLQ as before, and a FAILED event with the same key follows
it, so the evaluator ranks the other models instead of waiting for this one for ever. After an
outage that outlasted the retries only the DLQ record is written: replaying it once the
platform is back trains the model, and the evaluator is still waiting for it.
"""

from __future__ import annotations

import logging
import threading

from flts.domain.messages import TrainingDataReady, decode
from flts.errors import MessageError
from flts.messaging.records import FailureOutputs, Handler, Output, Record
from flts.messaging.sinks import KafkaEventSink
from flts.services.wiring import run_trainer
from flts.settings import TrainSettings, load_settings
from flts.stages import train
from flts.stages.contracts import TrainStageConfig
from flts.stages.ports import StageContext

log = logging.getLogger(__name__)


def success_key(settings: TrainSettings) -> str:
    """The spec's key of the SUCCESS event."""
    return f"trained-{settings.model_type.value}"


def build_handler(
    settings: TrainSettings, ctx: StageContext, sink: KafkaEventSink | None = None
) -> Handler:
    """Decode a claim, train (or reuse a finished run), return the SUCCESS event."""
    config = TrainStageConfig(
        model_type=settings.model_type,
        train=settings.train_config(),
        experiment=settings.mlflow_experiment,
    )

    def handle(record: Record) -> list[Output]:
        claim = decode(TrainingDataReady, record.body)
        log.info(
            "training on %s/%s",
            claim.bucket,
            claim.object,
            extra={
                "stage": "train",
                "identifier": claim.identifier,
                "config_hash": claim.config_hash,
                "model_type": settings.model_type.value,
            },
        )
        try:
            result = train.run(claim, config, ctx)
        finally:
            if sink is not None:
                sink.flush()
        return [Output(settings.producer_topic, result, success_key(settings))]

    return handle


def build_failure_outputs(settings: TrainSettings) -> FailureOutputs:
    """The FAILED event announcing a dead-lettered claim of a known lineage (none otherwise)."""

    def failed(record: Record, exc: BaseException, dlq_topic: str) -> list[Output]:
        try:
            claim = decode(TrainingDataReady, record.body)
        except MessageError:
            return []  # no lineage to release
        event = train.failure_event(settings.model_type, claim, exc, dlq_topic)
        return (
            [] if event is None else [Output(settings.producer_topic, event, success_key(settings))]
        )

    return failed


def run(stop_event: threading.Event) -> int:
    """Run the trainer until ``stop_event`` is set (SIGTERM/SIGINT)."""
    settings = load_settings(TrainSettings)
    return run_trainer(
        settings,
        build_handler,
        f"train {settings.model_type.value}",
        stop_event,
        failure_outputs=build_failure_outputs(settings),
    )
