"""The preprocess stage on the bundled data and on small files, with in-memory ports."""

from __future__ import annotations

import numpy as np
import pytest
from _rawcsv import SMALL, csv_pair, raw_frame, to_csv

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker, RecordingSink
from flts.datasets import bundled_test_csv, bundled_train_csv
from flts.domain.config import PreprocessConfig
from flts.domain.messages import InferenceDataReady, ProgressEvent, TrainingDataReady, decode
from flts.errors import DataValidationError, ObjectNotFoundError
from flts.forecasting.dataset import read_processed
from flts.forecasting.spec import ScalerParams
from flts.forecasting.windows import evaluation_origins
from flts.stages import preprocess
from flts.stages.contracts import ObjectRef, PreprocessRequest
from flts.stages.ports import BUCKET_PROCESSED, StageContext


def setup(train: bytes, test: bytes) -> tuple[PreprocessRequest, StageContext]:
    store = InMemoryObjectStore()
    store.ensure_bucket("dataset")
    store.put_bytes("dataset", "run-1/train.csv", train)
    store.put_bytes("dataset", "run-1/test.csv", test)
    request = PreprocessRequest(
        identifier="run-1",
        train=ObjectRef(bucket="dataset", key="run-1/train.csv"),
        test=ObjectRef(bucket="dataset", key="run-1/test.csv"),
    )
    ctx = StageContext(store=store, tracker=InMemoryTracker(), events=RecordingSink())
    return request, ctx


@pytest.fixture(scope="module")
def bundled() -> tuple[PreprocessRequest, StageContext]:
    return setup(bundled_train_csv().read_bytes(), bundled_test_csv().read_bytes())


def test_bundled_data_twice_same_hash_same_bytes_then_reused(
    bundled: tuple[PreprocessRequest, StageContext],
) -> None:
    request, ctx = bundled
    first = preprocess.run(request, PreprocessConfig(), ctx)
    stored = {
        key: ctx.store.get_bytes(BUCKET_PROCESSED, key)
        for key in ctx.store.list_keys(BUCKET_PROCESSED)
    }
    second = preprocess.run(request, PreprocessConfig(), ctx)
    assert not first.reused
    assert second.reused
    assert second.config_hash == first.config_hash
    assert second.training == first.training
    assert second.inference == first.inference
    assert {k: ctx.store.get_bytes(BUCKET_PROCESSED, k) for k in stored} == stored
    # A fresh store (nothing to reuse) reproduces the very same bytes.
    fresh_request, fresh_ctx = setup(
        bundled_train_csv().read_bytes(), bundled_test_csv().read_bytes()
    )
    third = preprocess.run(fresh_request, PreprocessConfig(), fresh_ctx)
    assert not third.reused
    assert third.config_hash == first.config_hash
    for key, data in stored.items():
        assert fresh_ctx.store.get_bytes(BUCKET_PROCESSED, key) == data


def test_bundled_claims_match_the_spec_messages(
    bundled: tuple[PreprocessRequest, StageContext],
) -> None:
    request, ctx = bundled
    result = preprocess.run(request, PreprocessConfig(), ctx)
    prefix = f"run-1/{result.config_hash}"
    train_wire = result.training.to_wire()
    assert train_wire == {
        "bucket": "processed-data",
        "object": f"{prefix}/processed_data.parquet",
        "size": len(ctx.store.get_bytes(BUCKET_PROCESSED, f"{prefix}/processed_data.parquet")),
        "v": 1,
        "identifier": "run-1",
        "config_hash": result.config_hash,
        "test_object": f"{prefix}/test_processed_data.parquet",
    }
    infer_wire = result.inference.to_wire()
    assert (
        infer_wire["object"] == infer_wire["object_key"] == f"{prefix}/test_processed_data.parquet"
    )
    assert infer_wire["operation"] == "post: test data"
    assert infer_wire["v"] == 1
    assert decode(TrainingDataReady, result.training.to_json_bytes()) == result.training
    assert decode(InferenceDataReady, result.inference.to_json_bytes()) == result.inference


def test_bundled_default_config_shapes_and_honest_split(
    bundled: tuple[PreprocessRequest, StageContext],
) -> None:
    request, ctx = bundled
    result = preprocess.run(request, PreprocessConfig(), ctx)
    train, train_meta = read_processed(
        ctx.store.get_bytes(BUCKET_PROCESSED, result.training.object)
    )
    test, test_meta = read_processed(ctx.store.get_bytes(BUCKET_PROCESSED, result.inference.object))
    spec = train_meta.spec
    assert spec == test_meta.spec
    context = test_meta.context_rows
    # Default lags reach one day back, so the first day of training only feeds lags.
    assert (result.train_rows, result.test_rows) == (len(train), len(test) - context)
    assert (len(train), len(test) - context, context) == (15927 - 720, 3982, 5040)
    assert spec.step_seconds == 120
    assert spec.season_steps == 720
    assert spec.seasonal_periods == (720, 5040)  # 22 days of training: daily and weekly
    assert spec.lags == (718, 719, 720)  # same time yesterday and its neighbours
    assert spec.feature_order[0] == "down"
    assert spec.feature_order[-7:] == (
        "day_sin",
        "day_cos",
        "week_sin",
        "week_cos",
        "down_lag718",
        "down_lag719",
        "down_lag720",
    )
    # Every test timestamp is an origin: the first one is the first test row.
    assert evaluation_origins(len(test), spec, context)[0] == context
    assert test["ds"].iloc[context:].min() > train["ds"].max()
    assert test["ds"].iloc[context - 1] == train["ds"].max()
    assert not train.isna().any().any()
    assert not test.isna().any().any()
    assert "run-1/train.csv: 22 missing values filled (mcs_up: 11, mcs_up_var: 11)" in result.notes
    # The scaler is the training fit, not one that saw the test rows.
    columns = spec.feature_order
    assert spec.scaler == ScalerParams.fit(columns, train[list(columns)].to_numpy(np.float64))
    both = np.vstack([train[list(columns)].to_numpy(), test[list(columns)].to_numpy()])
    assert spec.scaler != ScalerParams.fit(columns, both)
    assert train_meta.config_hash == spec.config_hash == result.config_hash


def test_progress_events_at_start_and_end() -> None:
    request, ctx = setup(*csv_pair())
    result = preprocess.run(request, SMALL, ctx)
    assert isinstance(ctx.events, RecordingSink)
    events = ctx.events.of_type(ProgressEvent)
    assert [e.stage for e in events] == ["preprocess", "preprocess"]
    assert isinstance(events[-1], ProgressEvent)
    assert events[-1].config_hash == result.config_hash
    assert events[-1].message == "preprocess done: 140 training rows, 30 test rows"


def test_another_config_gets_another_hash_and_keys() -> None:
    request, ctx = setup(*csv_pair())
    a = preprocess.run(request, SMALL, ctx)
    b = preprocess.run(request, SMALL.model_copy(update={"lags": (3,)}), ctx)
    assert a.config_hash != b.config_hash
    assert not b.reused
    assert len(ctx.store.list_keys(BUCKET_PROCESSED)) == 4


def test_bad_csv_fails_and_writes_nothing() -> None:
    bad = raw_frame(140)
    bad.loc[9, "time"] = bad.loc[8, "time"]
    request, ctx = setup(to_csv(bad), csv_pair()[1])
    with pytest.raises(DataValidationError, match=r"run-1/train\.csv: duplicated timestamp"):
        preprocess.run(request, SMALL, ctx)
    assert ctx.store.list_keys(BUCKET_PROCESSED) == []


def test_missing_raw_object() -> None:
    request, ctx = setup(*csv_pair())
    missing = request.model_copy(update={"test": ObjectRef(bucket="dataset", key="nope.csv")})
    with pytest.raises(ObjectNotFoundError):
        preprocess.run(missing, SMALL, ctx)
