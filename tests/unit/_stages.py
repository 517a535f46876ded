"""Preprocess -> train -> batch inference with in-memory doubles, as one call (unit tests only)."""

from __future__ import annotations

from dataclasses import dataclass

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker, RecordingSink
from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.domain.messages import ModelTrained, PerformanceEval
from flts.stages import infer, preprocess, train
from flts.stages.contracts import (
    InferRequest,
    InferStageConfig,
    ObjectRef,
    PreprocessRequest,
    TrainStageConfig,
)
from flts.stages.ports import BUCKET_INFERENCE_LOGS, StageContext

QUICK = TrainConfig(epochs=2, hidden_size=8, batch_size=64, seed=1)


@dataclass(frozen=True)
class StageRun:
    test_rows: int
    trained: ModelTrained
    perf: PerformanceEval
    #: The batch forecasts, one JSON line per (origin, step).
    jsonl: bytes
    #: The run's in-memory store and tracker (to load the trained model again).
    ctx: StageContext


def run_stages(
    model_type: ModelType, train_csv: bytes, test_csv: bytes, config: PreprocessConfig
) -> StageRun:
    store = InMemoryObjectStore()
    store.ensure_bucket("dataset")
    store.put_bytes("dataset", "r/train.csv", train_csv)
    store.put_bytes("dataset", "r/test.csv", test_csv)
    ctx = StageContext(store=store, tracker=InMemoryTracker(), events=RecordingSink())
    request = PreprocessRequest(
        identifier="r",
        train=ObjectRef(bucket="dataset", key="r/train.csv"),
        test=ObjectRef(bucket="dataset", key="r/test.csv"),
    )
    prep = preprocess.run(request, config, ctx)
    stage = TrainStageConfig(model_type=model_type, train=QUICK)
    trained = train.run(prep.training, stage, ctx)
    assert trained.model_uri is not None
    infer_config = InferStageConfig(
        model_uri=trained.model_uri, model_type=model_type.value, run_id=trained.run_id
    )
    perf = infer.run(InferRequest(claim=prep.inference), infer_config, ctx)
    jsonl = store.get_bytes(BUCKET_INFERENCE_LOGS, perf.output_object)
    return StageRun(prep.test_rows, trained, perf, jsonl, ctx)
