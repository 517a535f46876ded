"""Static checks of deploy/docker-compose.yaml (no Docker engine is needed or used).

The compose file is the production wiring of the Kafka contract, so it is held to the spec's
mapping table (commands, MODEL_TYPE, consumer groups), to ``flts.settings`` (every env var name
an FLTS service gets is one the settings code reads, and the real settings load from it), and to
the deployment rules: no literal secrets, ports published on loopback only, every ``${VAR}``
defined in ``.env.example``.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import flts.settings as settings_module
from flts.domain.config import ModelType
from flts.services.wiring import SPEC_SERVICES
from flts.settings import (
    EvalSettings,
    GatewaySettings,
    InferenceSettings,
    KafkaSettings,
    MlflowSettings,
    PreprocessSettings,
    S3Settings,
    TrainSettings,
    load_settings,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
FLTS_IMAGE = "ghcr.io/flts/flts:0.1.0"

#: The spec's mapping table, written out here so a drift of SPEC_SERVICES fails too.
SPEC_TABLE: dict[str, tuple[list[str], dict[str, str]]] = {
    "preprocess": (["service", "preprocess"], {}),
    "train_gru": (["service", "train"], {"MODEL_TYPE": "GRU", "CONSUMER_GROUP_ID": "train-gru"}),
    "train_lstm": (
        ["service", "train"],
        {"MODEL_TYPE": "LSTM", "CONSUMER_GROUP_ID": "train-lstm"},
    ),
    "nonml_prophet": (
        ["service", "train"],
        {"MODEL_TYPE": "PROPHET", "CONSUMER_GROUP_ID": "nonml-prophet"},
    ),
    "eval": (
        ["service", "eval"],
        {"EVAL_GROUP_ID": "eval-promoter-r5", "EXPECTED_MODEL_TYPES": "GRU,LSTM,PROPHET"},
    ),
    "inference": (["service", "inference"], {"CONSUMER_GROUP_ID": "batch-forecasting-v2"}),
    "gateway": (["service", "gateway"], {}),
}

#: The settings each ``flts service <command>`` loads at start-up.
SETTINGS_OF: dict[str, tuple[type[BaseSettings], ...]] = {
    "preprocess": (PreprocessSettings, KafkaSettings, S3Settings),
    "train": (TrainSettings, KafkaSettings, S3Settings, MlflowSettings),
    "eval": (EvalSettings, KafkaSettings, S3Settings, MlflowSettings),
    "inference": (InferenceSettings, KafkaSettings, S3Settings, MlflowSettings),
    "gateway": (GatewaySettings, S3Settings),
}

SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|_URI$")
# ${VAR}, ${VAR:-default}, ${VAR:?message}; "$${...}" is compose's escape and not a reference.
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+]([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def flts_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == FLTS_IMAGE}


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    return {str(k): str(v) for k, v in env.items()}


def substitute(value: str, env_example: dict[str, str]) -> str:
    """What compose makes of ``value`` with deploy/.env = .env.example."""

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env_example:
            return env_example[name]
        undefined = f"${{{name}}} is undefined and has no default"
        assert default is not None, undefined
        assert ":?" not in match.group(0), undefined
        return default

    return VAR_REF.sub(repl, value).replace("$$", "$")


def known_env_names() -> set[str]:
    """Every env var name the settings classes of flts.settings read (their aliases)."""
    names: set[str] = set()
    for _, cls in inspect.getmembers(settings_module, inspect.isclass):
        if not issubclass(cls, BaseSettings) or cls.__module__ != settings_module.__name__:
            continue
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, str):
                names.add(alias)
            elif isinstance(alias, AliasChoices):
                names.update(c for c in alias.choices if isinstance(c, str))
    return names


def test_every_spec_service_has_its_command_and_group_ids(compose: dict[str, Any]) -> None:
    services = flts_services(compose)
    assert set(services) == set(SPEC_TABLE)
    for name, (command, fixed) in SPEC_TABLE.items():
        service = services[name]
        assert service["command"] == command, name
        env = env_of(service)
        for key, value in fixed.items():
            assert env.get(key) == value, f"{name}: {key}={env.get(key)!r}, spec says {value!r}"
        spec_command, spec_env = SPEC_SERVICES[name.replace("_", "-")]
        assert command == ["service", spec_command]
        assert spec_env.items() <= env.items(), f"{name} disagrees with SPEC_SERVICES"
        assert service["build"]["context"] == ".."


def test_preprocess_is_one_shot(compose: dict[str, Any]) -> None:
    service = compose["services"]["preprocess"]
    assert service.get("restart") == "no"
    assert "oneshot" in service.get("profiles", [])


def test_flts_services_reach_the_infrastructure(compose: dict[str, Any]) -> None:
    for name, service in flts_services(compose).items():
        env = env_of(service)
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["S3_ENDPOINT_URL"] == "http://minio:9000", name
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert VAR_REF.fullmatch(env[key]), f"{name}: {key} must be a ${{VAR}} reference"
        depends = service["depends_on"]
        assert depends["kafka"] == {"condition": "service_healthy"}, name


def test_no_literal_secrets_anywhere(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if SECRET_NAMES.search(key) and key != "MLFLOW_TRACKING_URI":
                assert VAR_REF.search(value), f"{name}: {key} holds a literal value"


def test_flts_env_names_are_known_to_settings(compose: dict[str, Any]) -> None:
    known = known_env_names()
    assert {"KAFKA_BOOTSTRAP_SERVERS", "MODEL_TYPE", "API_HOST"} <= known
    for name, service in flts_services(compose).items():
        unknown = sorted(set(env_of(service)) - known)
        assert not unknown, f"{name}: env vars no flts.settings class reads: {unknown}"


def test_published_ports_bind_to_loopback(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: use the short 'IP:HOST:CONTAINER' form"
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is not bound to loopback"
            published += 1
    assert compose["services"]["inference"]["ports"] == ["127.0.0.1:18000:18000"]
    assert published >= 2


def test_infrastructure_images_and_buckets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "kafka-" in " ".join(kafka["healthcheck"]["test"])
    mlflow = services["mlflow"]
    assert mlflow["image"].startswith("ghcr.io/mlflow/mlflow:v3.17.2")
    command = mlflow["command"]
    assert command[command.index("--artifacts-destination") + 1] == "s3://mlflow"
    assert "--serve-artifacts" in command
    script = " ".join(services["minio-init"]["command"])
    for bucket in ("dataset", "processed-data", "mlflow", "model-promotion", "inference-logs"):
        assert bucket in script


def strings_in(node: object) -> list[str]:
    """Every string (keys and values) in a parsed YAML tree: what compose interpolates."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return []


def test_every_referenced_variable_is_in_env_example(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    referenced = {m.group(1) for s in strings_in(compose) for m in VAR_REF.finditer(s)}
    assert {"AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD", "API_TOKEN"} <= referenced
    missing = sorted(referenced - set(env_example))
    assert not missing, f"referenced in docker-compose.yaml but not in .env.example: {missing}"
    for name, value in env_example.items():
        if SECRET_NAMES.search(name):
            assert "change-me" in value, f".env.example: {name} must be a placeholder"


@pytest.mark.parametrize("name", sorted(SPEC_TABLE))
def test_real_settings_load_from_the_compose_env(
    name: str,
    compose: dict[str, Any],
    env_example: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = compose["services"][name]
    for var in known_env_names():
        monkeypatch.delenv(var, raising=False)
    env = {k: substitute(v, env_example) for k, v in env_of(service).items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    command = service["command"][1]
    loaded = {cls: load_settings(cls) for cls in SETTINGS_OF[command]}
    if command == "train":
        train = loaded[TrainSettings]
        assert isinstance(train, TrainSettings)
        assert train.model_type == ModelType.parse(env["MODEL_TYPE"])
        assert train.consumer_group_id == env["CONSUMER_GROUP_ID"]
    elif command == "inference":
        inference = loaded[InferenceSettings]
        assert isinstance(inference, InferenceSettings)
        assert (inference.api_host, inference.api_port) == ("0.0.0.0", 18000)
        assert inference.api_token is not None
    elif command == "eval":
        evaluation = loaded[EvalSettings]
        assert isinstance(evaluation, EvalSettings)
        assert [t.value for t in evaluation.expected_model_types] == ["GRU", "LSTM", "PROPHET"]
    s3 = loaded[S3Settings]
    assert isinstance(s3, S3Settings)
    assert s3.secret_access_key is not None
    assert s3.secret_access_key.get_secret_value() == env_example["AWS_SECRET_ACCESS_KEY"]
