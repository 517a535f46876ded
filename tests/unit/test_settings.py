"""Settings: the spec's env var names and defaults, and errors that name the variable."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from flts.domain.config import ModelType
from flts.errors import ConfigError
from flts.settings import (
    SPEC_DEFAULTS,
    EvalSettings,
    GatewaySettings,
    InferenceSettings,
    KafkaSettings,
    PreprocessSettings,
    S3Settings,
    TrainSettings,
    load_settings,
)

#: Written from shared/spec/kafka-usage-report.md (per container), not from the code.
SPEC = {
    "PreprocessSettings": {
        "PRODUCER_TOPIC_0": "training-data",
        "PRODUCER_TOPIC_1": "inference-data",
    },
    "TrainSettings": {"CONSUMER_TOPIC": "training-data", "PRODUCER_TOPIC": "model-training"},
    "EvalSettings": {
        "MODEL_TRAINING_TOPIC": "model-training",
        "MODEL_SELECTED_TOPIC": "model-selected",
        "EVAL_GROUP_ID": "eval-promoter",
        "DLQ_MODEL_SELECTED": "DLQ-model-selected",
        "EXPECTED_MODEL_TYPES": "GRU,LSTM,PROPHET",
    },
    "InferenceSettings": {
        "CONSUMER_TOPIC_0": "inference-data",
        "CONSUMER_TOPIC_1": "model-training",
        "PROMOTION_TOPIC": "model-selected",
        "CONSUMER_GROUP_ID": "batch-forecasting-v2",
        "PRODUCER_TOPIC": "performance-eval",
        "RUN_INFERENCE_ON_TRAIN_SUCCESS": 1,
    },
}

CLASSES: dict[str, type[BaseSettings]] = {
    c.__name__: c
    for c in (
        KafkaSettings,
        PreprocessSettings,
        TrainSettings,
        EvalSettings,
        InferenceSettings,
        S3Settings,
        GatewaySettings,
    )
}
REQUIRED = {"KafkaSettings": {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}}
REQUIRED["TrainSettings"] = {"CONSUMER_GROUP_ID": "train-gru", "MODEL_TYPE": "GRU"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {n for table in SPEC_DEFAULTS.values() for n in table} | {
        "KAFKA_BOOTSTRAP_SERVERS",
        "CONSUMER_GROUP_ID",
        "MODEL_TYPE",
        "S3_ENDPOINT_URL",
        "MLFLOW_S3_ENDPOINT_URL",
    }
    for name in names:
        monkeypatch.delenv(name, raising=False)


def test_spec_defaults_table_covers_the_spec() -> None:
    for cls_name, expected in SPEC.items():
        assert {k: SPEC_DEFAULTS[cls_name][k] for k in expected} == expected


@pytest.mark.parametrize("cls_name", sorted(SPEC_DEFAULTS))
def test_settings_defaults_equal_the_table(cls_name: str) -> None:
    settings = load_settings(CLASSES[cls_name], **REQUIRED.get(cls_name, {}))
    by_env = {
        f.validation_alias: getattr(settings, name)
        for name, f in type(settings).model_fields.items()
        if isinstance(f.validation_alias, str)
    }
    for env, default in SPEC_DEFAULTS[cls_name].items():
        actual = by_env[env]
        if env == "EXPECTED_MODEL_TYPES":
            actual = ",".join(actual)
        assert actual == default, env


def test_dlq_defaults_follow_the_spec_pattern() -> None:
    train = load_settings(TrainSettings, **REQUIRED["TrainSettings"], PRODUCER_TOPIC="mt")
    assert train.dlq_topic == "DLQ-mt"
    assert train.consumer_dlq_topic == "DLQ-training-data"


def test_missing_bootstrap_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS is required"):
        load_settings(KafkaSettings)


def test_missing_group_and_model_type_are_both_named() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(TrainSettings)
    assert "CONSUMER_GROUP_ID" in str(err.value)
    assert "MODEL_TYPE" in str(err.value)


@pytest.mark.parametrize("value", ["GRU,,LSTM", "GRU,XGBOOST", ""])
def test_malformed_expected_model_types_names_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPECTED_MODEL_TYPES", value)
    with pytest.raises(ConfigError, match="EXPECTED_MODEL_TYPES is invalid"):
        load_settings(EvalSettings)


def test_env_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPECTED_MODEL_TYPES", "gru, prophet")
    monkeypatch.setenv("RUN_INFERENCE_ON_TRAIN_SUCCESS", "0")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    assert load_settings(EvalSettings).expected_model_types == (ModelType.GRU, ModelType.PROPHET)
    assert load_settings(InferenceSettings).run_inference_on_train_success is False
    assert load_settings(S3Settings).endpoint_url == "http://127.0.0.1:1"
    monkeypatch.setenv("API_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="API_PORT is invalid"):
        load_settings(InferenceSettings)


def test_hyper_parameter_overrides_reach_train_config() -> None:
    train = load_settings(TrainSettings, **REQUIRED["TrainSettings"], EPOCHS="2", SEED="7")
    config = train.train_config()
    assert (config.epochs, config.seed) == (2, 7)
    with pytest.raises(ConfigError, match="MODEL_TYPE"):
        load_settings(TrainSettings, CONSUMER_GROUP_ID="g", MODEL_TYPE="PERSISTENCE")


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-kafka")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-s3")
    monkeypatch.setenv("GATEWAY_TOKEN", "hunter2-gw")
    shown = " ".join(
        repr(s)
        for s in (
            load_settings(KafkaSettings, KAFKA_BOOTSTRAP_SERVERS="x:1"),
            load_settings(S3Settings),
            load_settings(GatewaySettings),
        )
    )
    assert "hunter2" not in shown
    kafka = load_settings(KafkaSettings, KAFKA_BOOTSTRAP_SERVERS="x:1")
    assert kafka.client_config()["sasl.password"] == "hunter2-kafka"


def test_pipeline_topics_come_from_the_settings_defaults() -> None:
    from flts.kafka_utils import topic_names
    from flts.settings import pipeline_topics

    topics = pipeline_topics()
    assert topics.spec == (
        "training-data",
        "inference-data",
        "model-training",
        "model-selected",
        "performance-eval",
    )
    assert topics.progress == "flts-progress"
    assert "DLQ-preprocess" in topics.dead_letter
    assert "DLQ-model-selected" in topics.dead_letter
    assert set(topic_names()) == set(topics.all())
    assert len(topic_names()) == len(set(topic_names()))


def test_no_production_code_uses_the_in_memory_doubles() -> None:
    """The doubles in flts.adapters.memory are for tests and benchmarks only."""
    import pathlib

    import flts

    root = pathlib.Path(flts.__file__).parent
    users = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "from flts.adapters.memory import" in p.read_text()
        and p.parts[-2] not in {"bench", "adapters"}
    ]
    assert users == []


def test_serving_limits_have_documented_defaults_and_env_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = load_settings(InferenceSettings)
    assert defaults.api_max_body_bytes == 1_048_576
    assert (defaults.api_max_rows, defaults.api_max_queue) == (10_000, 1_024)
    assert (defaults.api_request_timeout_ms, defaults.api_torch_threads) == (5_000, 1)
    assert defaults.api_forward_in_loop is False
    monkeypatch.setenv("API_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("API_REQUEST_TIMEOUT_MS", "250")
    monkeypatch.setenv("API_FORWARD_IN_LOOP", "true")
    custom = load_settings(InferenceSettings)
    assert (custom.api_max_body_bytes, custom.api_request_timeout_ms) == (2048, 250)
    assert custom.api_forward_in_loop is True
    monkeypatch.setenv("API_MAX_QUEUE", "0")
    with pytest.raises(ConfigError, match="API_MAX_QUEUE"):
        load_settings(InferenceSettings)
