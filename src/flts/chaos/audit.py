"""After a chaos run: what the topics and the object store say about one run (identifier).

Read with a fresh consumer group from the beginning of every topic to its end, so the audit
sees exactly what any later reader would, independent of the driver that watched the run.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError

from flts.run.monitor import _identifier_of
from flts.settings import pipeline_topics
from flts.stages.ports import ObjectStore


@dataclass
class RunAudit:
    identifier: str
    #: Records per topic that belong to the identifier.
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def of(self, topic: str) -> list[dict[str, Any]]:
        return self.records.get(topic, [])

    @property
    def promotions(self) -> Counter[str]:
        """config_hash -> ModelSelected records."""
        return Counter(str(r.get("config_hash")) for r in self.of(pipeline_topics().model_selected))

    @property
    def dead_letters(self) -> int:
        return sum(len(v) for k, v in self.records.items() if k.startswith("DLQ-"))


def read_run(bootstrap: str, identifier: str, timeout_s: float = 60.0) -> RunAudit:
    topics = pipeline_topics()
    names = [
        topics.model_training,
        topics.model_selected,
        topics.performance_eval,
        *topics.dead_letter,
    ]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "logger": logging.getLogger("flts.librdkafka"),
            "group.id": f"flts-chaos-audit-{uuid.uuid4().hex[:10]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )
    audit = RunAudit(identifier)
    consumer.subscribe(names)
    at_end: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                assigned = consumer.assignment()
                if assigned and {(p.topic, p.partition) for p in assigned} <= at_end:
                    break
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end.add((str(msg.topic()), int(msg.partition() or 0)))
                continue
            try:
                value = orjson.loads(msg.value() or b"null")
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict) and _identifier_of(value) == identifier:
                audit.records.setdefault(str(msg.topic()), []).append(value)
    finally:
        consumer.close()
    return audit


def lost_outputs(
    audit: RunAudit, expected_models: list[str], summary: dict[str, Any] | None, store: ObjectStore
) -> list[str]:
    """Acknowledged inputs whose output is missing: a SUCCESS per expected model, the champion's
    batch forecast event, and the forecast object it points at."""
    topics = pipeline_topics()
    missing = []
    succeeded = {
        r.get("model_type") for r in audit.of(topics.model_training) if r.get("status") == "SUCCESS"
    }
    missing += [f"SUCCESS of {m}" for m in expected_models if m not in succeeded]
    champion = (summary or {}).get("champion") or {}
    perf = [
        r
        for r in audit.of(topics.performance_eval)
        if champion and r.get("run_id") == champion.get("run_id")
    ]
    if champion and not perf:
        missing.append("the champion's performance-eval event")
    for record in perf[:1]:
        if not store.exists(str(record["output_bucket"]), str(record["output_object"])):
            missing.append(f"s3://{record['output_bucket']}/{record['output_object']}")
    return missing
