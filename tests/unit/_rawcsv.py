"""Small raw CSV files for preprocessing tests (bytes, like objects in the store)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.domain.config import PreprocessConfig

START = pd.Timestamp("2018-02-05 00:00:00")

#: A config sized for tiny files: 60 s step, 10-step season, short windows.
SMALL = PreprocessConfig(lookback=5, horizon=2, season_steps=10)


def raw_frame(
    rows: int, *, start: pd.Timestamp = START, step_s: int = 60, seed: int = 0
) -> pd.DataFrame:
    """``time``, ``down`` (~1e8 units, daily-ish cycle) and ``up`` at a regular step."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    down = 1e8 + 5e7 * np.sin(2 * np.pi * t / 10) + 1e6 * rng.standard_normal(rows)
    return pd.DataFrame(
        {
            "time": [str(start + pd.Timedelta(seconds=step_s * i)) for i in t],
            "down": down,
            "up": down / 10 + rng.standard_normal(rows),
        }
    )


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def csv_pair(train_rows: int = 140, test_rows: int = 30, step_s: int = 60) -> tuple[bytes, bytes]:
    """A training file and the test file that follows it directly in time."""
    train = raw_frame(train_rows, step_s=step_s)
    test_start = START + pd.Timedelta(seconds=step_s * train_rows)
    test = raw_frame(test_rows, start=test_start, step_s=step_s, seed=1)
    return to_csv(train), to_csv(test)
