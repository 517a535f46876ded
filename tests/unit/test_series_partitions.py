"""One series' events go to one partition (contract keys unchanged); one partition: no change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flts.kafka_partitions import _partition_counts, partition_for, series_partition


@dataclass
class _Topic:
    partitions: dict[int, object]
    error: None = None


@dataclass
class _Meta:
    topics: dict[str, _Topic]


@dataclass
class FakeProducer:
    partitions: int
    calls: list[str] = field(default_factory=list)

    def list_topics(self, topic: str, timeout: float) -> _Meta:
        self.calls.append(topic)
        return _Meta({topic: _Topic(dict.fromkeys(range(self.partitions)))})


def test_events_of_one_identifier_share_a_partition() -> None:
    _partition_counts.clear()
    producer: Any = FakeProducer(partitions=4)
    a = partition_for(producer, "training-data", {"identifier": "fleet/a"})
    again = partition_for(producer, "training-data", {"identifier": "fleet/a", "x": 1})
    assert a == again == series_partition("fleet/a", 4)
    spread = {
        partition_for(producer, "training-data", {"identifier": f"fleet/s{i}"}) for i in range(40)
    }
    assert spread == {0, 1, 2, 3}
    assert producer.calls == ["training-data"]  # the partition count is cached


def test_one_partition_or_no_identifier_leaves_the_choice_to_librdkafka() -> None:
    _partition_counts.clear()
    assert partition_for(FakeProducer(partitions=1), "t1", {"identifier": "fleet/a"}) is None  # type: ignore[arg-type]
    assert partition_for(FakeProducer(partitions=4), "t2", {"status": "x"}) is None  # type: ignore[arg-type]
    assert partition_for(object(), "t3", {"identifier": "fleet/a"}) is None  # type: ignore[arg-type]


def test_ids_differing_in_their_last_character_spread_over_two_partitions() -> None:
    # crc32 put run/s0 .. run/s3 all on partition 1 of 2 (it is linear in the input bits).
    assert {series_partition(f"run/s{i}", 2) for i in range(4)} == {0, 1}
