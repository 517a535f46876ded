"""Every inference replica hot-swaps every promotion, not only those of its own partitions.

The inference service reads ``model-selected`` in its consumer group, so with several replicas
each promotion reaches one of them: the right one to run the lineage's batch claims, but the
others would go on answering ``/predict`` (and the live loop) with the champion it replaced.
This reader follows ``model-selected`` outside any group: it assigns itself every partition
(``assign``, no subscription, no commits; for the API, what was promoted before it started comes
from the registry at start-up or on a cache miss) and hands each promotion to
:meth:`flts.services.inference.InferenceService.follow_promotion`, which swaps it in unless the
replica already serves it. It runs in its own thread and never stops the service: a record it
cannot read is logged and skipped (the group consumer dead-letters it).

At start it first reads the topic from its beginning up to the end it found (``history``: the
latest promotion of each identifier). The registry's alias names one champion, but the live
loop keeps one per identifier, and the group consumer will not hand a restarted service the
promotions it committed before: without the history, a restart refused every observation
(unknown identifier) until the next promotion. The service loads a recovered champion on the
identifier's first observation, so a fleet's restart does not load every series at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from flts.domain.messages import ModelSelected, decode
from flts.errors import FltsError

log = logging.getLogger(__name__)

#: How long one poll waits (bounds how late a stop is noticed).
POLL_TIMEOUT_S = 0.5
#: How long to wait for the topic's metadata at start.
METADATA_TIMEOUT_S = 10.0
#: Longest the start-up read of the topic's history may take (it holds a record per promotion).
HISTORY_TIMEOUT_S = 30.0


class PromotionFollower:
    def __init__(
        self,
        topic: str,
        consumer_conf: dict[str, Any],
        on_promotion: Callable[[ModelSelected], object],
        stop_event: threading.Event,
    ) -> None:
        self.topic = topic
        # No group membership (assign, not subscribe) and nothing committed: every replica
        # reads every partition, and none of them moves the service group's offsets.
        self.consumer_conf = {**consumer_conf, "enable.auto.commit": False}
        self.on_promotion = on_promotion
        self.stop_event = stop_event
        self.seen = 0
        #: Identifier -> its latest promotion before start (see the module docstring).
        self.history: dict[str, ModelSelected] = {}
        self._consumer: Consumer | None = None
        self._thread = threading.Thread(target=self._run, name="flts-promotions", daemon=True)

    def start(self) -> None:
        """Read the history up to the topic's current end now (so nothing promoted from here
        on is missed while the service loads its start-up champion), then follow in the
        thread."""
        consumer = Consumer(self.consumer_conf)
        metadata = consumer.list_topics(self.topic, timeout=METADATA_TIMEOUT_S)
        partitions = sorted(metadata.topics[self.topic].partitions)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self._consumer = consumer
        self._read_history(consumer, partitions)
        log.info(
            "following %s (%d partitions) for hot-swaps; %d identifiers promoted before",
            self.topic,
            len(partitions),
            len(self.history),
        )
        self._thread.start()

    def _read_history(self, consumer: Consumer, partitions: list[int]) -> None:
        """Every record below each partition's end at start; later ones are the thread's."""
        ends: dict[int, int] = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=METADATA_TIMEOUT_S
            )
            if high > low:
                ends[p] = high
        deadline = time.monotonic() + HISTORY_TIMEOUT_S
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(POLL_TIMEOUT_S)
            if msg is None or msg.error() is not None:
                continue
            partition, offset = msg.partition(), msg.offset()
            if offset is None or partition not in ends or offset >= ends[partition]:
                self._follow(msg.value() or b"")  # promoted since start: a hot-swap
                continue
            try:
                selected = decode(ModelSelected, msg.value() or b"")
            except FltsError as exc:
                log.warning("promotion history: skipped an unreadable record: %s", exc)
            else:
                self.history[selected.identifier] = selected  # offsets rise: the latest wins
            if offset + 1 >= ends[partition]:
                del ends[partition]
        if ends:
            log.warning(
                "promotion history of %s not read to its end within %g s (partitions %s): "
                "their earlier champions are not recovered",
                self.topic,
                HISTORY_TIMEOUT_S,
                sorted(ends),
            )

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # set by start()
        try:
            while not self.stop_event.is_set():
                msg = consumer.poll(POLL_TIMEOUT_S)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("promotion follower: %s", error)
                    continue
                self._follow(msg.value() or b"")
        finally:
            consumer.close()

    def _follow(self, body: bytes) -> None:
        try:
            selected = decode(ModelSelected, body)
        except FltsError as exc:
            log.warning("promotion follower: skipped an unreadable record: %s", exc)
            return
        self.seen += 1
        try:
            self.on_promotion(selected)
        except (FltsError, KafkaException, OSError, ValueError, RuntimeError) as exc:
            # Loading failed (registry or store unreachable): the request path still loads the
            # series' alias on a miss, and the next promotion tries again.
            log.warning(
                "promotion follower: could not hot-swap run %s: %s",
                selected.run_id,
                exc,
                extra={"identifier": selected.identifier},
            )
