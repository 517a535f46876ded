"""Earlier runs' records, skipped by the trainers a local run starts.

``flts run`` and ``flts run --series-col`` share one local stack across runs. A trainer started
by this run resumes its consumer group where it last stopped: a model left out of earlier runs
(``--models LINEAR``), or never run before (a new group starts at the earliest record), would
first retrain every dataset published since, register models for identifiers nobody follows and
make this run wait for them (measured: MSTL after a day of other runs retrained 18 old datasets,
100 s before this run's). Before its trainers start, the run moves each trainer group's committed
offset on its input topic past the records written before the run began (read from the
group's position, at most 15 s; none of this run's exists yet: it asks for preprocessing only
once its services are up), never backwards.

Only local runs do this, and only for their trainers: deployed services keep the at-least-once
contract of their groups. A group with a live member (a service left up with
``--keep-running``) refuses a commit from outside it and is left as it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from flts.settings import KafkaSettings, load_settings

log = logging.getLogger(__name__)

_READ_LIMIT_S = 15.0
_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Skipped:
    """What one group was moved past on one topic (records, summed over partitions)."""

    group: str
    topic: str
    records: int


def skip_earlier_records(
    bootstrap: str, subscriptions: Iterable[tuple[str, str]], since_ms: int
) -> list[Skipped]:
    """For each (group, topic), commit on every partition the offset of the group's first
    unread record written at or after ``since_ms`` (the end when there is none); the groups
    that were moved, with how many records they pass over."""
    client = load_settings(KafkaSettings, KAFKA_BOOTSTRAP_SERVERS=bootstrap).client_config()
    moved = []
    for group, topic in subscriptions:
        consumer = Consumer(
            {
                **client,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "logger": log,
            }
        )
        try:
            records = _fast_forward(consumer, topic, since_ms)
        except KafkaException as exc:  # a live member's group, or the broker away
            log.info("left group %s on %s as it is: %s", group, topic, exc)
            continue
        finally:
            consumer.close()
        if records:
            moved.append(Skipped(group, topic, records))
    return moved


def _fast_forward(consumer: Consumer, topic: str, since_ms: int) -> int:
    """Read from the committed offsets (the beginning where none) to the first record at or
    after ``since_ms`` or the end, and commit there. Records are read, not looked up by time:
    the local broker answers offset-for-time and watermark queries wrongly (platform notes)."""
    metadata = consumer.list_topics(topic, timeout=_TIMEOUT_S).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        return 0
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, _TIMEOUT_S)}
    consumer.assign(
        [TopicPartition(topic, p, o if o >= 0 else OFFSET_BEGINNING) for p, o in committed.items()]
    )
    targets: dict[int, int] = {}
    reading, skipped = set(committed), 0
    deadline = time.monotonic() + _READ_LIMIT_S
    while reading and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.partition() not in reading:
            continue
        partition, offset, error = message.partition(), message.offset(), message.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
        if partition is None or offset is None:  # librdkafka sets both on records and EOFs
            continue
        if error is not None or message.timestamp()[1] >= since_ms:
            reading.discard(partition)  # the end, or this run's first record: stop before it
            targets[partition] = offset
        else:
            skipped += 1
            targets[partition] = offset + 1
    forward = [TopicPartition(topic, p, o) for p, o in targets.items() if o > max(committed[p], 0)]
    if forward:
        result = consumer.commit(offsets=forward, asynchronous=False)
        errors = [tp.error for tp in result or [] if tp.error is not None]
        if errors:
            raise KafkaException(errors[0])
    return skipped
