"""Shared fixtures. The real infrastructure (SeaweedFS, tansu, MLflow, gateway) starts lazily,
once per test session, only when a test asks for ``stack`` (directly or through another
fixture), so ``pytest -m "not integration"`` never starts it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from flts.adapters.s3 import S3ObjectStore
from flts.cli import LIBRARY_ENV_DEFAULTS
from flts.infra.stack import LocalStack, StackEndpoints, StackPorts
from flts.settings import KafkaSettings, S3Settings

for _name, _value in LIBRARY_ENV_DEFAULTS.items():  # as the flts entrypoint sets them
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack on free loopback ports in a temporary directory, torn down at the end."""
    local = LocalStack(tmp_path_factory.mktemp("stack"), StackPorts.free())
    try:
        local.up()
        yield local
    finally:
        local.down()


@pytest.fixture(scope="session")
def stack(local_stack: LocalStack) -> StackEndpoints:
    return local_stack.endpoints()


@pytest.fixture(scope="session")
def service_env(stack: StackEndpoints) -> dict[str, str]:
    """Env for service subprocesses (merge into ``os.environ`` copies)."""
    return stack.service_env()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: StackEndpoints) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def kafka_settings(stack: StackEndpoints) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=stack.kafka_bootstrap)


@pytest.fixture(scope="session")
def s3_settings(stack: StackEndpoints) -> S3Settings:
    return stack.s3_settings()


@pytest.fixture(scope="session")
def s3_store(s3_settings: S3Settings) -> S3ObjectStore:
    return S3ObjectStore(s3_settings)


@pytest.fixture(scope="session")
def mlflow_uri(stack: StackEndpoints) -> str:
    return stack.mlflow_uri


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Factory: ``unique_topic("name")`` creates a fresh 1-partition topic and returns its name."""
    from flts.kafka_utils import ensure_topics

    def make(prefix: str = "t", partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        ensure_topics(kafka_bootstrap, [name], partitions=partitions)
        return name

    return make
