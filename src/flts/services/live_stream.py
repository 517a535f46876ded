"""The observations stream of the inference service: its own consumer thread, batched.

Observations arrive many per second per identifier. The claim worker
(:class:`flts.messaging.worker.KafkaWorker`) pauses the partitions, handles one message,
waits for every output's confirmation and commits synchronously: right for claims and
promotions, but about one message per second on tansu (every resume is a new fetch). So
observations have their own consumer (group OBSERVATIONS_GROUP_ID) in a thread: it takes
batches, runs :meth:`flts.services.live.LiveLoop.on_observation` for each record, queues the
outputs on the shared producer and commits asynchronously after each batch.

Delivery: at most a batch may be seen twice after a crash (the commit is asynchronous); a
replayed observation is then a duplicate timestamp, which the live window drops and counts.

Recovery: when a partition is assigned (start, restart, rebalance), the stream rewinds it by up
to LIVE_RECOVERY_RECORDS records before the group's committed offset and feeds those to the live
loop as warm-up (window only: no forecast, no score, no dead letter; they were handled before),
so the windows hold what they held before the restart. An identifier's champion promoted
before the restart is loaded first (``recover``, the service's promotion history).
A bad observation (``MessageError``: unknown identifier, missing or non-numeric field) goes to
``DLQ-<topic>`` with the reason; any other failure of one observation is logged and sent there
too, and the stream keeps going.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from flts.domain.messages import DlqRecord, Observation, decode, utc_now_iso
from flts.errors import MessageError
from flts.kafka_utils import encode_value
from flts.messaging.records import Output, Record, dlq_of
from flts.services.live import LiveLoop

log = logging.getLogger(__name__)

#: Records taken per poll; a batch is committed once.
BATCH = 500
#: How long one poll waits for a record (bounds how late a stop is noticed).
POLL_TIMEOUT_S = 0.1
#: How soon a flush that failed (S3 unreachable) is tried again when no new batch wakes the
#: flusher first: a stream whose observations stopped must not hold its last flush forever.
FLUSH_RETRY_S = 5.0
#: How long the committed offsets and watermarks of an assignment may take to read.
OFFSETS_TIMEOUT_S = 10.0


class ObservationStream:
    def __init__(
        self,
        live: LiveLoop,
        consumer_conf: dict[str, Any],
        producer: Producer,
        stop_event: threading.Event,
        recover: Callable[[str], None] | None = None,
    ) -> None:
        self.live = live
        self.recover = recover
        self.recovery_records = live.settings.recovery_records
        #: Partition -> the committed offset it was rewound from; records below it are warm-up.
        self._replay_until: dict[int, int] = {}
        #: Partition -> (records replayed, monotonic start) while its replay runs (for the log).
        self._replaying: dict[int, tuple[int, float]] = {}
        self.replayed = 0
        self.topic = live.settings.observations_topic
        self.dlq_topic = dlq_of(self.topic)
        self.consumer_conf = consumer_conf
        self.producer = producer
        self.stop_event = stop_event
        self.handled = 0
        self.dead_lettered = 0
        self._thread = threading.Thread(target=self.run, name="flts-observations", daemon=True)
        # The flushes' S3 writes run here, one at a time, so the next observation never waits
        # for them (they cost tens of ms on a loaded S3; a forecast costs a few).
        self._flush_due = threading.Event()
        self._flush_failed = False
        self._closing = False
        self._flusher = threading.Thread(
            target=self._flush_loop, name="flts-live-flush", daemon=True
        )

    def start(self) -> None:
        self._flusher.start()
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def run(self) -> None:
        consumer = Consumer(self.consumer_conf)
        consumer.subscribe([self.topic], on_assign=self._on_assign)
        log.info("observations stream on %s", self.topic)
        try:
            while not self.stop_event.is_set():
                batch = _next_batch(consumer)
                records = [m for m in batch if not _is_error(m)]
                handled = False
                for msg in records:
                    record = Record.from_message(msg)
                    if record.offset < self._replay_until.get(record.partition, -1):
                        self.replay(record)
                        continue
                    self._end_replay(record.partition)
                    handled = True
                    for out in self.handle(record):
                        self._send(out)
                    self.producer.poll(0)  # the forecast leaves now, not after the batch
                # A batch of replayed records only is not committed: that would move the
                # group's offset back into the replay, and a crash then would forecast again.
                if handled:
                    self._flush_due.set()
                    consumer.commit(asynchronous=True)
        finally:
            _commit_before_close(consumer)
            consumer.close()
            self._closing = True
            self._flush_due.set()
            if self._flusher.is_alive():
                self._flusher.join(30.0)
            self._flush_deferred()  # anything deferred after the flusher's last pass
            self.producer.flush(5.0)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Rewind each assigned partition by up to ``recovery_records`` before its committed
        offset (see the module docstring); a partition never committed starts as configured."""
        for tp in partitions:
            self._replay_until.pop(tp.partition, None)
            self._replaying.pop(tp.partition, None)
        if self.recovery_records <= 0:
            return
        committed = consumer.committed(partitions, timeout=OFFSETS_TIMEOUT_S)
        rewound = []
        for tp in committed:
            if tp.offset < 0:  # nothing committed yet: no history of this group to replay
                rewound.append(tp)
                continue
            low, _high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=OFFSETS_TIMEOUT_S
            )
            start = max(low, tp.offset - self.recovery_records)
            if start < tp.offset:
                self._replay_until[tp.partition] = tp.offset
                self._replaying[tp.partition] = (0, time.monotonic())
                log.info(
                    "observations partition %d: replaying offsets %d-%d as warm-up",
                    tp.partition,
                    start,
                    tp.offset - 1,
                )
            rewound.append(TopicPartition(tp.topic, tp.partition, start))
        consumer.assign(rewound)

    def replay(self, record: Record) -> None:
        """An observation handled before the restart: back into its window, nothing out."""
        count, started = self._replaying.get(record.partition, (0, time.monotonic()))
        self._replaying[record.partition] = (count + 1, started)
        try:
            obs = decode(Observation, record.body)
            if self.recover is not None:
                self.recover(obs.identifier)
            self.live.observe(obs.model_copy(update={"warmup": True}))
        except Exception as exc:  # it was dead-lettered (or forecast) the first time
            log.debug("replayed observation at offset %d skipped: %s", record.offset, exc)
            return
        self.replayed += 1

    def _end_replay(self, partition: int) -> None:
        """Log once per replay, at the partition's first new record: what the restart cost."""
        done = self._replaying.pop(partition, None)
        if done is not None:
            count, started = done
            log.info(
                "observations partition %d: replayed %d records as warm-up in %.1f s",
                partition,
                count,
                time.monotonic() - started,
            )

    def _flush_loop(self) -> None:
        """Wakes after each batch (the event is cleared before the pass, so a flush deferred
        during it wakes the next one), or FLUSH_RETRY_S after a failed pass; ends once the
        stream stops."""
        while True:
            self._flush_due.wait(FLUSH_RETRY_S if self._flush_failed else None)
            self._flush_due.clear()
            self._flush_deferred()
            if self._closing:
                return

    def _flush_deferred(self) -> None:
        """The flushes' S3 writes, then the events citing them."""
        for out in self._complete_deferred():
            self._send(out)
        self.producer.poll(0)

    def handle(self, record: Record) -> list[Output]:
        """One observation's outputs, or its dead letter."""
        try:
            obs = decode(Observation, record.body)
            if self.recover is not None:
                self.recover(obs.identifier)
            outputs = self.live.observe(obs)
        except Exception as exc:  # one bad observation never stops the stream
            if not isinstance(exc, MessageError):
                log.exception("observation at offset %d failed", record.offset)
            self.dead_lettered += 1
            return [self._dead_letter(record, exc)]
        self.handled += 1
        return outputs

    def _complete_deferred(self) -> list[Output]:
        try:
            outputs = self.live.complete_deferred()
        except Exception as exc:  # S3 down: kept by the live loop and retried
            log.error(
                "live flush failed, retried after the next batch or in %g s: %s",
                FLUSH_RETRY_S,
                exc,
            )
            self._flush_failed = True
            return []
        self._flush_failed = False
        return outputs

    def _send(self, out: Output) -> None:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                log.error("live output to %s not delivered: %s", out.topic, err)

        data = encode_value(out.value)
        try:
            self.producer.produce(out.topic, value=data, key=out.key, on_delivery=delivered)
        except BufferError:
            self.producer.poll(1.0)  # the local queue is full: let it drain once, then retry
            self.producer.produce(out.topic, value=data, key=out.key, on_delivery=delivered)

    def _dead_letter(self, record: Record, exc: BaseException) -> Output:
        try:
            payload: Any = orjson.loads(record.body)
        except orjson.JSONDecodeError:
            payload = record.body.decode("utf-8", "replace")
        dlq = DlqRecord(
            operation="live-observation",
            status="Failure",
            error_details=f"{type(exc).__name__}: {exc}",
            payload=payload,
            timestamp=utc_now_iso(),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            error_type=type(exc).__name__,
        )
        log.warning("observation dead-lettered: %s", exc, extra={"dlq_topic": self.dlq_topic})
        return Output(self.dlq_topic, dlq, key=record.key)


def _next_batch(consumer: Consumer) -> list[Message]:
    """The next record as soon as it arrives, plus what is already fetched behind it.

    Not ``consume(BATCH, timeout)`` alone: it returns only when the batch is full or the
    timeout ends, which put a whole timeout into every live forecast's latency.
    """
    first = consumer.poll(POLL_TIMEOUT_S)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=BATCH - 1, timeout=0)]


def _commit_before_close(consumer: Consumer) -> None:
    """Commit the last batch synchronously: a restart replays from here (recovery) and forecasts
    nothing twice. Nothing consumed yet is not an error."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            log.warning("observations consumer: last commit failed: %s", exc)


def _is_error(msg: Message) -> bool:
    err = msg.error()
    if err is None:
        return False
    if err.code() != KafkaError._PARTITION_EOF:
        log.warning("observations consumer: %s", err)
    return True
