"""Poison messages: each lands in the right DLQ with a useful error, and the service goes on.

DLQ rule under test: input that cannot be decoded (MessageError) -> DLQ-<consumed topic>; a
failure while processing a decodable message -> the service's DLQ (train:
DLQ-{PRODUCER_TOPIC}, eval: DLQ_MODEL_SELECTED).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _services_helpers import TopicReader, run_preprocess, spawn, uid, write_slices

from flts import kafka_utils as ku
from flts.domain.messages import (
    DlqRecord,
    ModelTrained,
    ModelTrainingFailed,
    TrainingDataReady,
    decode,
)
from flts.infra.stack import StackEndpoints
from flts.services.completion import CompletionTracker
from flts.settings import KafkaSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _dlq_records(reader: TopicReader, n: int, logs: Any) -> list[DlqRecord]:
    reader.wait_for(lambda s: len(s) >= n, 120, f"{n} DLQ records", logs=logs)
    return [decode(DlqRecord, v) for _, v in reader.seen]


def test_trainer_dead_letters_poison_and_still_trains_the_good_claim(
    stack: StackEndpoints, kafka_settings: KafkaSettings, s3_store: Any, tmp_path: Path
) -> None:
    u = uid()
    claims_topic, out_topic = f"training-data-{u}", f"model-training-{u}"
    train_csv, test_csv = write_slices(tmp_path)
    pre = run_preprocess(
        stack.service_env(),
        train_csv,
        test_csv,
        f"poison-{u}",
        PRODUCER_TOPIC_0=claims_topic,
        PRODUCER_TOPIC_1=f"inference-data-{u}",
    )
    assert pre.returncode == 0, pre.stderr[-3000:]
    good = TopicReader(kafka_settings, claims_topic)
    good.wait_for(lambda s: len(s) == 1, 30, "the good claim")
    good.close()
    good_claim = decode(TrainingDataReady, good.seen[0][1])

    s3_store.put_bytes("processed-data", f"poison-{u}/not.parquet", b"this is not parquet")
    missing = good_claim.model_copy(
        update={"object": f"poison-{u}/missing.parquet", "config_hash": None}
    )
    # A claim of a known lineage that cannot be trained on: besides its DLQ record the trainer
    # announces FAILED, so an evaluator stops waiting for GRU in that lineage.
    not_parquet = good_claim.model_copy(
        update={"object": f"poison-{u}/not.parquet", "config_hash": f"lineage-{u}"}
    )
    poison: list[Any] = [
        b"not json {",
        {"bucket": 5, "object": ["x"], "size": "big", "v": 1, "identifier": "p"},
        {"bucket": "processed-data"},
        missing,
        not_parquet,
    ]
    producer = ku.create_producer(settings=kafka_settings)
    ku.ensure_topics(kafka_settings.bootstrap_servers, [claims_topic, out_topic])
    # Re-queue the good claim after the poison, so it is the last message.
    for value in [*poison, good_claim]:
        assert ku.produce_message(producer, claims_topic, value, key="train-claim")

    trainer = spawn(
        "train-gru",
        stack.service_env(),
        tmp_path,
        CONSUMER_TOPIC=claims_topic,
        PRODUCER_TOPIC=out_topic,
        EPOCHS="1",
        TORCH_THREADS="1",
        CONSUMER_GROUP_ID=f"gru-{u}",
    )
    input_dlq = TopicReader(kafka_settings, f"DLQ-{claims_topic}")
    work_dlq = TopicReader(kafka_settings, f"DLQ-{out_topic}")
    events = TopicReader(kafka_settings, out_topic)
    try:
        # The first good claim (from preprocess) and its re-queued copy: 2 SUCCESS, 1 training.
        events.wait_for(
            lambda s: sum(v.get("status") == "SUCCESS" for _, v in s) >= 2,
            300,
            "SUCCESS for both good claims",
            logs=trainer.log,
        )
        events.wait_for(
            lambda s: any(v.get("status") == "FAILED" for _, v in s), 60, "the FAILED event"
        )
        bad_input = _dlq_records(input_dlq, 3, trainer.log)
        bad_work = _dlq_records(work_dlq, 2, trainer.log)
    finally:
        assert trainer.stop() == 0
        for reader in (input_dlq, work_dlq, events):
            reader.close()

    assert all(r.status == "Failure" and r.source_topic == claims_topic for r in bad_input)
    assert [r.error_type for r in bad_input] == ["MessageError"] * 3
    assert "not valid JSON" in bad_input[0].error_details
    assert bad_input[0].payload == "not json {"
    assert "bucket" in bad_input[1].error_details
    assert "size" in bad_input[1].error_details
    assert bad_input[1].payload["size"] == "big"
    assert "object" in bad_input[2].error_details  # a missing required field is named
    assert bad_work[0].error_type == "ObjectNotFoundError"
    assert "missing.parquet" in bad_work[0].error_details
    assert bad_work[0].payload["object"] == f"poison-{u}/missing.parquet"
    assert bad_work[1].error_type == "DataValidationError"
    assert "not.parquet" in bad_work[1].error_details
    assert [r.source_offset for r in bad_work] == [4, 5]  # the preprocess claim is offset 0
    successes = [decode(ModelTrained, v) for _, v in events.seen if v.get("status") == "SUCCESS"]
    assert {s.run_id for s in successes} == {successes[0].run_id}  # the replay did not retrain
    # Exactly one FAILED: the missing object's claim has no lineage to release.
    failures = [(k, v) for k, v in events.seen if v.get("status") == "FAILED"]
    assert len(failures) == 1
    key, value = failures[0]
    announced = decode(ModelTrainingFailed, value)
    assert key == "trained-GRU"
    assert (announced.model_type, announced.identifier) == ("GRU", good_claim.identifier)
    assert announced.config_hash == f"lineage-{u}"
    assert announced.error_type == "DataValidationError"
    assert "not.parquet" in announced.error_details
    assert announced.dlq_topic == f"DLQ-{out_topic}"


def test_eval_dead_letters_poison_and_records_the_next_good_event(
    stack: StackEndpoints, kafka_settings: KafkaSettings, s3_store: Any, tmp_path: Path
) -> None:
    u = uid()
    topic, dlq = f"model-training-{u}", f"DLQ-model-selected-{u}"
    ku.ensure_topics(kafka_settings.bootstrap_servers, [topic, dlq])
    good = ModelTrained(
        model_type="GRU",
        config_hash=f"h-{u}",
        run_id=f"r-{u}",
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        train_start="2025-11-24T12:00:00Z",
        train_end="2025-11-24T12:05:00Z",
        identifier=f"poison-{u}",
        artifact_uri="s3://mlflow/x",
    )
    producer = ku.create_producer(settings=kafka_settings)
    for value in (
        b"\x00\x01 binary",
        {"status": "SUCCESS", "model_type": "GRU"},
        {"status": "EXPLODED", "model_type": "GRU"},
        good.model_copy(update={"model_type": "XGBOOST"}),
        good,
    ):
        assert ku.produce_message(producer, topic, value, key="trained-GRU")
    service = spawn(
        "eval",
        stack.service_env(),
        tmp_path,
        MODEL_TRAINING_TOPIC=topic,
        EVAL_GROUP_ID=f"eval-{u}",
        DLQ_MODEL_SELECTED=dlq,
        EXPECTED_MODEL_TYPES="GRU,LSTM",
        MODEL_SELECTED_TOPIC=f"model-selected-{u}",
    )
    input_dlq, work_dlq = (
        TopicReader(kafka_settings, f"DLQ-{topic}"),
        TopicReader(kafka_settings, dlq),
    )
    tracker = CompletionTracker(s3_store, ["GRU", "LSTM"])
    try:
        bad_input = _dlq_records(input_dlq, 3, service.log)
        bad_work = _dlq_records(work_dlq, 1, service.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if tracker.load(good.identifier, good.config_hash).results:
                break
            time.sleep(0.5)
    finally:
        assert service.stop() == 0
        input_dlq.close()
        work_dlq.close()
    assert [r.error_type for r in bad_input] == ["MessageError"] * 3
    assert "unknown status 'EXPLODED'" in bad_input[2].error_details
    assert "test_rmse" in bad_input[1].error_details
    assert bad_work[0].error_type == "UnknownModelTypeError"
    assert "XGBOOST" in bad_work[0].error_details
    assert bad_work[0].payload["model_type"] == "XGBOOST"
    state = tracker.load(good.identifier, good.config_hash)
    assert list(state.results) == ["GRU"]
    assert state.missing() == ["LSTM"]
