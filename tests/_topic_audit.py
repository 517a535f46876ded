"""Reads topics with kafka-python: an independent client (pure Python, not librdkafka), so the
checks see exactly what any consumer of the existing pipeline would see."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

#: The spec's fields and their JSON types, per topic/event (shared/spec/kafka-usage-report.md).
SPEC_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "training-data": {"bucket": str, "object": str, "size": int, "v": int, "identifier": str},
    "inference-data": {
        "bucket": str,
        "object": str,
        "object_key": str,
        "size": int,
        "operation": str,
        "v": int,
        "identifier": str,
    },
    "model-training.RUNNING": {
        "model_type": str,
        "config_hash": str,
        "run_id": str,
        "status": str,
        "identifier": str,
    },
    "model-training.SUCCESS": {
        "model_type": str,
        "config_hash": str,
        "run_id": str,
        "status": str,
        "test_rmse": (int, float),
        "test_mae": (int, float),
        "test_mse": (int, float),
        "train_start": str,
        "train_end": str,
        "identifier": str,
        "artifact_uri": str,
    },
    "model-selected": {
        "model_uri": str,
        "model_type": str,
        "run_id": str,
        "config_hash": str,
        "composite_score": (int, float),
        "test_rmse": (int, float),
        "test_mae": (int, float),
        "test_mse": (int, float),
        "promotion_time": str,
        "identifier": str,
    },
    "dlq": {"operation": str, "status": str, "error_details": str, "timestamp": str},
}


@dataclass(frozen=True)
class Record:
    topic: str
    key: str | None
    value: Any


def read_all(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` from offset 0 (no group, so nothing is committed)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out = []
        for msg in consumer:
            try:
                value = json.loads(msg.value) if msg.value is not None else None
            except ValueError:
                value = msg.value
            key = msg.key.decode() if msg.key is not None else None
            out.append(Record(topic=topic, key=key, value=value))
        return out
    finally:
        consumer.close()


def spec_violations(kind: str, value: Any) -> list[str]:
    """Missing spec fields or wrong JSON types; extra (FLTS-added) fields are allowed."""
    if not isinstance(value, dict):
        return [f"{kind}: not a JSON object: {value!r}"]
    problems = []
    for name, typ in SPEC_FIELDS[kind].items():
        if name not in value:
            problems.append(f"{kind}: missing field {name!r}")
        elif isinstance(value[name], bool) or not isinstance(value[name], typ):
            problems.append(f"{kind}: field {name!r} has type {type(value[name]).__name__}")
    return problems


def mentions(record: Record, identifier: str) -> bool:
    return identifier in json.dumps(record.value, default=str)
