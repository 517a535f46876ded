"""Helpers for tests that run FLTS services as subprocesses against the session stack."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer

from flts.datasets import bundled_test_csv, bundled_train_csv
from flts.kafka_utils import ensure_topics
from flts.services.wiring import service_command, service_env
from flts.settings import KafkaSettings

#: Small, fast preprocessing for tests: short lookback, short season so 1,000 test rows suffice.
TEST_PREPROCESS_CONFIG = '{"lookback": 12, "season_steps": 30}'


def uid() -> str:
    return uuid.uuid4().hex[:8]


def write_slices(
    directory: Path, train_rows: int = 2000, test_rows: int = 1000
) -> tuple[Path, Path]:
    """The last training rows and the first test rows of the bundled CSVs, as small files: the
    test slice follows the training slice directly, so every test row is an origin (a test file
    after a gap must first hold the longest history a model reads)."""
    paths = []
    for src, rows, name in (
        (bundled_train_csv(), train_rows, "train.csv"),
        (bundled_test_csv(), test_rows, "test.csv"),
    ):
        header, *body = src.read_text().splitlines()
        lines = [header, *(body[-rows:] if name == "train.csv" else body[:rows])]
        path = directory / name
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths[0], paths[1]


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(
                f"{self.name} ignored SIGTERM for {timeout_s}s:\n{self.log()[-3000:]}"
            ) from None


def run_preprocess(
    stack_env: dict[str, str], train: Path, test: Path, identifier: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the one-shot preprocess service to completion (stdout: the JSON summary)."""
    args = ["--train", str(train), "--test", str(test), "--identifier", identifier]
    return subprocess.run(
        [*service_command("preprocess"), *args, "--config", TEST_PREPROCESS_CONFIG],
        env=service_env("preprocess", {**os.environ, **stack_env}, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def spawn(
    spec_name: str, stack_env: dict[str, str], log_dir: Path, *args: str, **env: str
) -> Service:
    """Start ``flts service`` for a key of the spec's mapping table with extra env."""
    full_env = service_env(spec_name, {**os.environ, **stack_env}, **env)
    log_path = log_dir / f"{spec_name}-{uid()}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [*service_command(spec_name), *args], env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    return Service(spec_name, process, log_path)


@dataclass
class TopicReader:
    """Reads a topic from the beginning with its own group; remembers all it saw."""

    settings: KafkaSettings
    topic: str
    seen: list[tuple[str | None, Any]] = field(default_factory=list)
    _consumer: Consumer | None = None

    def __post_init__(self) -> None:
        # Subscribing to a topic that does not exist yet would see it only after the next
        # metadata refresh (minutes): create it first.
        ensure_topics(self.settings.bootstrap_servers, [self.topic], settings=self.settings)
        self._consumer = Consumer(
            {
                **self.settings.client_config(),
                "group.id": f"reader-{uid()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
            }
        )
        self._consumer.subscribe([self.topic])

    def poll_for(self, seconds: float) -> None:
        assert self._consumer is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self._consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            key = msg.key().decode() if msg.key() else None
            try:
                value = orjson.loads(msg.value())
            except orjson.JSONDecodeError:
                value = msg.value()
            self.seen.append((key, value))

    def wait_for(
        self,
        predicate: Callable[[list[tuple[str | None, Any]]], bool],
        timeout_s: float,
        why: str = "",
        logs: Callable[[], str] | None = None,
    ) -> list[tuple[str | None, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.seen):
                return self.seen
            self.poll_for(0.5)
        tail = logs()[-4000:] if logs else ""
        raise AssertionError(f"timed out on {self.topic}: {why}; seen={self.seen}\n{tail}")

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
