"""The KFP DAG run by kfp.local against the real local stack, and its parity with the stage
functions called directly in-process (what the Kafka services do).

Data: the first 2,000 training rows and 1,000 test rows of the bundled set. Config: lookback
12, horizon 6, season 30 steps, GRU (3 epochs, hidden 32) and Prophet. On this slice the GRU
beats persistence (composite ~0.84), so a champion is promoted and batch inference runs.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from flts import datasets
from flts.adapters.mlflow_tracker import MlflowTracker
from flts.adapters.s3 import S3ObjectStore
from flts.domain.config import ModelType, TrainConfig
from flts.infra.stack import StackEndpoints
from flts.kfp import glue
from flts.kfp.local_run import LocalRunResult, run_pipeline_locally
from flts.stages import evaluate, infer, preprocess, train
from flts.stages.contracts import (
    EvaluateRequest,
    EvaluateResult,
    EvaluateStageConfig,
    InferRequest,
    InferStageConfig,
    ObjectRef,
    PreprocessRequest,
    TrainStageConfig,
)
from flts.stages.ports import BUCKET_DATASET, BUCKET_PROMOTION, StageContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODELS = ["GRU", "PROPHET"]
PREP = {"lookback": 12, "horizon": 6, "target": "down", "time_col": "time", "season_steps": 30}
HYPER = {
    "epochs": 3,
    "hidden_size": 32,
    "num_layers": 1,
    "batch_size": 64,
    "learning_rate": 0.005,
    "patience": 3,
    "seed": 42,
    "torch_threads": 1,
}
#: Verified: the KFP task processes and the in-process run give bit-equal metrics (torch is
#: deterministic under the seed on CPU); the tolerance only absorbs JSON float round trips.
RTOL = 1e-9
TAG = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def csv_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("kfp-data")
    train_csv, test_csv = folder / "train.csv", folder / "test.csv"
    # The training slice ends where the test file starts: every test row is an origin (a test
    # file after a gap would first have to hold the longest history a model reads).
    pd.read_csv(datasets.bundled_train_csv()).tail(6000).to_csv(train_csv, index=False)
    pd.read_csv(datasets.bundled_test_csv()).head(1000).to_csv(test_csv, index=False)
    return train_csv, test_csv


@pytest.fixture(scope="module")
def kfp_run(
    stack: StackEndpoints, csv_slice: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> LocalRunResult:
    arguments: dict[str, Any] = {
        "train_csv_uri": str(csv_slice[0]),
        "test_csv_uri": str(csv_slice[1]),
        "identifier": f"kfp-it-{TAG}",
        "model_types": MODELS,
        "registered_model_name": f"kfp-it-{TAG}",
        "experiment": f"kfp-it-{TAG}",
        "mlflow_tracking_uri": stack.mlflow_uri,
        "s3_endpoint_url": stack.s3_endpoint,
        **PREP,
        **HYPER,
    }
    root = tmp_path_factory.mktemp("kfp-root")
    return run_pipeline_locally(arguments, root, env=stack.service_env())


@pytest.fixture(scope="module")
def store(s3_store: S3ObjectStore) -> S3ObjectStore:
    return s3_store


def test_kfp_run_promotes_a_champion(kfp_run: LocalRunResult, stack: StackEndpoints) -> None:
    champion = kfp_run.champion
    assert champion is not None, f"nothing promoted: {kfp_run.selection['report']['reason']}"
    assert champion["model_type"] in MODELS
    version = MlflowClient(tracking_uri=stack.mlflow_uri).get_model_version_by_alias(
        f"kfp-it-{TAG}", "champion"
    )
    assert version.run_id == champion["run_id"]
    assert str(version.version) == champion["model_version"]


def test_kfp_run_writes_the_promotion_record(kfp_run: LocalRunResult, store: S3ObjectStore) -> None:
    ref = kfp_run.selection["promotion_record"]
    assert ref["bucket"] == BUCKET_PROMOTION
    current_key = str(Path(ref["key"]).with_name("current.json"))
    current = orjson.loads(store.get_bytes(BUCKET_PROMOTION, current_key))
    assert current["run_id"] == kfp_run.champion["run_id"]  # type: ignore[index]
    assert current["identifier"] == f"kfp-it-{TAG}"
    assert store.exists(ref["bucket"], ref["key"])


def test_kfp_run_logs_batch_inference(kfp_run: LocalRunResult, store: S3ObjectStore) -> None:
    perf = kfp_run.predictions["performance"]
    assert perf is not None
    assert perf["run_id"] == kfp_run.champion["run_id"]  # type: ignore[index]
    assert perf["windows"] > 0
    logs = kfp_run.predictions["inference_logs"]
    body = store.get_bytes(logs["bucket"], logs["object"])
    first = orjson.loads(body.splitlines()[0])
    assert isinstance(first, dict)
    # The artifacts are plain files under the pipeline root, as the CLI reports them.
    assert kfp_run.predictions_path.is_file()
    assert kfp_run.pipeline_root in kfp_run.predictions_path.parents


def glue_train_config() -> TrainConfig:
    """The TrainConfig the pipeline's parameters describe (0 threads = torch default)."""
    values = dict(HYPER)
    values["torch_threads"] = values["torch_threads"] or None
    return TrainConfig(**values)


def _direct_run(stack: StackEndpoints, store: S3ObjectStore, csv_slice: tuple[Path, Path]) -> Any:
    """The same data and config through the stage functions, in this process."""
    ident = f"kfp-direct-{TAG}"
    ctx = StageContext(store=store, tracker=MlflowTracker(stack.mlflow_uri))
    refs = []
    for path in csv_slice:
        ref = ObjectRef(bucket=BUCKET_DATASET, key=f"{ident}/{path.name}")
        store.put_bytes(ref.bucket, ref.key, path.read_bytes())
        refs.append(ref)
    config = glue.preprocess_config(**PREP)
    prep = preprocess.run(
        PreprocessRequest(identifier=ident, train=refs[0], test=refs[1]), config, ctx
    )
    trained = tuple(
        train.run(
            prep.training,
            TrainStageConfig(
                model_type=ModelType(m), train=glue_train_config(), experiment=f"kfp-it-{TAG}"
            ),
            ctx,
        )
        for m in MODELS
    )
    request = EvaluateRequest(identifier=ident, config_hash=prep.config_hash, results=trained)
    stage_config = EvaluateStageConfig(
        expected_model_types=tuple(ModelType(m) for m in MODELS),
        registered_model_name=f"kfp-direct-{TAG}",
    )
    outcome: EvaluateResult = evaluate.run(request, stage_config, ctx)
    assert outcome.selected is not None
    sel = outcome.selected
    perf = infer.run(
        InferRequest(claim=prep.inference),
        InferStageConfig(model_uri=sel.model_uri, model_type=sel.model_type, run_id=sel.run_id),
        ctx,
    )
    return prep, outcome, perf


def test_kfp_and_direct_stage_calls_agree(
    kfp_run: LocalRunResult,
    stack: StackEndpoints,
    store: S3ObjectStore,
    csv_slice: tuple[Path, Path],
) -> None:
    prep, outcome, perf = _direct_run(stack, store, csv_slice)
    kfp_report = kfp_run.selection["report"]
    assert kfp_report["config_hash"] == prep.config_hash
    assert kfp_report["champion"] == outcome.report.champion
    kfp_rows = {r["model_type"]: r for r in kfp_report["rows"]}
    direct_rows = {r.model_type: r for r in outcome.report.rows}
    assert set(kfp_rows) == set(direct_rows)
    for name, row in direct_rows.items():
        for metric in ("rmse", "mae", "mse", "composite_score"):
            np.testing.assert_allclose(
                kfp_rows[name][metric], getattr(row, metric), rtol=RTOL, err_msg=f"{name} {metric}"
            )
    kfp_perf = kfp_run.predictions["performance"]
    assert kfp_perf["windows"] == perf.windows
    np.testing.assert_allclose(kfp_perf["rmse"], perf.rmse, rtol=RTOL)
