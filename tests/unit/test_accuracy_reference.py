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


def test_each_panel_case_records_why_a_gain_is_small() -> None:
    """The figures `flts run` explains a small gain with, per series: the training changes'
    autocorrelation and the champion's costliest test day (here a day of doubled load)."""
    from flts.bench.accuracy_bench import _run_series
    from flts.bench.panel_data import Series
    from flts.domain.config import ModelType, TrainConfig

    rng = np.random.default_rng(1)
    stamps = pd.date_range("2024-01-01", periods=24 * 26, freq="h")
    load = (
        50 + 20 * np.sin(2 * np.pi * np.arange(len(stamps)) / DAY) + rng.normal(0, 2, len(stamps))
    )
    load[24 * 23 : 24 * 24] *= 2.0  # the third test day
    frame = pd.DataFrame({"time": stamps.strftime("%Y-%m-%d %H:%M:%S"), "load": load})
    cut = 24 * 21

    def load_csvs() -> tuple[bytes, bytes]:
        return (
            frame.iloc[:cut].to_csv(index=False).encode(),
            frame.iloc[cut:].to_csv(index=False).encode(),
        )

    series = Series("synthetic", "load", 6, load_csvs, "hourly sine with one doubled day")
    result = _run_series(series, 1, TrainConfig(epochs=1), (ModelType.LINEAR,))
    assert set(result["change_autocorrelation"]) == {"1", "24", "168"}  # day, week
    assert result["champion_costliest_day"].startswith("2024-01-24 Wed ")
    assert result["champion_mae_vs_persistence_without_it"] > 0
    assert set(result["models"]["LINEAR"]["days"]) == {"median_ratio", "costliest"}
