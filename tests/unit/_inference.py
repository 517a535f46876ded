"""Shared helpers of the inference API tests: a tiny fitted GRU, request bodies, a client."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pandas as pd
from fastapi import FastAPI

from flts.domain.config import TrainConfig
from flts.forecasting.base import Forecaster
from flts.forecasting.features import build_features, feature_order_for, features_for_spec
from flts.forecasting.models import create_forecaster
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec, ScalerParams
from flts.forecasting.time_step import TimeStep
from flts.serving.model_state import LoadedModel

STEP = 120
RAW = ("down", "up")
LOOKBACK, HORIZON = 6, 3


def raw_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    down = 1e8 + 4e7 * np.sin(2 * np.pi * t / 720) + 2e6 * rng.standard_normal(rows)
    ds = pd.date_range("2018-02-05 22:00", periods=rows, freq=f"{STEP}s")
    return pd.DataFrame({TIME_COLUMN: ds, "down": down, "up": 0.1 * down + 1e5 * t % 7})


def spec_for(processed: pd.DataFrame, lags: tuple[int, ...] = ()) -> ForecastSpec:
    order = feature_order_for(target="down", raw_columns=RAW, time_features=True, lags=lags)
    return ForecastSpec(
        target="down",
        feature_order=order,
        lookback=LOOKBACK,
        horizon=HORIZON,
        step_seconds=STEP,
        season_steps=720,
        scaler=ScalerParams.fit(order, processed[list(order)].to_numpy()),
        config_hash="hash-test",
        raw_columns=RAW,
        time_features=True,
        lags=lags,
    )


def fit(model_type: str, lags: tuple[int, ...] = ()) -> Forecaster:
    raw = raw_frame(200)
    processed = build_features(
        raw, target="down", raw_columns=RAW, time_features=True, lags=lags, step=TimeStep(STEP)
    )
    spec = spec_for(processed, lags)
    model = create_forecaster(model_type, spec, TrainConfig(epochs=1, hidden_size=8, num_layers=1))
    model.fit(processed)
    return model


def as_loaded(model: Forecaster, run_id: str = "run-1") -> LoadedModel:
    return LoadedModel.of(
        model,
        model_uri=f"runs:/{run_id}/model",
        run_id=run_id,
        identifier="id-1",
        source="promotion",
    )


class AppClient:
    """Synchronous calls into the app over httpx's ASGI transport, on one private event loop
    (so the app's micro-batcher lives on a single loop, as under uvicorn)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://api")

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.run(self._client.aclose())
        self._runner.run(self.app.state.service.batcher.aclose())
        self._runner.close()

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._runner.run(self._client.get(url, **kw))

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self._runner.run(self._client.post(url, **kw))


def window_frame(start: int = 50, rows: int = 10) -> pd.DataFrame:
    return raw_frame(200, seed=1).iloc[start : start + rows].reset_index(drop=True)


def body_rows(frame: pd.DataFrame, time_key: str = "ds") -> list[dict[str, Any]]:
    return [
        {time_key: str(r[TIME_COLUMN]), **{c: float(r[c]) for c in RAW}}
        for _, r in frame.iterrows()
    ]


def columnar(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    data = {"time": [str(t) for t in frame[TIME_COLUMN]], **{c: frame[c].tolist() for c in RAW}}
    return {"data": data, "index_col": "time", **extra}


def reference(model: Forecaster, frame: pd.DataFrame) -> np.ndarray:
    processed = features_for_spec(frame, model.spec)
    return model.predict(processed, np.array([len(processed)]))[0]
