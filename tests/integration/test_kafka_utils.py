"""flts.kafka_utils against the real broker (tansu) of the session stack."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Message

from flts import kafka_utils as ku
from flts.domain.messages import DlqRecord, TrainingDataReady, decode
from flts.settings import KafkaSettings

pytestmark = pytest.mark.integration


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _collect(consumer: Any, n: int, timeout_s: float = 30.0) -> list[tuple[Any, Message]]:
    got: list[tuple[Any, Message]] = []
    ku.consume_messages(
        consumer, lambda v, m: got.append((v, m)), max_messages=n, timeout_s=timeout_s
    )
    return got


def test_produce_and_consume_with_keys(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("keys")
    producer = ku.create_producer(settings=kafka_settings)
    claim = TrainingDataReady(bucket="processed-data", object="a.parquet", size=3, identifier="r1")
    assert ku.produce_message(producer, topic, claim, key="train-claim")
    assert ku.produce_message(producer, topic, {"n": 2})
    consumer = ku.create_consumer(topic, _group(), settings=kafka_settings)
    try:
        got = _collect(consumer, 2)
    finally:
        consumer.close()
    assert [v for v, _ in got] == [claim.to_wire(), {"n": 2}]
    assert got[0][1].key() == b"train-claim"
    assert got[1][1].key() is None
    assert decode(TrainingDataReady, got[0][0]) == claim


def test_two_groups_each_get_every_message(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("fanout")
    producer = ku.create_producer(settings=kafka_settings)
    assert ku.produce_messages(producer, topic, [{"i": i} for i in range(5)]) == 5
    for group in (_group(), _group()):
        consumer = ku.create_consumer_configurable(topic, group, settings=kafka_settings)
        try:
            assert [v["i"] for v, _ in _collect(consumer, 5)] == list(range(5))
        finally:
            consumer.close()


def test_manual_commit_resumes_at_committed_offset(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic, group = unique_topic("commit"), _group()
    producer = ku.create_producer(settings=kafka_settings)
    assert ku.produce_messages(producer, topic, [{"i": i} for i in range(4)]) == 4
    first = ku.create_consumer_configurable(topic, group, settings=kafka_settings)
    try:
        got = _collect(first, 2)
        msg = got[-1][1]
        ku.commit_offsets_sync(first, {(topic, msg.partition()): msg.offset() + 1})
    finally:
        first.close()
    second = ku.create_consumer_configurable(topic, group, settings=kafka_settings)
    try:
        rest = _collect(second, 2)
    finally:
        second.close()
    assert [v["i"] for v, _ in rest] == [2, 3]


def test_one_consumer_on_three_topics(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topics = [unique_topic(f"multi{i}") for i in range(3)]
    producer = ku.create_producer(settings=kafka_settings)
    for i, topic in enumerate(topics):
        assert ku.produce_message(producer, topic, {"from": i})
    consumer = ku.create_consumer_configurable(topics, _group(), settings=kafka_settings)
    try:
        got = _collect(consumer, 3)
    finally:
        consumer.close()
    assert sorted((m.topic(), v["from"]) for v, m in got) == sorted(
        (t, i) for i, t in enumerate(topics)
    )


def test_publish_error_writes_a_dlq_record(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    dlq = unique_topic("DLQ-x")
    producer = ku.create_producer(settings=kafka_settings)
    payload = {"bucket": "processed-data", "object": "x"}
    ok = ku.publish_error(
        producer, dlq, "train", "Failure", "boom", payload, source_topic="training-data"
    )
    assert ok
    consumer = ku.create_consumer_configurable(dlq, _group(), settings=kafka_settings)
    try:
        (value, _msg), *_ = _collect(consumer, 1)
    finally:
        consumer.close()
    record = decode(DlqRecord, value)
    assert (record.operation, record.status, record.error_details) == ("train", "Failure", "boom")
    assert record.payload == payload
    assert record.source_topic == "training-data"
    assert record.timestamp.endswith("Z")


def test_produce_to_unreachable_broker_returns_false() -> None:
    producer = ku.create_producer(
        settings=KafkaSettings(bootstrap_servers="127.0.0.1:1"), message_timeout_ms=1500
    )
    assert ku.produce_message(producer, "training-data", {"x": 1}, timeout_s=5) is False


def test_undecodable_records_go_to_the_handler(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("raw")
    producer = ku.create_producer(settings=kafka_settings)
    assert ku.produce_message(producer, topic, b"not json")
    bad: list[bytes | None] = []
    consumer = ku.create_consumer_configurable(topic, _group(), settings=kafka_settings)
    try:
        n = ku.consume_messages(
            consumer,
            lambda v, m: pytest.fail("callback must not see undecodable records"),
            max_messages=1,
            timeout_s=30,
            on_undecodable=lambda m, exc: bad.append(m.value()),
        )
    finally:
        consumer.close()
    assert n == 1
    assert bad == [b"not json"]
