"""The local stack through the CLI, in its own directory (not the session stack): up, status,
a spec message read back by an independent client (kafka-python), down leaves nothing behind,
and topics, committed offsets and objects survive a restart."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from pydantic import SecretStr

from flts import kafka_utils as ku
from flts.adapters.s3 import S3ObjectStore
from flts.errors import StackError
from flts.infra import procs
from flts.infra import stack as stack_module
from flts.infra.stack import StackPorts
from flts.settings import KafkaSettings, S3Settings

pytestmark = pytest.mark.integration

SPEC_CLAIM = {
    "bucket": "processed-data",
    "object": "processed_data.parquet",
    "size": 123456,
    "v": 1,
    "identifier": "run-xyz",
}


def _flts(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "flts"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
    )


def _port_args(ports: StackPorts) -> list[str]:
    out = []
    for name, value in vars(ports).items():
        out += ["--" + name.replace("_", "-") + "-port", str(value)]
    return out


def _env(data_dir: Path) -> dict[str, str]:
    lines = _flts("stack", "env", "--data-dir", str(data_dir)).stdout.splitlines()
    pairs = (line.removeprefix("export ").split("=", 1) for line in lines)
    return {k: v.strip("'") for k, v in pairs}


def _read_with_kafka_python(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    try:
        return [(rec.key, json.loads(rec.value)) for rec in consumer]
    finally:
        consumer.close()


def _consume_one(settings: KafkaSettings, topic: str, group: str) -> Any:
    consumer = ku.create_consumer_configurable(topic, group, settings=settings)
    got: list[Any] = []
    try:
        ku.consume_messages(consumer, lambda v, m: got.append((v, m)), max_messages=1, timeout_s=30)
        if got:
            msg = got[0][1]
            ku.commit_offsets_sync(consumer, {(topic, msg.partition()): msg.offset() + 1})
    finally:
        consumer.close()
    return got[0][0] if got else None


def _assert_all_stopped(state: dict[str, Any], ports: StackPorts) -> None:
    for name, rec in state["components"].items():
        assert not procs.is_alive(rec["pid"]), f"{name} (pid {rec['pid']}) still running"
        assert procs.group_members(rec["pid"]) == [], f"{name} left processes behind"
    assert [p for p in ports.all_listening() if procs.port_open(p)] == []


def test_stack_lifecycle(tmp_path: Path) -> None:
    data_dir, ports = tmp_path / "stack", StackPorts.free()
    where = ["--data-dir", str(data_dir)]
    try:
        out = _flts("stack", "up", *where, *_port_args(ports)).stdout
        assert f"127.0.0.1:{ports.kafka}" in out
        status = json.loads(_flts("stack", "status", "--json", *where).stdout)
        assert status["healthy"] is True
        assert status["kafka_bootstrap"] == f"127.0.0.1:{ports.kafka}"
        assert {c["healthy"] for c in status["components"].values()} == {True}
        assert oct((data_dir / "credentials.json").stat().st_mode & 0o777) == "0o600"

        env = _env(data_dir)
        kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
        producer = ku.create_producer(settings=kafka)
        assert ku.produce_message(producer, "training-data", SPEC_CLAIM, key="train-claim")
        # An independent client (kafka-python, not librdkafka) reads exactly the spec's fields.
        assert _read_with_kafka_python(kafka.bootstrap_servers, "training-data") == [
            (b"train-claim", SPEC_CLAIM)
        ]
        # A committed offset and an object, to find again after the restart.
        group = f"g-{uuid.uuid4().hex[:6]}"
        assert _consume_one(kafka, "training-data", group) == SPEC_CLAIM
        store = S3ObjectStore(
            S3Settings(
                endpoint_url=env["S3_ENDPOINT_URL"],
                access_key_id=env["AWS_ACCESS_KEY_ID"],
                secret_access_key=SecretStr(env["AWS_SECRET_ACCESS_KEY"]),
            )
        )
        store.put_bytes("processed-data", "processed_data.parquet", b"PAR1")
        assert _flts("stack", "up", *where).returncode == 0  # no-op on a running stack

        state = json.loads((data_dir / "stack.json").read_text())
        _flts("stack", "down", *where)
        _assert_all_stopped(state, ports)

        _flts("stack", "up", *where, *_port_args(ports))
        assert store.get_bytes("processed-data", "processed_data.parquet") == b"PAR1"
        assert ku.produce_message(producer, "training-data", {**SPEC_CLAIM, "identifier": "r2"})
        # The group resumes after its committed offset: it sees only the new message.
        assert _consume_one(kafka, "training-data", group) == {**SPEC_CLAIM, "identifier": "r2"}
        producer.flush(5)
    finally:
        state = json.loads((data_dir / "stack.json").read_text())
        _flts("stack", "down", *where, check=False)
    _assert_all_stopped(state, ports)
    assert _flts("stack", "status", *where, check=False).returncode == 1


def test_busy_port_fails_before_starting_anything(tmp_path: Path) -> None:
    ports = StackPorts.free()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports.kafka))
        blocker.listen()
        res = _flts("stack", "up", "--data-dir", str(tmp_path), *_port_args(ports), check=False)
    assert res.returncode == 1
    assert f"{ports.kafka} (kafka, --kafka-port)" in res.stderr
    assert not (tmp_path / "stack.json").exists()


def test_failed_component_is_named_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that dies at start: the error names it, its log and the log's last lines;
    what was already started is stopped."""
    monkeypatch.setattr(
        stack_module,
        "tansu_argv",
        lambda ports, advertised=None: ["/bin/sh", "-c", "echo broker-broke; exit 3"],
    )
    ports = StackPorts.free()
    local = stack_module.LocalStack(tmp_path, ports)
    with pytest.raises(StackError) as err:
        local.up()
    text = str(err.value)
    assert text.startswith("kafka exited during start")
    assert str(tmp_path / "logs" / "kafka.log") in text
    assert "broker-broke" in text
    assert json.loads((tmp_path / "stack.json").read_text())["components"] == {}
    assert [p for p in ports.all_listening() if procs.port_open(p)] == []


def test_up_restarts_only_the_dead_component(tmp_path: Path) -> None:
    """A broker SIGKILLed: status names it, `up` restarts it alone (the other components keep
    their pids) and a record written before the kill is still there."""
    import os
    import signal

    ports = StackPorts.free()
    where = ["--data-dir", str(tmp_path)]
    _flts("stack", "up", *where, *_port_args(ports))
    try:
        state = json.loads((tmp_path / "stack.json").read_text())
        before = {n: c["pid"] for n, c in state["components"].items()}
        bootstrap = f"127.0.0.1:{ports.kafka}"
        topic = f"restart-{uuid.uuid4().hex[:8]}"
        ku.ensure_topics(bootstrap, [topic])
        producer = ku.create_producer(bootstrap_servers=bootstrap)
        assert ku.produce_message(producer, topic, SPEC_CLAIM, key="train-claim")
        os.killpg(before["kafka"], signal.SIGKILL)
        status = _flts("stack", "status", *where, check=False)
        assert status.returncode == 1
        assert "unhealthy: kafka" in status.stdout
        _flts("stack", "up", *where)
        after = {
            n: c["pid"]
            for n, c in json.loads((tmp_path / "stack.json").read_text())["components"].items()
        }
        assert after["kafka"] != before["kafka"]
        assert {n: after[n] for n in ("seaweedfs", "mlflow", "gateway")} == {
            n: before[n] for n in ("seaweedfs", "mlflow", "gateway")
        }
        consumer = ku.create_consumer_configurable(
            topic, f"g-{uuid.uuid4().hex[:6]}", bootstrap_servers=bootstrap
        )
        got: list[Any] = []
        ku.consume_messages(consumer, lambda v, _m: got.append(v), max_messages=1, timeout_s=60)
        consumer.close()
        assert got == [SPEC_CLAIM]
    finally:
        _flts("stack", "down", *where, check=False)
