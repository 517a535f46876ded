"""The services as subprocesses on the real stack: preprocess, trainers, eval restart, inference.

One module-scoped run preprocesses a small slice and trains GRU, LSTM and PROPHET (1 epoch)
with the real ``flts service`` processes on topics of its own; the later tests reuse its
SUCCESS events.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _services_helpers import TopicReader, run_preprocess, spawn, uid, write_slices

from flts import kafka_utils as ku
from flts.domain.messages import (
    InferenceDataReady,
    ModelSelected,
    ModelTrained,
    ModelTrainingFailed,
    PerformanceEval,
    TrainingDataReady,
    decode,
)
from flts.infra.procs import free_port
from flts.infra.stack import StackEndpoints
from flts.services.completion import CompletionTracker
from flts.settings import KafkaSettings
from flts.stages.ports import BUCKET_PROMOTION

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRAINERS = ("train-gru", "train-lstm", "nonml-prophet")


@dataclass
class Trained:
    identifier: str
    training_topic: str
    inference_topic: str
    summary: dict[str, Any]
    rerun_summary: dict[str, Any]
    training_claims: list[tuple[str | None, Any]]
    inference_claims: list[tuple[str | None, Any]]
    events: list[tuple[str | None, Any]]
    trainer_exit_codes: list[int]

    def successes(self) -> dict[str, ModelTrained]:
        return {
            v["model_type"]: decode(ModelTrained, v)
            for _, v in self.events
            if v.get("status") == "SUCCESS"
        }


@pytest.fixture(scope="module")
def trained(
    stack: StackEndpoints, kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Trained:
    tmp = tmp_path_factory.mktemp("services")
    env, u = stack.service_env(), uid()
    topics = {"PRODUCER_TOPIC_0": f"training-data-{u}", "PRODUCER_TOPIC_1": f"inference-data-{u}"}
    train_csv, test_csv = write_slices(tmp)
    identifier = f"svc-{u}"
    first = run_preprocess(env, train_csv, test_csv, identifier, **topics)
    assert first.returncode == 0, first.stderr[-4000:]
    again = run_preprocess(env, train_csv, test_csv, identifier, **topics)
    assert again.returncode == 0, again.stderr[-4000:]
    training = TopicReader(kafka_settings, topics["PRODUCER_TOPIC_0"])
    inference = TopicReader(kafka_settings, topics["PRODUCER_TOPIC_1"])
    training.wait_for(lambda s: len(s) >= 2, 30, "two training claims")
    inference.wait_for(lambda s: len(s) >= 2, 30, "two inference claims")
    training.close()
    inference.close()

    model_training = f"model-training-{u}"
    services = [
        spawn(
            name,
            env,
            tmp,
            CONSUMER_TOPIC=topics["PRODUCER_TOPIC_0"],
            PRODUCER_TOPIC=model_training,
            EPOCHS="1",
            TORCH_THREADS="1",
            CONSUMER_GROUP_ID=f"{name}-{u}",
        )
        for name in TRAINERS
    ]
    reader = TopicReader(kafka_settings, model_training)
    try:
        reader.wait_for(
            lambda s: len({v["model_type"] for _, v in s if v.get("status") == "SUCCESS"}) == 3,
            420,
            "SUCCESS from all three trainers",
            logs=lambda: "\n".join(svc.log()[-1500:] for svc in services),
        )
        reader.poll_for(2.0)  # duplicates, if any, would show up now
    finally:
        codes = [svc.stop() for svc in services]
        reader.close()
    return Trained(
        identifier,
        topics["PRODUCER_TOPIC_0"],
        topics["PRODUCER_TOPIC_1"],
        json.loads(first.stdout.strip().splitlines()[-1]),
        json.loads(again.stdout.strip().splitlines()[-1]),
        training.seen,
        inference.seen,
        reader.seen,
        codes,
    )


def test_preprocess_publishes_both_claims_and_reuses_on_rerun(trained: Trained) -> None:
    assert trained.summary["reused"] is False
    assert trained.rerun_summary["reused"] is True
    assert trained.rerun_summary["config_hash"] == trained.summary["config_hash"]
    assert [k for k, _ in trained.training_claims] == ["train-claim", "train-claim"]
    assert [k for k, _ in trained.inference_claims] == ["inference-claim", "inference-claim"]
    claim = decode(TrainingDataReady, trained.training_claims[0][1])
    assert claim.identifier == trained.identifier
    assert claim.config_hash == trained.summary["config_hash"]
    assert trained.training_claims[0][1] == trained.training_claims[1][1]  # identical re-emit
    infer_claim = decode(InferenceDataReady, trained.inference_claims[0][1])
    assert infer_claim.operation == "post: test data"
    assert infer_claim.object_key == infer_claim.object


def test_trainers_emit_running_then_one_success_each_with_spec_keys(trained: Trained) -> None:
    assert trained.trainer_exit_codes == [0, 0, 0]  # SIGTERM is a clean shutdown
    successes = [(k, v) for k, v in trained.events if v.get("status") == "SUCCESS"]
    assert {k for k, _ in successes} == {"trained-GRU", "trained-LSTM", "trained-PROPHET"}
    # Preprocess ran twice (identical claims): each trainer answered both, training once.
    for model in ("GRU", "LSTM", "PROPHET"):
        runs = {v["run_id"] for _, v in successes if v["model_type"] == model}
        assert len(runs) == 1, (model, runs)
    running = [v for _, v in trained.events if v.get("status") == "RUNNING"]
    assert {v["model_type"] for v in running} == {"GRU", "LSTM", "PROPHET"}
    for event in trained.successes().values():
        assert event.identifier == trained.identifier
        assert event.config_hash == trained.summary["config_hash"]
        assert event.baselines is not None
        assert event.test_windows


def _champion_quality(event: ModelTrained) -> ModelTrained:
    """The same real run, with errors half of persistence's so it must be promoted.

    One epoch on 2,000 rows rarely beats persistence; the test is about delivery, not skill.
    """
    assert event.baselines is not None
    base = event.baselines["PERSISTENCE"]
    return event.model_copy(
        update={"test_rmse": base.rmse / 2, "test_mae": base.mae / 2, "test_mse": base.mse / 4}
    )


def _evaluator_topics(kafka_settings: KafkaSettings) -> tuple[str, dict[str, str]]:
    """A fresh suffix and an evaluator's env on topics, group and registered name of its own."""
    u = uid()
    env = {
        "MODEL_TRAINING_TOPIC": f"model-training-{u}",
        "MODEL_SELECTED_TOPIC": f"model-selected-{u}",
        "EVAL_GROUP_ID": f"eval-{u}",
        "REGISTERED_MODEL_NAME": f"flts-test-{u}",
    }
    topics = [env["MODEL_TRAINING_TOPIC"], env["MODEL_SELECTED_TOPIC"]]
    ku.ensure_topics(kafka_settings.bootstrap_servers, topics)
    return u, env


def test_eval_restart_loses_nothing_and_promotes_exactly_once(
    trained: Trained,
    stack: StackEndpoints,
    kafka_settings: KafkaSettings,
    s3_store: Any,
    tmp_path: Path,
) -> None:
    _, env = _evaluator_topics(kafka_settings)
    training_topic, selected_topic = env["MODEL_TRAINING_TOPIC"], env["MODEL_SELECTED_TOPIC"]
    events = trained.successes()
    events["GRU"] = _champion_quality(events["GRU"])
    producer = ku.create_producer(settings=kafka_settings)
    for model in ("LSTM", "PROPHET"):
        assert ku.produce_message(producer, training_topic, events[model], key=f"trained-{model}")
    first = spawn("eval", stack.service_env(), tmp_path, **env)
    tracker = CompletionTracker(s3_store, ["GRU", "LSTM", "PROPHET"])
    key = tracker.key(trained.identifier, trained.summary["config_hash"])
    deadline = time.monotonic() + 240  # the machine may be busy: be patient, not flaky
    while time.monotonic() < deadline:
        if s3_store.exists(BUCKET_PROMOTION, key):
            state = tracker.load(trained.identifier, trained.summary["config_hash"])
            if state.missing() == ["GRU"]:
                break
        time.sleep(0.5)
    else:
        raise AssertionError(f"eval never recorded two results:\n{first.log()[-3000:]}")
    assert first.stop() == 0

    second = spawn("eval", stack.service_env(), tmp_path, **env)
    assert ku.produce_message(producer, training_topic, events["GRU"], key="trained-GRU")
    reader = TopicReader(kafka_settings, selected_topic)
    try:
        reader.wait_for(lambda s: len(s) >= 1, 240, "model-selected", logs=second.log)
        # A duplicate SUCCESS after promotion must not promote again.
        assert ku.produce_message(producer, training_topic, events["GRU"], key="trained-GRU")
        reader.poll_for(6.0)
    finally:
        assert second.stop() == 0
        reader.close()
    assert len(reader.seen) == 1, reader.seen
    key_, value = reader.seen[0]
    assert key_ == "promotion"
    selected = decode(ModelSelected, value)
    assert (selected.model_type, selected.run_id) == ("GRU", events["GRU"].run_id)
    assert selected.identifier == trained.identifier
    assert tracker.load(trained.identifier, trained.summary["config_hash"]).published


def test_eval_ranks_the_other_models_when_one_failed_to_train(
    trained: Trained,
    stack: StackEndpoints,
    kafka_settings: KafkaSettings,
    s3_store: Any,
    tmp_path: Path,
) -> None:
    """A trainer's FAILED event (what it sends after dead-lettering a claim it cannot train
    on) releases that model: the real evaluator promotes among the others and records why."""
    u, env = _evaluator_topics(kafka_settings)
    training_topic, selected_topic = env["MODEL_TRAINING_TOPIC"], env["MODEL_SELECTED_TOPIC"]
    # A lineage of its own: the other tests' evaluators keep their state for the shared one.
    events = {
        m: e.model_copy(update={"identifier": f"failed-{u}"})
        for m, e in trained.successes().items()
    }
    lstm = _champion_quality(events["LSTM"])
    gru_failed = ModelTrainingFailed(
        model_type="GRU",
        config_hash=lstm.config_hash,
        identifier=lstm.identifier,
        error_type="ForecastError",
        error_details="GRU cannot fit this series",
        dlq_topic="DLQ-model-training",
        failed_at="2026-12-03T08:00:00Z",
    )
    producer = ku.create_producer(settings=kafka_settings)
    for model, event in (("GRU", gru_failed), ("LSTM", lstm), ("PROPHET", events["PROPHET"])):
        assert ku.produce_message(producer, training_topic, event, key=f"trained-{model}")
    evaluator = spawn("eval", stack.service_env(), tmp_path, **env)
    reader = TopicReader(kafka_settings, selected_topic)
    try:
        reader.wait_for(lambda s: len(s) >= 1, 240, "model-selected", logs=evaluator.log)
    finally:
        assert evaluator.stop() == 0
        reader.close()
    selected = decode(ModelSelected, reader.seen[0][1])
    assert (selected.model_type, selected.run_id) == ("LSTM", lstm.run_id)
    record_key = f"{lstm.identifier}/{lstm.config_hash}/current.json"
    record = json.loads(s3_store.get_bytes(BUCKET_PROMOTION, record_key))
    assert record["waived"] == {
        "GRU": "training failed (ForecastError: GRU cannot fit this series)"
    }
    assert {row["model_type"] for row in record["report"]["rows"]} >= {"LSTM", "PROPHET"}
    assert "GRU" not in {row["model_type"] for row in record["report"]["rows"]}


def test_inference_runs_claims_with_provisional_then_champion_and_is_ready_after_restart(
    trained: Trained,
    stack: StackEndpoints,
    kafka_settings: KafkaSettings,
    mlflow_uri: str,
    tmp_path: Path,
) -> None:
    from flts.adapters.mlflow_tracker import MlflowTracker

    u = uid()
    training_topic, selected_topic, perf_topic = (
        f"model-training-{u}",
        f"model-selected-{u}",
        f"performance-eval-{u}",
    )
    ku.ensure_topics(kafka_settings.bootstrap_servers, [training_topic, selected_topic, perf_topic])
    events = trained.successes()
    port, registered = free_port(), f"flts-infer-{u}"
    env = dict(
        CONSUMER_TOPIC_0=trained.inference_topic,
        CONSUMER_TOPIC_1=training_topic,
        PROMOTION_TOPIC=selected_topic,
        PRODUCER_TOPIC=perf_topic,
        CONSUMER_GROUP_ID=f"infer-{u}",
        API_PORT=str(port),
        REGISTERED_MODEL_NAME=registered,
        RUN_INFERENCE_ON_TRAIN_SUCCESS="1",
    )
    service = spawn("inference", stack.service_env(), tmp_path, **env)
    perf = TopicReader(kafka_settings, perf_topic)
    producer = ku.create_producer(settings=kafka_settings)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/healthz", 200, 90, service.log)
        assert httpx.get(f"{base}/readyz").status_code == 503  # the claim is pending, no model
        gru = events["GRU"]
        assert ku.produce_message(producer, training_topic, gru, key="trained-GRU")
        perf.wait_for(lambda s: len(s) >= 1, 120, "provisional inference", logs=service.log)
        lstm = events["LSTM"]
        champion = ModelSelected(
            model_uri=lstm.model_uri or f"runs:/{lstm.run_id}/model",
            model_type="LSTM",
            run_id=lstm.run_id,
            config_hash=lstm.config_hash,
            composite_score=0.9,
            test_rmse=lstm.test_rmse,
            test_mae=lstm.test_mae,
            test_mse=lstm.test_mse,
            promotion_time="2025-11-24T12:10:00Z",
            identifier=lstm.identifier,
        )
        assert ku.produce_message(producer, selected_topic, champion, key="promotion")
        perf.wait_for(lambda s: len(s) >= 2, 120, "champion inference", logs=service.log)
        _wait_http(f"{base}/readyz", 200, 30, service.log)
        assert httpx.get(f"{base}/model").json()["run_id"] == lstm.run_id
    finally:
        assert service.stop() == 0
    runs = [decode(PerformanceEval, v) for _, v in perf.seen]
    assert [r.run_id for r in runs] == [gru.run_id, lstm.run_id]
    assert runs[0].output_object != runs[1].output_object
    assert all(r.identifier == trained.identifier and r.windows > 0 for r in runs)

    # After a restart the registry's champion makes the API ready without any message.
    MlflowTracker(mlflow_uri).register_champion(champion.model_uri, registered, "champion")
    env.update(API_PORT=str(free_port()), CONSUMER_GROUP_ID=f"infer2-{u}")
    restarted = spawn("inference", stack.service_env(), tmp_path, **env)
    try:
        _wait_http(f"http://127.0.0.1:{env['API_PORT']}/readyz", 200, 90, restarted.log)
    finally:
        assert restarted.stop() == 0
        perf.close()


def _wait_http(url: str, status: int, timeout_s: float, logs: Any) -> None:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=2).status_code
            if last == status:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered {status} (last: {last})\n{logs()[-3000:]}")
