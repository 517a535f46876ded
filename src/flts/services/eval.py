"""Service ``eval``: promote a champion once every expected model of a lineage succeeded.

Consumes MODEL_TRAINING_TOPIC in group EVAL_GROUP_ID. RUNNING events are ignored; each SUCCESS
is recorded in the persistent completion tracker (``flts.services.completion``) before its offset is
committed. When all EXPECTED_MODEL_TYPES succeeded for an (identifier, config_hash), the
evaluate stage runs exactly once and its ModelSelected goes to MODEL_SELECTED_TOPIC with key
``promotion``; the state then says ``published`` and later duplicates change nothing.

The ModelSelected is produced by this handler (confirmed) *before* the state is marked
published, so a crash in between re-publishes it on redelivery (at-least-once), never loses it.
Run one eval instance per group: the state has a single writer (topics have one partition).
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import Producer

from flts.domain.config import ModelType
from flts.domain.messages import ModelTrained, ModelTrainingRunning, ProgressEvent
from flts.domain.messages import decode_model_training as decode_event
from flts.errors import MessagingError, NoChampionError
from flts.kafka_utils import produce_message
from flts.messaging.sinks import KafkaEventSink, topic_router
from flts.messaging.worker import KafkaWorker, Output, Record, consumer_config
from flts.services.completion import CompletionState, CompletionTracker
from flts.services.wiring import Infra, mlflow_tracker, route_dlq
from flts.settings import EvalSettings, load_settings
from flts.stages import evaluate
from flts.stages.contracts import EvaluateRequest, EvaluateStageConfig
from flts.stages.ports import StageContext

log = logging.getLogger(__name__)
PROMOTION_KEY = "promotion"


class EvalService:
    """The eval handler and its state; ``handle`` is what the worker calls per record."""

    def __init__(
        self,
        settings: EvalSettings,
        ctx: StageContext,
        producer: Producer,
        completion: CompletionTracker | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.producer = producer
        self.completion = completion or CompletionTracker(ctx.store, settings.expected_model_types)
        self.stage_config = EvaluateStageConfig(
            expected_model_types=settings.expected_model_types,
            registered_model_name=settings.registered_model_name,
            alias=settings.champion_alias,
        )

    def handle(self, record: Record) -> list[Output]:
        event = decode_event(record.body)
        if isinstance(event, ModelTrainingRunning):
            return []
        return self.on_success(event)

    def on_success(self, event: ModelTrained) -> list[Output]:
        model_type = ModelType.parse(event.model_type)  # UnknownModelTypeError -> DLQ
        ctx = {"stage": "eval", "identifier": event.identifier, "config_hash": event.config_hash}
        if model_type not in self.settings.expected_model_types:
            log.info("ignoring SUCCESS of unexpected model type %s", model_type.value, extra=ctx)
            return []
        state, changed = self.completion.record(event)
        if state.published:
            log.info("already promoted; duplicate SUCCESS ignored", extra=ctx)
            return []
        if not state.complete:
            if changed:
                self._progress(state, "waiting for " + ", ".join(state.missing()))
            return []
        if not state.evaluated:
            self._evaluate(state)
        if state.selected is not None and not state.published:
            self._publish(state)
        return []

    def _evaluate(self, state: CompletionState) -> None:
        request = EvaluateRequest(
            identifier=state.identifier,
            config_hash=state.config_hash,
            results=state.ordered_results(),
        )
        try:
            result = evaluate.run(request, self.stage_config, self.ctx)
        except NoChampionError as exc:
            state.selected, state.reason = None, str(exc)
        else:
            state.selected, state.reason = result.selected, result.report.reason
        state.evaluated = True
        self.completion.save(state)
        if state.selected is None:
            self._progress(state, f"no champion promoted: {state.reason}")

    def _publish(self, state: CompletionState) -> None:
        selected = state.selected
        assert selected is not None
        topic = self.settings.model_selected_topic
        if not produce_message(self.producer, topic, selected, key=PROMOTION_KEY):
            raise MessagingError(f"ModelSelected for {state.identifier} not confirmed by {topic}")
        state.published = True
        self.completion.save(state)
        log.info(
            "promoted %s run %s",
            selected.model_type,
            selected.run_id,
            extra={
                "stage": "eval",
                "identifier": state.identifier,
                "config_hash": state.config_hash,
                "model_type": selected.model_type,
            },
        )
        self._progress(state, f"promoted {selected.model_type} (run {selected.run_id})")

    def _progress(self, state: CompletionState, message: str) -> None:
        log.info(message, extra={"stage": "eval", "identifier": state.identifier})
        self.ctx.events.emit(
            ProgressEvent(
                stage="eval",
                identifier=state.identifier,
                config_hash=state.config_hash,
                message=message,
            )
        )


def run(stop_event: threading.Event) -> int:
    """Run the evaluator until ``stop_event`` is set (SIGTERM/SIGINT)."""
    settings = load_settings(EvalSettings)
    infra = Infra.from_env()
    tracker = mlflow_tracker()
    infra.ensure_topics(settings.model_training_topic, settings.model_selected_topic)
    sink = KafkaEventSink(infra.producer, topic_router(settings.model_training_topic))
    ctx = StageContext(store=infra.store(), tracker=tracker, events=sink)
    service = EvalService(settings, ctx, infra.producer)
    worker = KafkaWorker(
        consumer_config(infra.kafka, settings.eval_group_id),
        [settings.model_training_topic],
        service.handle,
        infra.producer,
        route_dlq(settings.dlq_topic),
        stop_event,
        operation="evaluate",
    )
    worker.run()
    return 0
