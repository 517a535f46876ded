"""Processed frames for forecaster tests, built here so the tests do not depend on preprocessing.

``synthetic_problem``: a few hundred hourly rows of a daily-seasonal load in ~1e8 units.
``bundled_problem``: the bundled Barcelona LTE files with interpolated gaps and four time
features, scaled on the training rows only (close to what preprocess produces).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flts.forecasting.spec import TIME_COLUMN, ForecastSpec, ScalerParams

DATA_DIR = Path(__file__).resolve().parents[2] / "src" / "flts" / "datasets" / "barcelona_lte"


@dataclass(frozen=True)
class Problem:
    spec: ForecastSpec
    train: pd.DataFrame
    test: pd.DataFrame


def _spec(
    train: pd.DataFrame, lookback: int, horizon: int, step_seconds: int, season_steps: int
) -> ForecastSpec:
    features = tuple(c for c in train.columns if c != TIME_COLUMN)
    scaler = ScalerParams.fit(features, train.loc[:, list(features)].to_numpy(np.float64))
    return ForecastSpec(
        target="down",
        feature_order=features,
        lookback=lookback,
        horizon=horizon,
        step_seconds=step_seconds,
        season_steps=season_steps,
        scaler=scaler,
        config_hash="test",
    )


def synthetic_frame(n_rows: int = 480, seed: int = 0) -> pd.DataFrame:
    """Hourly rows: ``down`` follows a daily cycle around 1e8, ``up`` and ``users`` track it."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    daily = np.sin(2 * np.pi * t / 24.0)
    down = 1e8 + 6e7 * daily + 5e6 * rng.standard_normal(n_rows)
    return pd.DataFrame(
        {
            TIME_COLUMN: pd.date_range("2024-01-01", periods=n_rows, freq="h"),
            "down": down,
            "up": 0.1 * down + 1e6 * rng.standard_normal(n_rows),
            "users": 500 + 300 * daily + 20 * rng.standard_normal(n_rows),
        }
    )


def synthetic_problem(
    n_rows: int = 480, n_train: int = 360, lookback: int = 12, horizon: int = 6
) -> Problem:
    frame = synthetic_frame(n_rows)
    train = frame.iloc[:n_train].reset_index(drop=True)
    spec = _spec(train, lookback, horizon, step_seconds=3600, season_steps=24)
    return Problem(spec, train, frame.iloc[n_train:].reset_index(drop=True))


def _read_bundled(name: str) -> pd.DataFrame:
    raw = pd.read_csv(DATA_DIR / name)
    frame = raw.rename(columns={"time": TIME_COLUMN})
    frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN])
    numeric = [c for c in frame.columns if c != TIME_COLUMN]
    frame[numeric] = frame[numeric].astype(np.float64).interpolate().bfill().ffill()
    ds = frame[TIME_COLUMN]
    hour = (ds.dt.hour * 3600 + ds.dt.minute * 60 + ds.dt.second) / 86400.0
    week = (ds.dt.dayofweek + hour) / 7.0
    frame["tod_sin"] = np.sin(2 * np.pi * hour)
    frame["tod_cos"] = np.cos(2 * np.pi * hour)
    frame["dow_sin"] = np.sin(2 * np.pi * week)
    frame["dow_cos"] = np.cos(2 * np.pi * week)
    return frame


def bundled_problem(lookback: int = 30, horizon: int = 1, train_rows: int | None = None) -> Problem:
    """The bundled train/test files (train optionally cut to its first ``train_rows`` rows)."""
    train = _read_bundled("PobleSec.csv")
    if train_rows is not None:
        train = train.iloc[:train_rows].reset_index(drop=True)
    test = _read_bundled("PobleSec_test.csv")
    spec = _spec(train, lookback, horizon, step_seconds=120, season_steps=720)
    return Problem(spec, train, test)
