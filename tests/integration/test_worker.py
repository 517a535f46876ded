"""The generic worker against the real broker: commit after output, DLQ, stop mid-handler."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from flts import kafka_utils as ku
from flts.domain.messages import DlqRecord, decode
from flts.messaging.records import Output, Record, RetryPolicy, dlq_of
from flts.messaging.worker import KafkaWorker, consumer_config
from flts.settings import KafkaSettings

pytestmark = pytest.mark.integration


def read_topic(settings: KafkaSettings, topic: str, n: int, timeout_s: float = 30.0) -> list[Any]:
    """The first ``n`` JSON values of ``topic`` (a fresh group reads from the beginning)."""
    consumer = ku.create_consumer_configurable(
        topic, f"r-{uuid.uuid4().hex[:8]}", settings=settings
    )
    got: list[Any] = []
    try:
        ku.consume_messages(
            consumer, lambda v, _m: got.append(v), max_messages=n, timeout_s=timeout_s
        )
    finally:
        consumer.close()
    return got


def committed(settings: KafkaSettings, group: str, topic: str) -> int:
    consumer = Consumer({**settings.client_config(), "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def start(worker: KafkaWorker, max_messages: int | None = None) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs={"max_messages": max_messages}, daemon=True)
    thread.start()
    return thread


def make_worker(
    settings: KafkaSettings, group: str, topic: str, handler: Callable[[Record], list[Output]]
) -> KafkaWorker:
    return KafkaWorker(
        consumer_config(settings, group),
        [topic],
        handler,
        ku.create_producer(settings=settings),
        lambda t, _exc: dlq_of(t),
        operation="test",
        retry=RetryPolicy(attempts=2, initial_delay_s=0.05),
    )


def test_good_message_is_processed_produced_and_committed(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    source, sink = unique_topic("in"), unique_topic("out")
    producer = ku.create_producer(settings=kafka_settings)
    assert ku.produce_message(producer, source, {"n": 1}, key="k")

    def handler(record: Record) -> list[Output]:
        value = orjson.loads(record.body)
        return [Output(sink, {"n": value["n"] * 10, "from": record.offset}, "k2")]

    group = f"g-{uuid.uuid4().hex[:8]}"
    worker = make_worker(kafka_settings, group, source, handler)
    start(worker, max_messages=1).join(60)
    assert worker.stats.processed == 1
    assert read_topic(kafka_settings, sink, 1) == [{"n": 10, "from": 0}]
    assert committed(kafka_settings, group, source) == 1


def test_handler_failure_goes_to_the_dlq_and_the_next_message_is_processed(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    source, sink = unique_topic("in"), unique_topic("out")
    ku.ensure_topics(kafka_settings.bootstrap_servers, [dlq_of(source)])
    producer = ku.create_producer(settings=kafka_settings)
    assert ku.produce_message(producer, source, {"fail": True})
    assert ku.produce_message(producer, source, b"not json at all")
    assert ku.produce_message(producer, source, {"fail": False})

    def handler(record: Record) -> list[Output]:
        value = orjson.loads(record.body)
        if value["fail"]:
            raise ValueError("the handler refused this one")
        return [Output(sink, {"ok": record.offset})]

    group = f"g-{uuid.uuid4().hex[:8]}"
    worker = make_worker(kafka_settings, group, source, handler)
    start(worker, max_messages=3).join(60)
    assert (worker.stats.processed, worker.stats.dead_lettered) == (1, 2)
    assert read_topic(kafka_settings, sink, 1) == [{"ok": 2}]
    dlq = [decode(DlqRecord, v) for v in read_topic(kafka_settings, dlq_of(source), 2)]
    assert dlq[0].status == "Failure"
    assert dlq[0].operation == "test"
    assert dlq[0].error_type == "ValueError"
    assert "the handler refused this one" in dlq[0].error_details
    assert dlq[0].payload == {"fail": True}
    assert (dlq[0].source_topic, dlq[0].source_partition, dlq[0].source_offset) == (source, 0, 0)
    assert dlq[1].payload == "not json at all"  # not JSON: kept as text
    assert dlq[1].error_type == "JSONDecodeError"
    assert committed(kafka_settings, group, source) == 3


def test_a_dead_lettered_record_is_announced_after_its_dlq_record(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    """``failure_outputs`` (a trainer's FAILED event) goes out after the DLQ record; a hook
    that fails itself is logged, and the record is still committed."""
    source, sink = unique_topic("in"), unique_topic("out")
    ku.ensure_topics(kafka_settings.bootstrap_servers, [dlq_of(source), sink])
    producer = ku.create_producer(settings=kafka_settings)
    assert ku.produce_message(producer, source, {"n": 1})
    assert ku.produce_message(producer, source, {"n": 2})

    def handler(record: Record) -> list[Output]:
        raise ValueError(f"cannot use {orjson.loads(record.body)['n']}")

    def announce(record: Record, exc: BaseException, dlq: str) -> list[Output]:
        if record.offset == 1:
            raise RuntimeError("the hook itself broke")
        return [Output(sink, {"failed": record.offset, "why": str(exc), "dlq": dlq}, "k")]

    group = f"g-{uuid.uuid4().hex[:8]}"
    worker = make_worker(kafka_settings, group, source, handler)
    worker.failure_outputs = announce
    start(worker, max_messages=2).join(60)
    assert worker.stats.dead_lettered == 2
    assert len(read_topic(kafka_settings, dlq_of(source), 2)) == 2
    announced = read_topic(kafka_settings, sink, 1)
    assert announced == [{"failed": 0, "why": "cannot use 1", "dlq": dlq_of(source)}]
    assert committed(kafka_settings, group, source) == 2


def test_stop_mid_handler_leaves_the_message_uncommitted_for_the_next_worker(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    source, sink = unique_topic("in"), unique_topic("out")
    producer = ku.create_producer(settings=kafka_settings)
    assert ku.produce_message(producer, source, {"job": "long"})
    entered, release = threading.Event(), threading.Event()

    def slow(record: Record) -> list[Output]:
        entered.set()
        release.wait(60)
        return [Output(sink, {"done_by": "first"})]

    group = f"g-{uuid.uuid4().hex[:8]}"
    first = make_worker(kafka_settings, group, source, slow)
    thread = start(first)
    assert entered.wait(60), "the first worker never received the message"
    time.sleep(1.0)  # the consumer keeps polling (paused) while the handler runs
    first.stop()  # what SIGTERM does
    thread.join(30)
    assert not thread.is_alive()
    assert first.stats.abandoned == 1
    release.set()

    def quick(record: Record) -> list[Output]:
        return [Output(sink, {"done_by": "second", "offset": record.offset})]

    second = make_worker(kafka_settings, group, source, quick)
    started = time.monotonic()
    start(second, max_messages=1).join(60)
    assert second.stats.processed == 1
    # The first worker left the group on close, so no session timeout had to expire.
    assert time.monotonic() - started < 20
    assert read_topic(kafka_settings, sink, 1) == [{"done_by": "second", "offset": 0}]
    assert committed(kafka_settings, group, source) == 1
