"""Which partition an event goes to: one series' events together, by a hash of its identifier.

Kept apart from :mod:`flts.kafka_utils` (which calls :func:`partition_for` for every event it
produces) so the rule and its cache read on their own.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Producer

#: Partition counts per topic, refreshed after this many seconds (topics rarely grow).
_PARTITION_TTL_S = 60.0
_partition_counts: dict[str, tuple[float, int]] = {}


def _partition_count(producer: Producer, topic: str) -> int:
    cached = _partition_counts.get(topic)
    now = time.monotonic()
    if cached is not None and now - cached[0] < _PARTITION_TTL_S:
        return cached[1]
    try:
        meta = producer.list_topics(topic, timeout=5.0).topics.get(topic)
        count = len(meta.partitions) if meta is not None and meta.error is None else 1
    except Exception:  # no metadata (broker away, a test double): let librdkafka choose
        count = 1
    _partition_counts[topic] = (now, max(count, 1))
    return max(count, 1)


def series_partition(identifier: str, partitions: int) -> int:
    """The partition of one series' events: a stable hash of its identifier.

    blake2b, not crc32: crc32 is linear, so ids that differ only in their last character
    (``run/s0`` .. ``run/s3``) all landed on one partition of two.
    """
    import hashlib

    digest = hashlib.blake2b(identifier.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def partition_for(producer: Producer, topic: str, value: Any) -> int | None:
    """The partition for an event of ``value``'s identifier, or None (librdkafka chooses).

    The contract fixes the record keys (``train-claim``, ``trained-<TYPE>``, ``promotion``), so
    they cannot keep one series' events together; on a topic with several partitions every
    event of one identifier goes to the partition its identifier hashes to instead. One series'
    events then stay ordered and reach one member of each consumer group (eval's completion
    state of a series has a single writer), while different series spread over the replicas.
    With one partition nothing changes.
    """
    identifier = (
        value.get("identifier") if isinstance(value, dict) else getattr(value, "identifier", None)
    )
    if not isinstance(identifier, str) or not identifier:
        return None
    partitions = _partition_count(producer, topic)
    if partitions <= 1:
        return None
    return series_partition(identifier, partitions)
