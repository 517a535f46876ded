"""Every inference replica sees every promotion: followers on the real broker, beside a consumer
of the service group that owns the partitions (issue 13, replicas)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, TopicPartition
from tests.integration.test_worker import make_worker, start

from flts import kafka_utils as ku
from flts.domain.messages import ModelSelected
from flts.messaging.records import Output, Record
from flts.messaging.worker import consumer_config
from flts.services.promotion_follow import PromotionFollower
from flts.settings import KafkaSettings

pytestmark = pytest.mark.integration


def _selected(run_id: str, identifier: str) -> ModelSelected:
    return ModelSelected(
        model_uri=f"models:/m/{run_id}",
        model_type="GRU",
        run_id=run_id,
        config_hash="h",
        composite_score=0.9,
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        promotion_time="2026-01-01T00:00:00Z",
        identifier=identifier,
    )


def _wait(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_each_follower_sees_every_promotion_from_the_end_and_commits_nothing(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("model-selected", partitions=2)
    producer = ku.create_producer(settings=kafka_settings)
    before = _selected("before-start", "f/a")
    ku.produce_message(producer, topic, before.model_dump(), key="f/a")
    producer.flush(10)
    group = f"inference-{uuid.uuid4().hex[:8]}"
    owned: list[str] = []

    def owner(record: Record) -> list[Output]:  # the replica the group gives the partitions
        owned.append(ModelSelected.model_validate_json(record.body).run_id)
        return []

    stop = threading.Event()
    worker = make_worker(kafka_settings, group, topic, owner)
    worker_thread = start(worker)
    seen: list[list[str]] = [[], []]
    followers = [
        PromotionFollower(
            topic,
            consumer_config(kafka_settings, f"{group}-follower"),
            lambda s, got=got: got.append(s.run_id),
            stop,
        )
        for got in seen
    ]
    for follower in followers:
        follower.start()
    try:
        sent = [_selected(f"run-{i}", f"f/s{i}") for i in range(6)]
        for selected in sent:  # keys spread them over both partitions
            ku.produce_message(producer, topic, selected.model_dump(), key=selected.identifier)
        producer.flush(10)
        wanted = {s.run_id for s in sent}
        assert _wait(lambda: all(wanted <= set(got) for got in seen)), seen
        assert _wait(lambda: wanted | {before.run_id} <= set(owned)), owned
        # From the end: what was promoted before a follower started is the registry's business.
        assert all(before.run_id not in got for got in seen)
    finally:
        stop.set()
        worker.stop()
        for follower in followers:
            follower.join(10)
        worker_thread.join(30)
    # The followers commit nothing: their group id has no offsets on either partition.
    probe = Consumer({**kafka_settings.client_config(), "group.id": f"{group}-follower"})
    try:
        offsets = probe.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    finally:
        probe.close()
    assert all(tp.offset == OFFSET_INVALID for tp in offsets), offsets
