"""A real inference server (uvicorn, its own process) around a tiny GRU, for contract tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from flts.domain.config import TrainConfig
from flts.forecasting.features import build_features, feature_order_for
from flts.forecasting.intervals import calibrate_forecaster
from flts.forecasting.models import create_forecaster
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec, ScalerParams
from flts.forecasting.time_step import TimeStep
from flts.infra.procs import free_port

STEP = 120
RAW = ("down", "up")


def _tiny_gru(directory: Path) -> None:
    rows = 300
    t = np.arange(rows)
    down = 1e8 + 4e7 * np.sin(2 * np.pi * t / 720)
    raw = pd.DataFrame(
        {
            TIME_COLUMN: pd.date_range("2018-02-05", periods=rows, freq=f"{STEP}s"),
            "down": down,
            "up": 0.1 * down,
        }
    )
    processed = build_features(
        raw, target="down", raw_columns=RAW, time_features=True, lags=(), step=TimeStep(STEP)
    )
    order = feature_order_for(target="down", raw_columns=RAW, time_features=True, lags=())
    spec = ForecastSpec(
        target="down",
        feature_order=order,
        lookback=12,
        horizon=4,
        step_seconds=STEP,
        season_steps=720,
        scaler=ScalerParams.fit(order, processed[list(order)].to_numpy()),
        config_hash="contract",
        raw_columns=RAW,
        time_features=True,
        lags=(),
    )
    model = create_forecaster("GRU", spec, TrainConfig(epochs=1, hidden_size=8, num_layers=1))
    model.fit(processed)
    # Calibrated, so the contract tests also see /predict answers with prediction intervals.
    model.intervals = calibrate_forecaster(model, processed)
    model.save(directory)


@pytest.fixture(scope="session")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of ``python -m flts.bench.api_server`` serving the tiny GRU."""
    model_dir = tmp_path_factory.mktemp("model")
    _tiny_gru(model_dir)
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")
    cmd = [sys.executable, "-m", "flts.bench.api_server", "--model-dir", str(model_dir)]
    proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).json()["model_ready"]:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"inference server did not start; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
