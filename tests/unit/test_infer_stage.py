"""Infer stage: forecast windows, JSONL log, metrics against a hand computation."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from _stage_data import CONFIG_HASH, IDENTIFIER, SEASON, Setup, processed_bytes
from flts.domain.config import ModelType
from flts.errors import DataValidationError
from flts.forecasting.models import create_forecaster
from flts.forecasting.spec import TIME_COLUMN
from flts.stages import infer
from flts.stages.contracts import InferRequest, InferStageConfig
from flts.stages.ports import BUCKET_INFERENCE_LOGS, BUCKET_PROCESSED


def _config(model_type: str = "SEASONAL_NAIVE") -> InferStageConfig:
    return InferStageConfig(model_uri="memory://none/model", model_type=model_type, run_id="r1")


def test_infer_writes_jsonl_and_metrics_match_hand_computation() -> None:
    s = Setup(test_rows=60, horizon=2)
    model = create_forecaster(ModelType.SEASONAL_NAIVE, s.spec)
    out = infer.run(InferRequest(claim=s.inference_claim), _config(), s.ctx, model=model)

    n, h = len(s.test), 2
    origins = np.arange(SEASON, n - h + 1)
    assert out.windows == len(origins) + 1  # plus the final, true forecast
    assert out.rows == n
    assert out.output_bucket == BUCKET_INFERENCE_LOGS
    assert out.output_object == f"{IDENTIFIER}/{CONFIG_HASH}/SEASONAL_NAIVE-r1.jsonl"
    y = s.test["down"].to_numpy()
    idx = origins[:, None] + np.arange(h)
    err = y[idx - SEASON] - y[idx]
    assert out.rmse == pytest.approx(float(np.sqrt(np.mean(err**2))))
    assert out.mae == pytest.approx(float(np.mean(np.abs(err))))
    assert out.latency_ms >= 0
    assert out.latency_per_window_ms == pytest.approx(out.latency_ms / out.windows)

    body = s.store.get_bytes(BUCKET_INFERENCE_LOGS, out.output_object)
    lines = [orjson.loads(line) for line in body.splitlines()]
    assert len(lines) == out.windows * h
    for line in lines:
        assert pd.Timestamp(line["target_ts"]) > pd.Timestamp(line["origin_ts"])
        assert line["target_ts"].endswith("Z")
        assert 1 <= line["horizon_step"] <= h
        assert line["model_type"] == "SEASONAL_NAIVE"
        assert line["config_hash"] == CONFIG_HASH
    first = lines[0]
    ds = s.test[TIME_COLUMN]
    assert pd.Timestamp(first["origin_ts"][:-1]) == ds.iloc[SEASON - 1]
    assert pd.Timestamp(first["target_ts"][:-1]) == ds.iloc[SEASON]
    assert first["prediction"] == pytest.approx(y[0])
    assert first["actual"] == pytest.approx(y[SEASON])
    # The final origin forecasts past the data: no actuals, timestamps after the last row.
    tail = lines[-h:]
    assert all(line["actual"] is None for line in tail)
    assert pd.Timestamp(tail[0]["target_ts"][:-1]) == ds.iloc[-1] + pd.Timedelta(seconds=120)


def test_replay_overwrites_the_same_object() -> None:
    s = Setup(test_rows=50)
    model = create_forecaster(ModelType.PERSISTENCE, s.spec)
    first = infer.run(InferRequest(claim=s.inference_claim), _config("PERSISTENCE"), s.ctx, model)
    infer.run(InferRequest(claim=s.inference_claim), _config("PERSISTENCE"), s.ctx, model)
    assert s.store.list_keys(BUCKET_INFERENCE_LOGS) == [first.output_object]


def test_model_is_loaded_from_tracker_when_not_given() -> None:
    s = Setup(test_rows=50)
    run_id = s.tracker.start_run("flts", "x", {})
    logged = s.tracker.log_forecaster(
        run_id, create_forecaster(ModelType.PERSISTENCE, s.spec), "model"
    )
    config = InferStageConfig(model_uri=logged.model_uri, model_type="PERSISTENCE", run_id=run_id)
    out = infer.run(InferRequest(claim=s.inference_claim), config, s.ctx)
    assert out.run_id == run_id
    assert out.rmse is not None


def test_columns_are_reordered_and_missing_features_fail() -> None:
    s = Setup(test_rows=50)
    model = create_forecaster(ModelType.PERSISTENCE, s.spec)
    frame = infer.ordered_features(s.test[["up", TIME_COLUMN, "down"]], s.spec, "x")
    assert list(frame.columns) == [TIME_COLUMN, "down", "up"]
    with pytest.raises(DataValidationError, match="up"):
        infer.ordered_features(s.test[[TIME_COLUMN, "down"]], s.spec, "x")
    assert model.spec.feature_order == ("down", "up")


def test_too_short_data_is_refused() -> None:
    s = Setup(test_rows=50)
    short = s.test.iloc[:5].reset_index(drop=True)
    s.store.put_bytes(BUCKET_PROCESSED, "short.parquet", processed_bytes(short, s.spec, "test"))
    claim = s.inference_claim.model_copy(update={"object": "short.parquet"})
    model = create_forecaster(ModelType.SEASONAL_NAIVE, s.spec)
    with pytest.raises(DataValidationError, match="needs at least"):
        infer.run(InferRequest(claim=claim), _config(), s.ctx, model)
