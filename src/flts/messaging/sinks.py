"""The Kafka ``EventSink``: where a stage's in-flight events (RUNNING, progress) go.

The stage says *what* happened; the runtime decides the topic. RUNNING events are produced
with a confirmed delivery (the spec's evaluator and inference react to them); progress events
are fire-and-forget so they never slow training, and are flushed when the work ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaException, Producer

from flts.domain.messages import ModelTrainingRunning, ProgressEvent, WireMessage
from flts.kafka_utils import encode_value, produce_message

log = logging.getLogger(__name__)

#: event -> topic (None: drop the event).
TopicFor = Callable[[WireMessage], str | None]


def topic_router(model_training_topic: str | None, progress_topic: str) -> TopicFor:
    """RUNNING -> ``model_training_topic`` (None: services that emit none); ProgressEvent ->
    ``progress_topic``; others dropped."""

    def route(event: WireMessage) -> str | None:
        if isinstance(event, ModelTrainingRunning):
            return model_training_topic
        if isinstance(event, ProgressEvent):
            return progress_topic
        return None

    return route


class KafkaEventSink:
    """``EventSink`` over a confluent-kafka producer (thread-safe: stages emit from workers)."""

    def __init__(self, producer: Producer, topic_for: TopicFor) -> None:
        self.producer = producer
        self.topic_for = topic_for

    def emit(self, event: WireMessage, key: str | None = None) -> None:
        topic = self.topic_for(event)
        if topic is None:
            log.debug("no topic for %s: dropped", type(event).__name__)
            return
        if isinstance(event, ProgressEvent):
            self._fire_and_forget(topic, event, key)
            return
        if not produce_message(self.producer, topic, event, key):
            log.error("%s to %s was not confirmed", type(event).__name__, topic)

    def _fire_and_forget(self, topic: str, event: WireMessage, key: str | None) -> None:
        try:
            self.producer.produce(topic, value=encode_value(event), key=key)
            self.producer.poll(0)
        except (BufferError, KafkaException) as exc:
            log.debug("progress event dropped: %s", exc)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait for queued progress events (call when the work ends)."""
        remaining = self.producer.flush(timeout_s)
        if remaining:
            log.warning("%d progress events not delivered", remaining)
