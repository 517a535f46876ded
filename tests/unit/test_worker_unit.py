"""The worker's policies and the service wiring, without a broker."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading

import pytest

from flts.errors import (
    DataValidationError,
    MessageError,
    MessagingError,
    ObjectNotFoundError,
    StorageError,
    TrackingError,
)
from flts.logging_setup import JsonFormatter, configure_json_logging
from flts.messaging.records import Output, Record, RetryPolicy, dlq_of, is_transient
from flts.messaging.worker import KafkaWorker, consumer_config
from flts.services.wiring import route_dlq, service_command, service_env
from flts.settings import KafkaSettings


def _record(value: bytes | None = b"{}") -> Record:
    return Record("training-data", 0, 7, "train-claim", value)


def _worker(handler, attempts: int = 3) -> KafkaWorker:  # type: ignore[no-untyped-def]
    return KafkaWorker(
        {"group.id": "g"},
        ["training-data"],
        handler,
        producer=None,  # type: ignore[arg-type]  # not used by _call_with_retries
        dlq_topic_for=route_dlq("DLQ-model-training"),
        retry=RetryPolicy(attempts=attempts, initial_delay_s=0.001, max_delay_s=0.002),
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (StorageError("S3 down"), True),
        (TrackingError("MLflow down"), True),
        (MessagingError("broker down"), True),
        (ObjectNotFoundError("no such key"), False),
        (MessageError("bad field"), False),
        (DataValidationError("too few rows"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_infrastructure_failures_are_transient(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_retry_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(attempts=5, initial_delay_s=1.0, max_delay_s=3.0)
    assert [policy.delay(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]


def test_transient_failure_is_retried_then_succeeds() -> None:
    calls: list[int] = []

    def handler(record: Record) -> list[Output]:
        calls.append(1)
        if len(calls) < 3:
            raise StorageError("S3 unreachable")
        return [Output("model-training", {"ok": True}, "trained-GRU")]

    outputs = _worker(handler)._call_with_retries(_record())
    assert len(calls) == 3
    assert outputs == [Output("model-training", {"ok": True}, "trained-GRU")]


def test_transient_failure_gives_up_after_the_bounded_attempts() -> None:
    calls: list[int] = []

    def handler(record: Record) -> list[Output]:
        calls.append(1)
        raise TrackingError("MLflow unreachable")

    with pytest.raises(TrackingError):
        _worker(handler, attempts=2)._call_with_retries(_record())
    assert len(calls) == 2


def test_permanent_failure_is_not_retried() -> None:
    calls: list[int] = []

    def handler(record: Record) -> list[Output]:
        calls.append(1)
        raise ObjectNotFoundError("processed-data/x.parquet does not exist")

    with pytest.raises(ObjectNotFoundError):
        _worker(handler)._call_with_retries(_record())
    assert len(calls) == 1


def test_dlq_rule_undecodable_input_goes_to_the_consumed_topics_dlq() -> None:
    route = route_dlq("DLQ-model-training")
    assert route("training-data", MessageError("not JSON")) == "DLQ-training-data"
    assert route("training-data", ObjectNotFoundError("gone")) == "DLQ-model-training"
    assert dlq_of("model-selected") == "DLQ-model-selected"


def test_tombstone_body_is_empty_bytes() -> None:
    assert _record(None).body == b""


def test_consumer_config_is_manual_commit_with_short_session() -> None:
    conf = consumer_config(
        KafkaSettings(bootstrap_servers="127.0.0.1:1", max_poll_interval_ms=900000), "train-gru"
    )
    assert conf["enable.auto.commit"] is False
    assert conf["auto.offset.reset"] == "earliest"
    assert conf["session.timeout.ms"] == 6000
    assert conf["heartbeat.interval.ms"] == 500
    assert conf["max.poll.interval.ms"] == 900000
    assert conf["group.id"] == "train-gru"


def test_spec_mapping_table_env_and_command() -> None:
    base = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "CONSUMER_GROUP_ID": "stale"}
    env = service_env("train-lstm", base, EPOCHS="1")
    assert env["MODEL_TYPE"] == "LSTM"
    assert env["CONSUMER_GROUP_ID"] == "train-lstm"
    assert env["EPOCHS"] == "1"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9"
    assert service_env("nonml-prophet", {})["CONSUMER_GROUP_ID"] == "nonml-prophet"
    assert service_env("eval", {})["EVAL_GROUP_ID"] == "eval-promoter-r5"
    assert service_env("inference", {})["CONSUMER_GROUP_ID"] == "batch-forecasting-v2"
    assert service_command("train-gru") == [sys.executable, "-m", "flts", "service", "train"]
    assert service_command("eval")[-1] == "eval"


def test_json_log_lines_carry_context_fields() -> None:
    stream = io.StringIO()
    configure_json_logging("train", stream=stream)
    try:
        logging.getLogger("flts.test").info(
            "trained %s", "GRU", extra={"model_type": "GRU", "offset": 3, "duration_ms": 12}
        )
    finally:
        logging.getLogger().handlers.clear()
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["msg"] == "trained GRU"
    assert line["level"] == "INFO"
    assert line["logger"] == "flts.test"
    assert line["service"] == "train"
    assert (line["model_type"], line["offset"], line["duration_ms"]) == ("GRU", 3, 12)
    assert "ts" in line


def test_json_formatter_includes_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exc"]


def test_stop_during_backoff_ends_the_retries() -> None:
    stop = threading.Event()

    def handler(record: Record) -> list[Output]:
        stop.set()
        raise StorageError("S3 unreachable")

    worker = _worker(handler, attempts=10)
    worker.stop_event = stop
    worker.retry = RetryPolicy(attempts=10, initial_delay_s=30.0)
    with pytest.raises(StorageError):
        worker._call_with_retries(_record())
