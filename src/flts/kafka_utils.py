"""The spec's shared Kafka helper API (``shared/kafka_utils.py``) on confluent-kafka.

Same names and meaning as the spec, so existing container code keeps working: JSON values,
optional string keys, ``produce_message`` reports success only once the broker confirmed the
write, manual-commit consumers, and DLQ records with a UTC timestamp. librdkafka errors become
:class:`flts.errors.MessagingError` here, at the boundary.

Client config comes from ``settings=`` (a :class:`KafkaSettings`, what services pass) or, for
spec compatibility, from the environment. Keyword overrides use librdkafka names with dots
written as underscores (``linger_ms=5`` -> ``linger.ms``); ``config={...}`` takes dotted keys.

Longer than the ~400-line norm on purpose: the spec's helper API is this one module, imported by
that name by existing container code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from pydantic import BaseModel

from flts.domain.messages import DlqRecord, utc_now_iso
from flts.errors import MessagingError
from flts.kafka_partitions import partition_for
from flts.settings import KafkaSettings, load_settings, pipeline_topics

log = logging.getLogger(__name__)
#: librdkafka's own log lines (connection failures while a broker restarts, ...) go through
#: Python logging rather than straight to stderr, so they follow the CLI's log file and level.
_LIBRDKAFKA_LOG = logging.getLogger("flts.librdkafka")

_TOPICS = pipeline_topics()
#: The spec's topics, in pipeline order (defaults of ``flts.settings``; kept for callers).
SPEC_TOPICS: tuple[str, ...] = _TOPICS.spec
PROGRESS_TOPIC = _TOPICS.progress
#: Added by FLTS: requests for the on-request mode of the preprocess service.
PREPROCESS_REQUEST_TOPIC = _TOPICS.preprocess_requests
#: Dead-letter topics: ``DLQ-<base-topic>`` for every consumed/produced topic, plus preprocess.
DLQ_TOPICS: tuple[str, ...] = _TOPICS.dead_letter


def topic_names() -> tuple[str, ...]:
    """Every topic the local stack creates: the spec's, FLTS's own and the DLQs."""
    return _TOPICS.all()


def _client_config(
    settings: KafkaSettings | None, overrides: Mapping[str, Any], config: Mapping[str, Any] | None
) -> tuple[KafkaSettings, dict[str, Any]]:
    extra = {k.replace("_", "."): v for k, v in overrides.items()}
    bootstrap = extra.pop("bootstrap.servers", None)
    if settings is None:
        values = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap} if bootstrap else {}
        settings = load_settings(KafkaSettings, **values)
    conf = settings.client_config()
    if bootstrap:
        conf["bootstrap.servers"] = bootstrap
    conf.update(extra)
    conf.update(config or {})
    conf.setdefault("logger", _LIBRDKAFKA_LOG)
    return settings, conf


def create_producer(
    *,
    settings: KafkaSettings | None = None,
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Producer:
    """An idempotent producer (acks=all); values are serialised by ``produce_message``."""
    _, conf = _client_config(settings, overrides, None)
    conf = {"enable.idempotence": True, "acks": "all", "linger.ms": 5, **conf, **(config or {})}
    try:
        return Producer(conf)
    except KafkaException as exc:
        raise MessagingError(f"cannot create producer: {exc}") from exc


def _consumer(
    topic: str | Sequence[str],
    group_id: str,
    base: dict[str, Any],
    settings: KafkaSettings | None,
    overrides: Mapping[str, Any],
    config: Mapping[str, Any] | None,
) -> Consumer:
    settings, conf = _client_config(settings, overrides, config)
    conf = {
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        **base,
        **conf,
    }
    topics = [topic] if isinstance(topic, str) else list(topic)
    try:
        consumer = Consumer(conf)
        consumer.subscribe(topics)
    except KafkaException as exc:
        raise MessagingError(f"cannot subscribe group {group_id!r} to {topics}: {exc}") from exc
    return consumer


def create_consumer(
    topic: str | Sequence[str],
    group_id: str,
    *,
    settings: KafkaSettings | None = None,
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Consumer:
    """A subscribed consumer with auto-commit on (the spec's default)."""
    return _consumer(topic, group_id, {"enable.auto.commit": True}, settings, overrides, config)


def create_consumer_configurable(
    topic: str | Sequence[str],
    group_id: str,
    enable_auto_commit: bool = False,
    auto_offset_reset: str = "earliest",
    *,
    settings: KafkaSettings | None = None,
    config: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Consumer:
    """A subscribed consumer with manual commit by default (at-least-once processing)."""
    base = {
        "enable.auto.commit": enable_auto_commit,
        "auto.offset.reset": auto_offset_reset,
    }
    return _consumer(topic, group_id, base, settings, overrides, config)


def encode_value(value: Any) -> bytes:
    """JSON bytes of a dict, a pydantic model (wire messages via ``to_wire``) or raw bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, BaseModel):
        to_wire = getattr(value, "to_wire", None)
        value = to_wire() if callable(to_wire) else value.model_dump(mode="json")
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise MessagingError(f"value is not JSON-serialisable: {exc}") from exc


#: How long ``_produce`` waits for room in librdkafka's local queue before giving up.
QUEUE_FULL_TIMEOUT_S = 30.0


def _produce(
    producer: Producer,
    topic: str,
    data: bytes,
    key: str | None,
    cb: Callable,
    timeout_s: float = QUEUE_FULL_TIMEOUT_S,
    partition: int | None = None,
) -> None:
    """Queue one record, waiting (bounded) for room when librdkafka's local queue is full.

    A queue that stays full means the broker is not taking records (down, or cut off): after
    ``timeout_s`` that is a MessagingError, not an endless loop.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if partition is None:
                producer.produce(topic, value=data, key=key, on_delivery=cb)
            else:
                producer.produce(topic, value=data, key=key, on_delivery=cb, partition=partition)
            return
        except BufferError:
            if time.monotonic() >= deadline:
                raise MessagingError(
                    f"producer queue stayed full for {timeout_s:.0f}s while sending to "
                    f"{topic!r}: the broker is not accepting records"
                ) from None
            producer.poll(0.1)


def produce_message(
    producer: Producer, topic: str, value: Any, key: str | None = None, *, timeout_s: float = 30.0
) -> bool:
    """Send one JSON message and wait for the broker's delivery report.

    Returns True only when the broker confirmed the write; on failure logs why and returns False.
    """
    outcome: list[KafkaError | None] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        outcome.append(err)

    try:
        partition = partition_for(producer, topic, value)
        _produce(producer, topic, encode_value(value), key, on_delivery, partition=partition)
        deadline = time.monotonic() + timeout_s
        while not outcome and time.monotonic() < deadline:
            producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
    except (KafkaException, MessagingError) as exc:
        log.error("produce to %s failed: %s", topic, exc)
        return False
    if not outcome:
        log.error("produce to %s: no delivery report within %.1fs", topic, timeout_s)
        return False
    if outcome[0] is not None:
        log.error("produce to %s failed: %s", topic, outcome[0])
        return False
    return True


def produce_messages(
    producer: Producer,
    topic: str,
    values: Iterable[Any],
    keys: Iterable[str | None] | None = None,
    *,
    timeout_s: float = 60.0,
) -> int:
    """Send many JSON messages, confirm them all at the end; returns how many were confirmed."""
    confirmed = [0]
    failed: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            confirmed[0] += 1
        else:
            failed.append(err)

    key_iter = iter(keys) if keys is not None else None
    try:
        for value in values:
            key = next(key_iter) if key_iter is not None else None
            _produce(producer, topic, encode_value(value), key, on_delivery)
        remaining = producer.flush(timeout_s)
    except KafkaException as exc:
        raise MessagingError(f"batch produce to {topic} failed: {exc}") from exc
    if failed or remaining:
        log.error("batch to %s: %d failed, %d unconfirmed", topic, len(failed), remaining)
    return confirmed[0]


def decode_value(msg: Message) -> Any:
    """The JSON value of a record (raises ``orjson.JSONDecodeError`` when it is not JSON)."""
    raw = msg.value()
    return None if raw is None else orjson.loads(raw)


def consume_messages(
    consumer: Consumer,
    callback: Callable[[Any, Message], None],
    *,
    max_messages: int | None = None,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
    poll_timeout_s: float = 0.5,
    on_undecodable: Callable[[Message, Exception], None] | None = None,
) -> int:
    """Blocking loop: poll, decode JSON, call ``callback(value, msg)``; returns the count.

    Ends after ``max_messages`` records, after ``timeout_s`` seconds, or when ``stop`` is set
    (whichever comes first; none of them means forever). Records that are not JSON go to
    ``on_undecodable`` (default: logged and skipped) instead of the callback.
    """
    count = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while max_messages is None or count < max_messages:
        if stop is not None and stop.is_set():
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        msg = consumer.poll(poll_timeout_s)
        if msg is None:
            continue
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            if err.fatal():
                raise MessagingError(f"consumer failed: {err}")
            log.warning("consumer error (continuing): %s", err)
            continue
        try:
            value = decode_value(msg)
        except orjson.JSONDecodeError as exc:
            if on_undecodable is not None:
                on_undecodable(msg, exc)
            else:
                log.warning(
                    "skipping non-JSON record %s[%s]@%s", msg.topic(), msg.partition(), msg.offset()
                )
            count += 1
            continue
        callback(value, msg)
        count += 1
    return count


def commit_offsets_sync(
    consumer: Consumer, offsets_by_tp: Mapping[tuple[str, int], int] | Sequence[TopicPartition]
) -> None:
    """Commit synchronously; ``offsets_by_tp`` maps (topic, partition) to the NEXT offset."""
    if isinstance(offsets_by_tp, Mapping):
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets_by_tp.items()]
    else:
        tps = list(offsets_by_tp)
    if not tps:
        return
    try:
        result = consumer.commit(offsets=tps, asynchronous=False)
    except KafkaException as exc:
        raise MessagingError(f"offset commit failed: {exc}") from exc
    bad = [tp for tp in result or [] if tp.error is not None]
    if bad:
        detail = ", ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in bad)
        raise MessagingError(f"offset commit failed for {detail}")


def commit_message(consumer: Consumer, msg: Message) -> None:
    """Commit the offset after ``msg`` (the work for it is done)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise MessagingError("cannot commit a record without topic/partition/offset")
    commit_offsets_sync(consumer, {(topic, partition): offset + 1})


def _jsonable_payload(payload: Any) -> Any:
    if isinstance(payload, bytes):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            return payload.decode("utf-8", errors="replace")
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json")
    return payload


def publish_error(
    producer: Producer,
    dlq_topic: str,
    operation: str,
    status: str,
    error_details: str,
    payload: Any,
    **source: Any,
) -> bool:
    """Send a DlqRecord (UTC timestamp added) and wait for confirmation.

    ``source`` takes DlqRecord's optional fields: source_topic, source_partition,
    source_offset, error_type.
    """
    record = DlqRecord(
        operation=operation,
        status=status,
        error_details=str(error_details),
        payload=_jsonable_payload(payload),
        timestamp=utc_now_iso(),
        **source,
    )
    return produce_message(producer, dlq_topic, record)


def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int | None = None,
    *,
    timeout_s: float = 30.0,
    settings: KafkaSettings | None = None,
) -> list[str]:
    """Create missing topics explicitly (auto-created ones get 4 partitions on tansu, and
    CreatePartitions is unsupported there). Returns the names that were created.

    Partitions, replication factor and ``min.insync.replicas`` come from ``settings``
    (KAFKA_TOPIC_PARTITIONS, KAFKA_TOPIC_REPLICATION_FACTOR, KAFKA_TOPIC_MIN_INSYNC_REPLICAS) unless
    ``partitions`` is given.
    """
    settings, conf = _client_config(settings, {"bootstrap_servers": bootstrap}, None)
    admin = AdminClient(conf)
    wanted = list(dict.fromkeys(topics))
    missing = [t for t in wanted if t not in _existing_topics(admin, bootstrap, timeout_s)]
    if not missing:
        return []
    topic_config = {}
    if settings.min_insync_replicas is not None:
        topic_config["min.insync.replicas"] = str(settings.min_insync_replicas)
    futures = admin.create_topics(
        [
            NewTopic(
                t,
                num_partitions=partitions or settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                config=topic_config,
            )
            for t in missing
        ],
        request_timeout=timeout_s,
    )
    created = []
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise MessagingError(f"cannot create topic {name!r}: {exc}") from exc
    return created


def require_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    timeout_s: float = 30.0,
    settings: KafkaSettings | None = None,
) -> None:
    """Fail, naming them, when topics are missing (production: topics are provisioned by the
    platform with the cluster's replication, never created implicitly by a service)."""
    _, conf = _client_config(settings, {"bootstrap_servers": bootstrap}, None)
    existing = _existing_topics(AdminClient(conf), bootstrap, timeout_s)
    missing = [t for t in dict.fromkeys(topics) if t not in existing]
    if missing:
        raise MessagingError(
            f"topics {missing} do not exist on {bootstrap} and KAFKA_CREATE_TOPICS is false; "
            "create them (with the cluster's replication factor) before starting the service"
        )


def _existing_topics(admin: AdminClient, bootstrap: str, timeout_s: float) -> set[str]:
    try:
        return set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise MessagingError(f"cannot list topics on {bootstrap}: {exc}") from exc
