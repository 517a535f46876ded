"""The accuracy panel's linear-AR reference: exact on an exactly seasonal series, causal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.bench.accuracy_bench import reference_forecast

DAY = 24


def _frames(values: np.ndarray, n_train: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame({"y": values, "x": np.cos(np.arange(len(values)))})
    return frame.iloc[:n_train], frame.iloc[n_train:].reset_index(drop=True)


def test_reference_is_exact_on_a_purely_daily_series() -> None:
    values = 100 + 10 * np.sin(2 * np.pi * np.arange(24 * 20) / DAY)
    train, test = _frames(values, 24 * 15)
    for horizon in (1, 6):
        forecast, actual = reference_forecast(train, test, "y", ("x",), DAY, horizon, 50)
        assert forecast.shape == actual.shape == (50, horizon)
        np.testing.assert_allclose(forecast, actual, atol=1e-6)


def test_reference_reads_nothing_at_or_after_its_origins() -> None:
    rng = np.random.default_rng(0)
    values = 100 + 10 * np.sin(2 * np.pi * np.arange(24 * 20) / DAY) + rng.normal(0, 1, 480)
    train, test = _frames(values, 24 * 15)
    forecast, _ = reference_forecast(train, test, "y", ("x",), DAY, 3, 1)
    # One window: its origin is row len(test) - 3 of the test frame; change what follows it.
    changed = test.copy()
    changed.loc[len(test) - 3 :, ["y", "x"]] = 1e9
    again, _ = reference_forecast(train, changed, "y", ("x",), DAY, 3, 1)
    np.testing.assert_array_equal(again, forecast)
