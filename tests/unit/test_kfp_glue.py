"""The KFP glue on in-memory ports: the four task functions chained by their artifacts, exactly
as kfp wires them, but in one process and without services."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _rawcsv import csv_pair

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker
from flts.domain.messages import (
    InferenceDataReady,
    ModelSelected,
    ModelTrained,
    ModelTrainingFailed,
    PerformanceEval,
    TrainingDataReady,
)
from flts.errors import ConfigError, DataValidationError
from flts.kfp import glue
from flts.stages.ports import BUCKET_DATASET, BUCKET_INFERENCE_LOGS, StageContext

NO_ENDPOINTS = {"s3_endpoint_url": "", "mlflow_tracking_uri": ""}


@dataclass
class FakeArtifact:
    """What kfp hands a task: a path to write and a metadata dict."""

    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        data = json.loads(Path(self.path).read_text())
        assert isinstance(data, dict)
        return data


@pytest.fixture
def ctx() -> StageContext:
    return StageContext(store=InMemoryObjectStore(), tracker=InMemoryTracker())


def _preprocess(ctx: StageContext, tmp_path: Path) -> tuple[FakeArtifact, FakeArtifact]:
    train_csv, test_csv = csv_pair(train_rows=200, test_rows=40)
    (tmp_path / "train.csv").write_bytes(train_csv)
    (tmp_path / "test.csv").write_bytes(test_csv)
    training, inference = FakeArtifact(str(tmp_path / "td")), FakeArtifact(str(tmp_path / "id"))
    glue.preprocess_task(
        train_csv_uri=str(tmp_path / "train.csv"),
        test_csv_uri=str(tmp_path / "test.csv"),
        identifier="glue-t",
        lookback=5,
        horizon=2,
        target="down",
        time_col="time",
        season_steps=10,
        training_data=training,
        inference_data=inference,
        ctx=ctx,
        **NO_ENDPOINTS,
    )
    return training, inference


def _train(ctx: StageContext, training: FakeArtifact, model_type: str, out: Path) -> FakeArtifact:
    model = FakeArtifact(str(out))
    glue.train_task(
        training_data=training,
        model_type=model_type,
        epochs=1,
        hidden_size=8,
        num_layers=1,
        batch_size=32,
        learning_rate=0.01,
        patience=1,
        seed=7,
        torch_threads=1,
        experiment="glue",
        model=model,
        ctx=ctx,
        **NO_ENDPOINTS,
    )
    return model


def test_tasks_chain_through_artifacts(ctx: StageContext, tmp_path: Path) -> None:
    training, inference = _preprocess(ctx, tmp_path)
    claim = TrainingDataReady.model_validate(training.json())
    assert ctx.store.exists(claim.bucket, claim.object)
    assert training.metadata["object"] == claim.object
    assert training.metadata["config_hash"] == claim.config_hash
    digest = hashlib.sha256((tmp_path / "train.csv").read_bytes()).hexdigest()[:16]
    assert ctx.store.exists(BUCKET_DATASET, f"glue-t/{digest}/train.csv")
    assert InferenceDataReady.model_validate(inference.json()).config_hash == claim.config_hash

    models = [_train(ctx, training, t, tmp_path / f"m-{t}") for t in ("GRU", "PROPHET")]
    trained = [ModelTrained.model_validate(m.json()) for m in models]
    assert [t.model_type for t in trained] == ["GRU", "PROPHET"]
    assert models[0].metadata["run_id"] == trained[0].run_id
    assert models[1].metadata["test_rmse"] == trained[1].test_rmse

    selection = FakeArtifact(str(tmp_path / "sel"))
    glue.evaluate_task(
        models=models,
        model_types=["GRU", "PROPHET"],
        registered_model_name="glue-model",
        alias="champion",
        selection=selection,
        ctx=ctx,
        **NO_ENDPOINTS,
    )
    chosen = selection.json()
    assert {r["model_type"] for r in chosen["report"]["rows"]} >= {"GRU", "PROPHET", "PERSISTENCE"}
    assert selection.metadata["champion"] == (chosen["report"]["champion"] or "")

    # Tiny synthetic data rarely beats persistence, so infer runs on a selection naming the
    # GRU as if it had been promoted: the glue must hand its URI to the infer stage.
    gru = trained[0]
    promoted = FakeArtifact(str(tmp_path / "promoted"))
    glue.write_artifact(promoted, {"selected": _selected(gru).to_wire()})
    predictions = FakeArtifact(str(tmp_path / "pred"))
    glue.infer_task(
        inference_data=inference,
        selection=promoted,
        predictions=predictions,
        ctx=ctx,
        **NO_ENDPOINTS,
    )
    out = predictions.json()
    assert out["skipped"] is False
    perf = PerformanceEval.model_validate(out["performance"])
    assert (perf.model_type, perf.run_id, perf.config_hash) == (
        "GRU",
        gru.run_id,
        claim.config_hash,
    )
    assert perf.windows > 0
    assert out["inference_logs"] == {"bucket": perf.output_bucket, "object": perf.output_object}
    assert perf.output_bucket == BUCKET_INFERENCE_LOGS
    assert ctx.store.exists(perf.output_bucket, perf.output_object)
    assert predictions.metadata["run_id"] == gru.run_id


def _selected(trained: ModelTrained) -> ModelSelected:
    assert trained.model_uri is not None
    return ModelSelected(
        model_uri=trained.model_uri,
        model_type=trained.model_type,
        run_id=trained.run_id,
        config_hash=trained.config_hash,
        composite_score=0.5,
        test_rmse=trained.test_rmse,
        test_mae=trained.test_mae,
        test_mse=trained.test_mse,
        promotion_time="2026-01-01T00:00:00Z",
        identifier=trained.identifier,
    )


def test_a_model_that_cannot_be_trained_leaves_the_others_ranked(
    ctx: StageContext, tmp_path: Path
) -> None:
    """As under Kafka: the train task writes a ModelTrainingFailed instead of failing the run,
    and evaluate ranks the other models, keeping why one is missing; when none was trained,
    evaluate fails naming each reason."""
    training, _ = _preprocess(ctx, tmp_path)
    claim = TrainingDataReady.model_validate(training.json())
    ctx.store.put_bytes(claim.bucket, "glue-t/corrupt.parquet", b"not parquet")
    corrupt = FakeArtifact(str(tmp_path / "corrupt"))
    glue.write_artifact(
        corrupt, claim.model_copy(update={"object": "glue-t/corrupt.parquet"}).to_wire()
    )
    gru = _train(ctx, corrupt, "GRU", tmp_path / "m-gru")
    failed = ModelTrainingFailed.model_validate(gru.json())
    assert (failed.model_type, failed.config_hash) == ("GRU", claim.config_hash)
    assert failed.error_type == "DataValidationError"
    assert gru.metadata["status"] == "FAILED"
    prophet = _train(ctx, training, "PROPHET", tmp_path / "m-prophet")

    selection = FakeArtifact(str(tmp_path / "sel"))
    evaluate = {
        "model_types": ["GRU", "PROPHET"],
        "registered_model_name": "glue-model",
        "alias": "champion",
        "selection": selection,
        "ctx": ctx,
        **NO_ENDPOINTS,
    }
    glue.evaluate_task(models=[gru, prophet], **evaluate)
    rows = {r["model_type"] for r in selection.json()["report"]["rows"]}
    assert "PROPHET" in rows
    assert "GRU" not in rows
    record = json.loads(
        ctx.store.get_bytes("model-promotion", f"glue-t/{claim.config_hash}/current.json")
    )
    assert record["waived"]["GRU"].startswith("training failed (DataValidationError: ")
    with pytest.raises(DataValidationError, match=r"no trained models \(GRU: training failed"):
        glue.evaluate_task(models=[gru], **evaluate)


def test_infer_is_skipped_without_a_champion(ctx: StageContext, tmp_path: Path) -> None:
    inference = FakeArtifact(str(tmp_path / "id"))
    glue.write_artifact(
        inference,
        InferenceDataReady(
            bucket="processed-data", object="x/test.parquet", object_key="x", size=1, identifier="x"
        ).to_wire(),
    )
    selection = FakeArtifact(str(tmp_path / "sel"))
    glue.write_artifact(selection, {"selected": None, "report": {}, "promotion_record": None})
    predictions = FakeArtifact(str(tmp_path / "pred"))
    glue.infer_task(
        inference_data=inference,
        selection=selection,
        predictions=predictions,
        ctx=ctx,
        **NO_ENDPOINTS,
    )
    assert predictions.json() == {"performance": None, "skipped": True}
    assert predictions.metadata == {"skipped": True}


def test_resolve_csv(ctx: StageContext, tmp_path: Path) -> None:
    ref = glue.resolve_csv(ctx.store, "s3://raw/a/b.csv", "id", "unused.csv")
    assert (ref.bucket, ref.key) == ("raw", "a/b.csv")
    bundled = glue.resolve_csv(ctx.store, "", "id", "PobleSec_test.csv")
    assert bundled.bucket == BUCKET_DATASET
    assert bundled.key.startswith("id/")
    assert bundled.key.endswith("/PobleSec_test.csv")
    assert ctx.store.get_bytes(bundled.bucket, bundled.key).startswith(b"time")
    # Same file name, different content (train/a.csv, test/a.csv): neither overwrites the other.
    for folder, body in (("train", b"time,down\n1,2\n"), ("test", b"time,down\n3,4\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.csv").write_bytes(body)
    train = glue.resolve_csv(ctx.store, str(tmp_path / "train" / "a.csv"), "id", "x.csv")
    test = glue.resolve_csv(ctx.store, str(tmp_path / "test" / "a.csv"), "id", "x.csv")
    assert train.key != test.key
    assert ctx.store.get_bytes(train.bucket, train.key) == b"time,down\n1,2\n"
    with pytest.raises(ConfigError, match="s3://bucket/key"):
        glue.resolve_csv(ctx.store, "s3://only-bucket", "id", "x.csv")
    with pytest.raises(DataValidationError, match="does not exist"):
        glue.resolve_csv(ctx.store, str(tmp_path / "missing.csv"), "id", "x.csv")


def test_bad_hyper_parameters_name_the_config(ctx: StageContext, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TrainConfig"):
        glue.train_task(
            training_data=FakeArtifact(str(tmp_path / "none")),
            model_type="GRU",
            epochs=0,
            hidden_size=8,
            num_layers=1,
            batch_size=32,
            learning_rate=0.01,
            patience=1,
            seed=7,
            torch_threads=0,
            experiment="glue",
            model=FakeArtifact(str(tmp_path / "m")),
            ctx=ctx,
            **NO_ENDPOINTS,
        )
