"""One generic Kafka worker that drives a stage handler with at-least-once delivery.

Per message: poll -> run the handler on a separate thread while the assigned partitions are
paused (the polling thread keeps calling ``poll()``, so heartbeats, rebalances and
``max.poll.interval.ms`` stay healthy however long training takes) -> resume -> produce the
handler's outputs, each confirmed by the broker -> commit the message's offset synchronously.

Error policy (the only broad ``except`` of a service lives here):

- The handler decodes its wire model; a :class:`MessageError` or any other failure goes to a
  dead-letter topic chosen by ``dlq_topic_for(consumed_topic, error)``, then the offset is
  committed and the worker moves on. A service may also announce the failure to downstream
  services (``failure_outputs``: a trainer's FAILED event), sent after the DLQ record.
- Infrastructure failures (:class:`TrackingError`, :class:`MessagingError`, and
  :class:`StorageError` except :class:`ObjectNotFoundError`) are retried by ``RetryPolicy``:
  ``attempts`` tries in all, with exponential backoff (1 s, 2 s, 4 s ... capped), before DLQ.
- If the broker cannot confirm the outputs or the DLQ record after the same retries, the worker
  raises :class:`MessagingError` without committing: the process exits and the message is
  redelivered after a restart.
- A partition revoked while its message was being handled is neither produced for nor
  committed: its new owner gets the message again (stages are idempotent).
- ``stop_event`` (set by SIGTERM/SIGINT) abandons the in-flight message uncommitted and closes
  the consumer, which leaves the group at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from flts.errors import FltsError, MessagingError
from flts.kafka_utils import commit_offsets_sync, produce_message, publish_error
from flts.messaging.records import (
    DlqRouter,
    FailureOutputs,
    Handler,
    Output,
    Record,
    RetryPolicy,
    is_transient,
)
from flts.settings import KafkaSettings

log = logging.getLogger(__name__)


def consumer_config(kafka: KafkaSettings, group_id: str, **extra: Any) -> dict[str, Any]:
    """librdkafka settings of a worker: manual commits, earliest reset, short session (tansu)."""
    return {
        **kafka.client_config(),
        "logger": logging.getLogger("flts.librdkafka"),  # not straight to stderr
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": kafka.session_timeout_ms,
        "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
        "max.poll.interval.ms": kafka.max_poll_interval_ms,
        **extra,
    }


def install_signal_handlers(stop_event: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop_event`` (call from the main thread)."""

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s received: stopping", signal.Signals(signum).name)
        stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


@dataclass
class WorkerStats:
    processed: int = 0
    dead_lettered: int = 0
    abandoned: int = 0
    skipped_revoked: int = 0


@dataclass
class _HandlerRun:
    """The handler on a daemon thread, so an abandoned run never blocks process exit."""

    target: Callable[[], list[Output]]
    done: threading.Event = field(default_factory=threading.Event)
    outputs: list[Output] = field(default_factory=list)
    error: BaseException | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="flts-handler", daemon=True).start()

    def _run(self) -> None:
        try:
            self.outputs = self.target()
        except BaseException as exc:  # the worker decides what a failure means
            self.error = exc
        finally:
            self.done.set()


class KafkaWorker:
    """Consumes ``topics`` in one group and drives ``handler`` message by message.

    Example::

        worker = KafkaWorker(consumer_config(kafka, "train-gru"), ["training-data"], handle,
                             producer, lambda topic, exc: dlq_of(topic), stop_event)
        worker.run()
    """

    def __init__(
        self,
        consumer_conf: dict[str, Any],
        topics: Sequence[str],
        handler: Handler,
        producer: Producer,
        dlq_topic_for: DlqRouter,
        stop_event: threading.Event | None = None,
        *,
        operation: str = "process",
        retry: RetryPolicy | None = None,
        poll_timeout_s: float = 0.2,
        ready_file: Path | None = None,
        failure_outputs: FailureOutputs | None = None,
    ) -> None:
        self.consumer_conf = dict(consumer_conf)
        self.topics = list(topics)
        self.handler = handler
        self.producer = producer
        self.dlq_topic_for = dlq_topic_for
        self.stop_event = stop_event or threading.Event()
        self.operation = operation
        self.retry = retry or RetryPolicy()
        self.poll_timeout_s = poll_timeout_s
        self.ready_file = ready_file
        self.failure_outputs = failure_outputs
        self.stats = WorkerStats()
        self._buffer: deque[Message] = deque()
        self._revoked: set[tuple[str, int]] = set()
        self._repause = False
        self._consumer: Consumer | None = None

    # --- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, max_messages: int | None = None) -> WorkerStats:
        """Process messages until ``stop_event`` is set (or ``max_messages`` were handled)."""
        try:
            consumer = Consumer(self.consumer_conf)
            consumer.subscribe(
                self.topics,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
        except KafkaException as exc:
            raise MessagingError(f"cannot subscribe to {self.topics}: {exc}") from exc
        self._consumer = consumer
        log.info("worker started", extra={"topic": ",".join(self.topics)})
        try:
            while not self.stop_event.is_set():
                if max_messages is not None and self._handled() >= max_messages:
                    break
                msg = self._buffer.popleft() if self._buffer else consumer.poll(self.poll_timeout_s)
                if self._repause:
                    # Assigned (again) while idle: librdkafka keeps a partition's pause across a
                    # rebalance, so one paused by a handler interrupted by a lost session would
                    # never be fetched again (found by the chaos suite's network cut).
                    self._repause = False
                    self._resume_all(consumer)
                if msg is None or self._is_error(msg):
                    continue
                self._process(consumer, msg)
        finally:
            self._close(consumer)
        return self.stats

    # --- internals --------------------------------------------------------------------------

    def _handled(self) -> int:
        s = self.stats
        return s.processed + s.dead_lettered + s.skipped_revoked

    def _close(self, consumer: Consumer) -> None:
        """Leave the group at once (no wait for the session timeout) and flush the producer."""
        try:
            consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("consumer close failed: %s", exc)
        self.producer.flush(5.0)
        log.info("worker stopped", extra={"topic": ",".join(self.topics)})

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])
        # Settled by the loop that polled: paused again while a handler runs, else resumed.
        self._repause = True
        if self.ready_file is not None:
            # The readiness probe of a supervisor: the group has taken this consumer in.
            self.ready_file.parent.mkdir(parents=True, exist_ok=True)
            self.ready_file.write_text(f"assigned {len(partitions)} partitions\n")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(p.topic, p.partition) for p in partitions}
        log.info("revoked %s", sorted(lost))
        self._revoked |= lost
        self._buffer = deque(m for m in self._buffer if (m.topic(), m.partition()) not in lost)

    def _is_error(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return False
        if err.code() == KafkaError._PARTITION_EOF:
            return True
        if err.fatal():
            raise MessagingError(f"consumer failed: {err}")
        log.warning("consumer error (continuing): %s", err)
        return True

    def _process(self, consumer: Consumer, msg: Message) -> None:
        record = Record.from_message(msg)
        ctx = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        started = time.monotonic()
        self._revoked.clear()
        run = _HandlerRun(lambda: self._call_with_retries(record))
        self._pause_all(consumer)
        run.start()
        try:
            finished = self._wait(consumer, run)
        finally:
            self._resume_all(consumer)
        if not finished:
            self.stats.abandoned += 1
            log.warning("stopping: in-flight message abandoned uncommitted", extra=ctx)
            return
        if (record.topic, record.partition) in self._revoked:
            self.stats.skipped_revoked += 1
            log.warning("partition revoked during handling: not committing", extra=ctx)
            return
        if run.error is not None:
            dlq = self._dead_letter(record, run.error)
            for out in self._announced_failure(record, run.error, dlq):
                self._deliver(out.topic, self._sender(out))
            self.stats.dead_lettered += 1
        else:
            for out in run.outputs:
                self._deliver(out.topic, self._sender(out))
                if out.on_confirmed is not None:
                    self._after_delivery(out.on_confirmed, record)
            self.stats.processed += 1
        duration_ms = round((time.monotonic() - started) * 1000)
        self._commit(consumer, record, {**ctx, "duration_ms": duration_ms})

    def _wait(self, consumer: Consumer, run: _HandlerRun) -> bool:
        """Poll (paused: no records, but heartbeats and rebalances) until the handler ends."""
        while not run.done.is_set():
            if self.stop_event.is_set():
                return False
            msg = consumer.poll(self.poll_timeout_s)
            if msg is not None and not self._is_error(msg):
                self._buffer.append(msg)  # fetched before the pause took effect: keep it
            if self._repause:
                self._pause_all(consumer)
        return True

    def _pause_all(self, consumer: Consumer) -> None:
        self._repause = False
        assignment = consumer.assignment()
        if assignment:
            consumer.pause(assignment)

    def _resume_all(self, consumer: Consumer) -> None:
        assignment = consumer.assignment()
        if assignment:
            consumer.resume(assignment)

    def _call_with_retries(self, record: Record) -> list[Output]:
        attempt = 1
        while True:
            try:
                return list(self.handler(record))
            except Exception as exc:
                if not is_transient(exc) or attempt >= self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt)
                log.warning(
                    "transient failure (try %d/%d), retrying in %.1fs: %s",
                    attempt,
                    self.retry.attempts,
                    delay,
                    exc,
                    extra={"topic": record.topic, "offset": record.offset},
                )
                if self.stop_event.wait(delay):
                    raise
                attempt += 1

    def _sender(self, out: Output) -> Callable[[], bool]:
        return lambda: produce_message(self.producer, out.topic, out.value, out.key)

    def _deliver(self, topic: str, send: Callable[[], bool]) -> None:
        """Send with the retry policy; the broker not confirming is fatal (no commit)."""
        for attempt in range(1, self.retry.attempts + 1):
            if send():
                return
            if attempt < self.retry.attempts and self.stop_event.wait(self.retry.delay(attempt)):
                break
        raise MessagingError(f"broker did not confirm a record to {topic!r}; not committing")

    def _after_delivery(self, hook: Callable[[], None], record: Record) -> None:
        """Run an output's ``on_confirmed`` hook, retrying infrastructure failures; if it keeps
        failing, stop without committing (the input is redelivered and sent again)."""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                hook()
                return
            except Exception as exc:
                if not is_transient(exc) or attempt >= self.retry.attempts:
                    raise MessagingError(
                        f"state after a confirmed send of {record.topic}@{record.offset} could "
                        f"not be recorded ({type(exc).__name__}: {exc}); not committing"
                    ) from exc
                if self.stop_event.wait(self.retry.delay(attempt)):
                    raise MessagingError("stopped while recording state; not committing") from exc

    def _announced_failure(self, record: Record, exc: BaseException, dlq: str) -> list[Output]:
        """The service's events about a dead-lettered record (none if it has no hook, or the
        hook itself fails: the DLQ record is already safe, so that failure is only logged)."""
        if self.failure_outputs is None:
            return []
        try:
            return list(self.failure_outputs(record, exc, dlq))
        except Exception:
            log.exception("could not announce the failure of %s@%d", record.topic, record.offset)
            return []

    def _dead_letter(self, record: Record, exc: BaseException) -> str:
        """Send ``record`` to its dead-letter topic (confirmed) and return that topic."""
        dlq = self.dlq_topic_for(record.topic, exc)
        details = f"{type(exc).__name__}: {exc}"
        log.error(
            "message failed, sent to %s: %s",
            dlq,
            details,
            exc_info=exc if not isinstance(exc, Exception) or _is_bug(exc) else None,
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error_type": type(exc).__name__,
                "dlq_topic": dlq,
            },
        )
        self._deliver(
            dlq,
            lambda: publish_error(
                self.producer,
                dlq,
                self.operation,
                "Failure",
                details,
                record.value,
                source_topic=record.topic,
                source_partition=record.partition,
                source_offset=record.offset,
                error_type=type(exc).__name__,
            ),
        )
        return dlq

    def _commit(self, consumer: Consumer, record: Record, ctx: dict[str, Any]) -> None:
        try:
            commit_offsets_sync(consumer, {(record.topic, record.partition): record.offset + 1})
        except MessagingError as exc:
            log.warning("commit failed, the message may be redelivered: %s", exc, extra=ctx)
            return
        log.info("committed", extra=ctx)


def _is_bug(exc: BaseException) -> bool:
    """Errors that are not FLTS's own are programming errors: log their traceback."""
    return not isinstance(exc, FltsError)
