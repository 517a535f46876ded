"""Service ``eval``: promote a champion once every expected model of a lineage succeeded.

Consumes MODEL_TRAINING_TOPIC in group EVAL_GROUP_ID. RUNNING events are ignored; a FAILED
event (a trainer dead-lettered the claim) releases its model type for the lineage, like a model
a global fit left out; each SUCCESS is recorded in the persistent completion state
(``flts.services.completion``) before its offset is committed. The decisions (wait, evaluate,
publish, done) are ``flts.stages.promotion``'s: when all EXPECTED_MODEL_TYPES succeeded (or
failed) for an (identifier, config_hash), the evaluate stage runs once and its ModelSelected
goes to MODEL_SELECTED_TOPIC with key ``promotion``; the state then says ``published`` and later
duplicates change nothing.

The ModelSelected is returned to the worker, which gets it confirmed by the broker *before* the
state is marked published, so a crash in between re-publishes it on redelivery (at-least-once),
never loses it.
Run one eval instance per group: the state has a single writer (topics have one partition).
"""

from __future__ import annotations

import logging
import threading

from flts.domain.config import GLOBAL_MODEL_TYPES, ModelType
from flts.domain.messages import (
    GlobalTrainingDone,
    ModelSelected,
    ModelTrained,
    ModelTrainingFailed,
    ModelTrainingRunning,
    ProgressEvent,
    decode,
)
from flts.domain.messages import decode_model_training as decode_event
from flts.errors import NoChampionError
from flts.messaging.records import Output, Record
from flts.messaging.sinks import KafkaEventSink, topic_router
from flts.services.completion import CompletionTracker
from flts.services.wiring import Infra, mlflow_tracker
from flts.settings import EvalSettings, load_settings
from flts.stages import evaluate, promotion
from flts.stages.contracts import EvaluateRequest, EvaluateStageConfig
from flts.stages.ports import StageContext
from flts.stages.promotion import CompletionState

log = logging.getLogger(__name__)
PROMOTION_KEY = "promotion"


class EvalService:
    """Feeds SUCCESS events to the promotion decisions and acts on them; ``handle`` is what the
    worker calls per record. The ModelSelected is returned to the worker, which sends it and only
    then marks the state published (``Output.on_confirmed``) and commits."""

    def __init__(
        self,
        settings: EvalSettings,
        ctx: StageContext,
        completion: CompletionTracker | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.completion = completion or CompletionTracker(ctx.store, settings.expected_model_types)
        self.stage_config = EvaluateStageConfig(
            expected_model_types=settings.expected_model_types,
            registered_model_name=settings.registered_model_name,
            alias=settings.champion_alias,
            challenge_champion=settings.challenge_champion,
        )

    @property
    def topics(self) -> list[str]:
        """model-training, plus the global trainer's results when a global type is expected."""
        topics = [self.settings.model_training_topic]
        if any(m in GLOBAL_MODEL_TYPES for m in self.settings.expected_model_types):
            topics.append(self.settings.global_results_topic)
        return topics

    def handle(self, record: Record) -> list[Output]:
        if record.topic == self.settings.global_results_topic:
            return self.on_global_done(decode(GlobalTrainingDone, record.body))
        event = decode_event(record.body)
        if isinstance(event, ModelTrainingRunning):
            return []
        if isinstance(event, ModelTrainingFailed):
            return self.on_failed(event)
        return self.on_success(event)

    def on_failed(self, event: ModelTrainingFailed) -> list[Output]:
        """A model could not be trained on this lineage: rank the others without it."""
        model_type = ModelType.parse(event.model_type)  # UnknownModelTypeError -> DLQ
        if model_type not in self.settings.expected_model_types:
            return []
        reason = promotion.failure_reason(event)
        state, changed = promotion.record_waiver(
            self.completion.load(event.identifier, event.config_hash), model_type.value, reason
        )
        if changed:
            self._progress(state, f"{model_type.value} {reason}; ranking the other models")
            state = self.completion.save(state)
        return self._advance(state, changed)

    def on_global_done(self, done: GlobalTrainingDone) -> list[Output]:
        """A global fit left some series out: stop waiting for its type for those lineages."""
        outputs: list[Output] = []
        for exclusion in done.excluded:
            if exclusion.config_hash is None:
                continue  # no lineage to release: that series never had processed data
            state, changed = promotion.record_waiver(
                self.completion.load(exclusion.identifier, exclusion.config_hash),
                done.model_type,
                exclusion.reason,
            )
            if changed:
                state = self.completion.save(state)
            outputs.extend(self._advance(state, changed))
        return outputs

    def on_success(self, event: ModelTrained) -> list[Output]:
        model_type = ModelType.parse(event.model_type)  # UnknownModelTypeError -> DLQ
        ctx = {"stage": "eval", "identifier": event.identifier, "config_hash": event.config_hash}
        if model_type not in self.settings.expected_model_types:
            log.info("ignoring SUCCESS of unexpected model type %s", model_type.value, extra=ctx)
            return []
        state, changed = promotion.record_success(
            self.completion.load(event.identifier, event.config_hash), event
        )
        if changed:  # durable before the offset is committed
            state = self.completion.save(state)
        return self._advance(state, changed)

    def _advance(self, state: CompletionState, changed: bool) -> list[Output]:
        """Wait, evaluate, publish or nothing, as ``promotion.next_step`` says."""
        ctx = {"stage": "eval", "identifier": state.identifier, "config_hash": state.config_hash}
        step = promotion.next_step(state)
        if isinstance(step, promotion.Wait):
            if changed:
                self._progress(state, "waiting for " + ", ".join(step.missing))
            return []
        if isinstance(step, promotion.Evaluate):
            state = self._evaluate(state)
            step = promotion.next_step(state)
        if isinstance(step, promotion.Publish):
            return [self._promotion_output(state, step.selected)]
        if isinstance(step, promotion.Done):
            log.info("nothing to do: %s", step.why, extra=ctx)
        return []

    def _evaluate(self, state: CompletionState) -> CompletionState:
        if not state.results:  # every expected model failed or was left out
            reasons = "; ".join(f"{m}: {why}" for m, why in state.waived.items())
            state = self.completion.save(
                promotion.with_evaluation(state, None, f"no model was trained ({reasons})")
            )
            self._progress(state, f"no champion promoted: {state.reason}")
            return state
        request = EvaluateRequest(
            identifier=state.identifier,
            config_hash=state.config_hash,
            results=state.ordered_results(),
            waived=dict(state.waived),
        )
        try:
            result = evaluate.run(request, self.stage_config, self.ctx)
        except NoChampionError as exc:
            state = promotion.with_evaluation(state, None, str(exc))
        else:
            state = promotion.with_evaluation(state, result.selected, result.report.reason)
        state = self.completion.save(state)
        if state.selected is None:
            self._progress(state, f"no champion promoted: {state.reason}")
        return state

    def _promotion_output(self, state: CompletionState, selected: ModelSelected) -> Output:
        def published() -> None:
            self.completion.save(promotion.with_published(state))
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

        return Output(
            self.settings.model_selected_topic, selected, key=PROMOTION_KEY, on_confirmed=published
        )

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
    sink = KafkaEventSink(infra.producer, topic_router(None, settings.progress_topic))
    ctx = StageContext(store=infra.store(), tracker=tracker, events=sink)
    service = EvalService(settings, ctx)
    infra.ensure_topics(*service.topics, settings.model_selected_topic)
    worker = infra.worker(
        settings.eval_group_id,
        service.topics,
        service.handle,
        settings.dlq_topic,
        stop_event,
        "evaluate",
    )
    worker.run()
    return 0
