"""Small synthetic processed datasets and a stage context of in-memory doubles (shared by the
train/evaluate/infer unit tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.adapters.memory import FixedClock, InMemoryObjectStore, InMemoryTracker, RecordingSink
from flts.domain.config import PreprocessConfig
from flts.domain.messages import InferenceDataReady, TrainingDataReady
from flts.forecasting.dataset import DatasetMeta, write_processed
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec, ScalerParams
from flts.stages.ports import BUCKET_PROCESSED, StageContext

CONFIG_HASH = "c0ffee" * 10 + "abcd"
IDENTIFIER = "run-test"
SEASON = 24
STEP = 120


def synthetic_frame(rows: int, start: str = "2025-01-01", seed: int = 0) -> pd.DataFrame:
    """A seasonal target ``down`` (~1e3 units) and a correlated ``up`` column."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    down = 1000.0 + 200.0 * np.sin(2 * np.pi * t / SEASON) + rng.normal(0, 5.0, rows)
    up = 0.1 * down + rng.normal(0, 1.0, rows)
    ds = pd.date_range(start, periods=rows, freq=f"{STEP}s")
    return pd.DataFrame({TIME_COLUMN: ds.astype("datetime64[ns]"), "down": down, "up": up})


def make_spec(train: pd.DataFrame, lookback: int = 8, horizon: int = 2) -> ForecastSpec:
    features = ("down", "up")
    return ForecastSpec(
        target="down",
        feature_order=features,
        lookback=lookback,
        horizon=horizon,
        step_seconds=STEP,
        season_steps=SEASON,
        scaler=ScalerParams.fit(features, train[list(features)].to_numpy()),
        config_hash=CONFIG_HASH,
        raw_columns=features,
        time_features=False,
    )


def processed_bytes(
    frame: pd.DataFrame, spec: ForecastSpec, split: str, config_hash: str = CONFIG_HASH
) -> bytes:
    meta = DatasetMeta(
        config=PreprocessConfig(time_features=False, lookback=spec.lookback, horizon=spec.horizon),
        config_hash=config_hash,
        identifier=IDENTIFIER,
        split=split,  # type: ignore[arg-type]
        spec=spec,
        rows=len(frame),
        start=str(frame[TIME_COLUMN].iloc[0]),
        end=str(frame[TIME_COLUMN].iloc[-1]),
    )
    return write_processed(frame, meta)


class Setup:
    """Train and test frames already in an in-memory store, plus the claims pointing at them."""

    def __init__(self, train_rows: int = 400, test_rows: int = 120, horizon: int = 2) -> None:
        self.train = synthetic_frame(train_rows, seed=1)
        start = self.train[TIME_COLUMN].iloc[-1] + pd.Timedelta(seconds=STEP)
        self.test = synthetic_frame(test_rows, start=str(start), seed=2)
        self.spec = make_spec(self.train, horizon=horizon)
        self.store = InMemoryObjectStore()
        self.tracker = InMemoryTracker()
        self.sink = RecordingSink()
        self.clock = FixedClock()
        self.ctx = StageContext(
            store=self.store, tracker=self.tracker, events=self.sink, clock=self.clock
        )
        train_bytes = processed_bytes(self.train, self.spec, "train")
        test_bytes = processed_bytes(self.test, self.spec, "test")
        self.store.put_bytes(BUCKET_PROCESSED, "train.parquet", train_bytes)
        self.store.put_bytes(BUCKET_PROCESSED, "test.parquet", test_bytes)
        self.claim = TrainingDataReady(
            bucket=BUCKET_PROCESSED,
            object="train.parquet",
            size=len(train_bytes),
            identifier=IDENTIFIER,
            config_hash=CONFIG_HASH,
            test_object="test.parquet",
        )
        self.inference_claim = InferenceDataReady(
            bucket=BUCKET_PROCESSED,
            object="test.parquet",
            object_key="test.parquet",
            size=len(test_bytes),
            identifier=IDENTIFIER,
            config_hash=CONFIG_HASH,
        )
