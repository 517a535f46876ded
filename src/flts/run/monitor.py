"""Watches the pipeline's topics for one run (by identifier) so `flts run` can show progress.

It is an observer with its own consumer group: it never commits for the services and never
changes what they see.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservedEvent:
    topic: str
    key: str | None
    value: dict[str, Any]
    #: The record's Kafka timestamp (producer create time), epoch milliseconds.
    timestamp_ms: int = 0


def identifier_of(value: dict[str, Any]) -> str | None:
    """Events carry ``identifier``; DLQ records carry it inside the original payload."""
    ident = value.get("identifier")
    if isinstance(ident, str):
        return ident
    payload = value.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("identifier"), str):
        return str(payload["identifier"])
    if isinstance(payload, str):
        try:
            inner = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if isinstance(inner, dict) and isinstance(inner.get("identifier"), str):
            return str(inner["identifier"])
    return None


class TopicMonitor:
    """Background consumer that queues every event of ``identifier`` on ``topics``.

    With ``prefix`` it queues every identifier starting with ``identifier`` (a fleet run watches
    ``<run>/`` for all of its series at once).
    """

    def __init__(
        self, bootstrap: str, topics: list[str], identifier: str, *, prefix: bool = False
    ) -> None:
        self.identifier = identifier
        self._prefix = prefix
        self.events: queue.Queue[ObservedEvent] = queue.Queue()
        self._topics = topics
        self._stop = threading.Event()
        self.assigned = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "logger": logging.getLogger("flts.librdkafka"),
                "group.id": f"flts-run-monitor-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
            }
        )
        self._thread = threading.Thread(target=self._loop, name="flts-run-monitor", daemon=True)

    def start(self) -> None:
        self._consumer.subscribe(self._topics, on_assign=lambda _c, _p: self.assigned.set())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(RuntimeError):  # already closed
            self._consumer.close()

    def _wanted(self, identifier: str | None) -> bool:
        if identifier is None:
            return False
        if self._prefix:
            return identifier.startswith(self.identifier)
        return identifier == self.identifier

    def _loop(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.debug("monitor: %s", err)
                continue
            try:
                value = orjson.loads(msg.value() or b"null")
            except orjson.JSONDecodeError:
                value = {"raw": (msg.value() or b"").decode("utf-8", "replace")}
            if not isinstance(value, dict) or not self._wanted(identifier_of(value)):
                continue
            key = msg.key()
            _kind, stamp = msg.timestamp()
            self.events.put(
                ObservedEvent(
                    topic=str(msg.topic()),
                    key=key.decode("utf-8", "replace") if isinstance(key, bytes) else None,
                    value=value,
                    timestamp_ms=int(stamp or 0),
                )
            )


#: The name earlier code imported.
_identifier_of = identifier_of
