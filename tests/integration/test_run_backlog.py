"""flts.run.backlog against the real broker: a local run's trainers start past earlier runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from flts import kafka_utils as ku
from flts.run.backlog import Skipped, skip_earlier_records
from flts.settings import KafkaSettings

pytestmark = pytest.mark.integration


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [tp.offset for tp in consumer.committed(tps, timeout=10)]
    finally:
        consumer.close()


def _produce(settings: KafkaSettings, topic: str, values: list[int]) -> None:
    producer = ku.create_producer(settings=settings)
    for value in values:  # keys spread the records over the partitions
        assert ku.produce_message(producer, topic, {"i": value}, key=f"k{value}")


def test_groups_move_past_records_written_before_the_run_began_and_never_back(
    kafka_bootstrap: str, kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("backlog", partitions=2)
    _produce(kafka_settings, topic, list(range(6)))  # earlier runs' records
    time.sleep(1.1)
    began = int(time.time() * 1000)
    time.sleep(0.1)
    _produce(kafka_settings, topic, [6, 7])  # written after the run began: kept
    never_ran, behind = f"g-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    consumer = ku.create_consumer_configurable(topic, behind, settings=kafka_settings)
    try:
        first: list[int] = []
        ku.consume_messages(consumer, lambda v, m: first.append(v["i"]), max_messages=1)
        ku.commit_offsets_sync(consumer, {(topic, p): 1 for p in range(2)})
    finally:
        consumer.close()

    skipped = skip_earlier_records(kafka_bootstrap, [(never_ran, topic), (behind, topic)], began)
    assert skipped == [Skipped(never_ran, topic, 6), Skipped(behind, topic, 4)]

    for group in (never_ran, behind):
        assert sorted(_read_and_commit(kafka_settings, topic, group, 2)) == [6, 7]
    offsets = _committed(kafka_bootstrap, behind, topic, 2)  # after records 6 and 7
    assert skip_earlier_records(kafka_bootstrap, [(behind, topic)], began) == []
    assert _committed(kafka_bootstrap, behind, topic, 2) == offsets  # nothing moved back


def _read_and_commit(settings: KafkaSettings, topic: str, group: str, count: int) -> list[int]:
    reader = ku.create_consumer_configurable(topic, group, settings=settings)
    seen: list[int] = []

    def take(value: dict[str, int], message: Message) -> None:
        seen.append(value["i"])
        ku.commit_message(reader, message)

    try:
        ku.consume_messages(reader, take, max_messages=count, timeout_s=20)
    finally:
        reader.close()
    return seen
