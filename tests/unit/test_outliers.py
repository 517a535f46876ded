"""Gross outliers (glitch and sentinel readings) are treated as missing values: interpolated,
never learned from or scored, and named in the notes; ordinary spikes are kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.forecasting.models import create_forecaster
from flts.forecasting.outliers import blank_outliers, fit_fences
from flts.forecasting.prepare import prepare_datasets
from flts.forecasting.spec import TIME_COLUMN
from flts.stages import scoring

DAY = 96
GLITCH = 1.0e9


def _frames(
    glitch_rows: tuple[int, ...] = (500,), test_glitch: int | None = None
) -> tuple[bytes, bytes]:
    rng = np.random.default_rng(0)
    n_train, n_test = 21 * DAY, 7 * DAY
    times = pd.date_range("2024-01-01", periods=n_train + n_test, freq="15min")
    load = 2 + np.sin(np.arange(len(times)) * 2 * np.pi / DAY) + rng.normal(0, 0.1, len(times))
    for row in glitch_rows:
        load[row] = GLITCH
    if test_glitch is not None:
        load[n_train + test_glitch] = -999999.0
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M:%S"), "load": load.round(4)})
    train, test = frame.iloc[:n_train], frame.iloc[n_train:]
    return train.to_csv(index=False).encode(), test.to_csv(index=False).encode()


def test_a_glitch_is_removed_and_named_but_a_heat_pump_spike_is_kept() -> None:
    times = pd.date_range("2024-01-01", periods=1000, freq="15min").astype(str)
    pump = np.where(np.arange(1000) % 40 == 0, 0.8, 0.0)  # off 97.5 % of the time
    train = pd.DataFrame({TIME_COLUMN: times, "pump": pump, "load": 2.0 + np.arange(1000) % 7})
    train.loc[10, "load"] = GLITCH
    fences = fit_fences(train, 10.0)
    cleaned, notes = blank_outliers(train, fences, "train.csv", 10.0)
    assert cleaned["pump"].equals(train["pump"])  # every spike kept: the fence skips zeros
    assert np.isnan(cleaned.loc[10, "load"])
    assert int(cleaned["load"].isna().sum()) == 1
    assert len(notes) == 1
    assert "1 value(s) of 'load'" in notes[0]
    assert f"1e+09 at {times[10]}" in notes[0]
    assert fit_fences(train, None) == {}


def test_the_glitch_is_neither_learned_from_nor_scored() -> None:
    train_csv, test_csv = _frames(test_glitch=100)
    data = prepare_datasets(train_csv, test_csv, PreprocessConfig(target="load"), config_hash="h")
    train_times = pd.to_datetime(data.train[TIME_COLUMN])
    flagged = train_times[data.train_unobserved]
    assert list(flagged) == [pd.Timestamp("2024-01-01") + 500 * pd.Timedelta("15min")]
    assert data.train["load"].max() < 10  # interpolated, not 1e9
    assert data.test_unobserved is not None
    assert int(data.test_unobserved[data.test_context_rows :].sum()) == 1
    notes = " ".join(data.train_notes + data.test_notes)
    assert "value(s) of 'load' treated as missing" in notes
    # The fences travel with every model (the live loop refuses the same readings).
    median, reach = data.spec.outlier_fences["load"]
    assert median == pytest.approx(2.0, abs=0.1)
    assert 20 < reach < 40  # 10x the 99th percentile of |load| (about 3)
    assert "-999999 at" in notes


@pytest.mark.parametrize(("factor", "sane"), [(10.0, True), (None, False)])
def test_one_glitch_no_longer_ruins_a_recurrent_model(factor: float | None, sane: bool) -> None:
    """GRU on three weeks with one 1e9 reading: with the fence it forecasts as on clean data;
    without it (outlier_factor None) its scaler stretches to the glitch and it is lost."""
    config = PreprocessConfig(target="load", outlier_factor=factor)
    data = prepare_datasets(*_frames(), config, config_hash="h")
    model = create_forecaster(ModelType.GRU, data.spec, TrainConfig(epochs=2, seed=1))
    model.fit(data.train, unobserved=data.train_unobserved)
    scores = scoring.score_on_test(
        model, data.test, data.spec, data.test_context_rows, data.test_unobserved
    )
    ratio = scores.model.mae / scores.baselines[scoring.PERSISTENCE].mae
    assert (ratio < 1.5) is sane, ratio
