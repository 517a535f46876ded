"""Preprocess on request (``flts service preprocess --listen``), as ``flts run`` drives it:
a request for CSVs in the store gives both claims; a bad request is dead-lettered and the
service goes on with the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _services_helpers import TopicReader, spawn, uid, write_slices

from flts import kafka_utils as ku
from flts.domain.config import PreprocessConfig
from flts.domain.messages import DlqRecord, InferenceDataReady, TrainingDataReady, decode
from flts.infra.stack import StackEndpoints
from flts.services.preprocess import request_for
from flts.settings import KafkaSettings

pytestmark = [pytest.mark.integration]


def test_listener_answers_requests_and_dead_letters_bad_ones(
    stack: StackEndpoints, kafka_settings: KafkaSettings, s3_store: Any, tmp_path: Path
) -> None:
    u = uid()
    topics = {
        "PREPROCESS_REQUEST_TOPIC": f"preprocess-requests-{u}",
        "PRODUCER_TOPIC_0": f"training-data-{u}",
        "PRODUCER_TOPIC_1": f"inference-data-{u}",
        "DLQ_PREPROCESS": f"DLQ-preprocess-{u}",
        "PREPROCESS_GROUP_ID": f"preprocess-{u}",
    }
    train_csv, test_csv = write_slices(tmp_path)
    config = PreprocessConfig(lookback=12, season_steps=30)
    good = request_for(s3_store, f"listen-{u}", train_csv, test_csv, config)
    missing = good.model_copy(update={"train_object": "raw/nothing/here.csv"})
    bad_config = good.model_copy(update={"config": {"lookback": "many"}})

    claims = TopicReader(kafka_settings, topics["PRODUCER_TOPIC_0"])
    inference = TopicReader(kafka_settings, topics["PRODUCER_TOPIC_1"])
    undecodable = TopicReader(kafka_settings, f"DLQ-{topics['PREPROCESS_REQUEST_TOPIC']}")
    failed = TopicReader(kafka_settings, topics["DLQ_PREPROCESS"])
    producer = ku.create_producer(settings=kafka_settings)
    for value in (b"{not json", bad_config, missing, good):
        assert ku.produce_message(producer, topics["PREPROCESS_REQUEST_TOPIC"], value, key=u)

    service = spawn("preprocess", stack.service_env(), tmp_path, "--listen", **topics)
    try:
        claims.wait_for(lambda s: len(s) == 1, 240, "the training claim", logs=service.log)
        inference.wait_for(lambda s: len(s) == 1, 30, "the inference claim", logs=service.log)
        undecodable.wait_for(lambda s: len(s) == 2, 30, "two undecodable requests")
        failed.wait_for(lambda s: len(s) == 1, 30, "the request for a missing object")
    finally:
        assert service.stop() == 0
        for reader in (claims, inference, undecodable, failed):
            reader.close()

    key, value = claims.seen[0]
    assert key == "train-claim"
    claim = decode(TrainingDataReady, value)
    assert claim.identifier == f"listen-{u}"
    assert claim.test_object
    assert inference.seen[0][0] == "inference-claim"
    assert decode(InferenceDataReady, inference.seen[0][1]).config_hash == claim.config_hash
    # Which of the two lands first is not part of the contract (a delivery the broker confirmed
    # late is retried after the next one): match each refusal by its reason, not its position.
    errors = sorted(decode(DlqRecord, v).error_details for _, v in undecodable.seen)
    assert len(errors) == 2, errors
    assert sum("not valid JSON" in e for e in errors) == 1, errors
    assert sum("lookback" in e and "not valid JSON" not in e for e in errors) == 1, errors
    missing_error = decode(DlqRecord, failed.seen[0][1])
    assert "raw/nothing/here.csv" in missing_error.error_details
    assert missing_error.payload["identifier"] == f"listen-{u}"
