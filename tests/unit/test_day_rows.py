"""A day per row and a column per time of day (meter and grid-operator exports) reads as the same
series as a row per timestamp; anything else is left as it was."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.data import read_csv_with_notes
from flts.forecasting.day_rows import day_rows_layout
from flts.forecasting.prepare import prepare_datasets

DAY = pd.Timedelta(days=1)


def long_series(days: int, step: pd.Timedelta, start: str = "2021-02-01") -> pd.Series:
    """A daily-cycle load with noise, indexed by the start of each period."""
    index = pd.date_range(start, periods=int(days * (DAY / step)), freq=step)
    hours = index.hour + index.minute / 60
    rng = np.random.default_rng(0)
    values = 100 + 30 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 3, len(index))
    return pd.Series(values.round(2), index=index)


def day_per_row(series: pd.Series, names: list[str], date_format: str) -> pd.DataFrame:
    """``series`` laid out a day per row: ``Date`` then one column per name, in day order."""
    per_day = len(names)
    values = series.to_numpy().reshape(-1, per_day)
    days = series.index[::per_day].strftime(date_format)
    return pd.DataFrame(values, columns=names).assign(Date=days)[["Date", *names]]


def read(
    frame: pd.DataFrame, target: str = "load", **csv: str
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, **csv)  # type: ignore[call-overload]
    config = PreprocessConfig(time_col="Date", target=target)
    return read_csv_with_notes(buffer.getvalue().encode(), source="meter.csv", config=config)


def hours_ending() -> list[str]:
    return [f"HE{k}" for k in range(1, 25)]


def quarter_hours_ending() -> list[str]:
    names = [f"{(15 * k) // 60:02d}:{(15 * k) % 60:02d}" for k in range(1, 96)]
    return [*names, "24:00"]


def test_hours_ending_read_as_an_hourly_series_stamped_at_each_hours_end() -> None:
    series = long_series(3, pd.Timedelta(hours=1))
    out, notes = read(day_per_row(series, hours_ending(), "%m/%d/%Y"))
    expected_times = series.index + pd.Timedelta(hours=1)  # HE1 of a day ends at 01:00
    np.testing.assert_array_equal(out["ds"].to_numpy(), expected_times.to_numpy())
    np.testing.assert_allclose(out["load"], series.to_numpy())
    assert (
        "meter.csv: a day per row (3 days, 24 times of day from column 'HE1' (01:00) to 'HE24' "
        "(24:00)) read as one series, named 'load'" in notes
    )


def test_a_german_quarter_hour_export_with_a_daily_column_reads_the_same_series() -> None:
    series = long_series(2, pd.Timedelta(minutes=15))
    frame = day_per_row(series, quarter_hours_ending(), "%d.%m.%Y").assign(Tmittel=4.5)
    out, notes = read(frame, sep=";", decimal=",")
    np.testing.assert_allclose(out["load"], series.to_numpy())
    assert out["ds"].iloc[-1] == pd.Timestamp("2021-02-03 00:00")
    assert list(out.columns) == ["ds", "load"]
    assert any("columns ['Tmittel'] left out" in note for note in notes)
    assert "meter.csv: decimal commas read in columns ['load']" in notes


def test_days_listed_newest_first_read_in_reverse() -> None:
    series = long_series(3, pd.Timedelta(hours=1))
    names = [f"{h:02d}:00" for h in range(24)]
    frame = day_per_row(series, names, "%Y-%m-%d")
    forward, _ = read(frame)
    backward, notes = read(frame.iloc[::-1])
    pd.testing.assert_frame_equal(backward, forward)
    assert "meter.csv: days listed newest first: read in reverse" in notes


def test_a_bad_cell_names_the_files_line_and_column() -> None:
    series = long_series(3, pd.Timedelta(hours=1))
    frame = day_per_row(series, hours_ending(), "%m/%d/%Y").astype({"HE7": object})
    frame.loc[1, "HE7"] = "err"
    with pytest.raises(DataValidationError) as err:
        read(frame)
    assert str(err.value) == "meter.csv: column 'HE7' is not numeric (line 3: 'err'; 1 such values)"


def test_empty_cells_are_missing_times_not_rows() -> None:
    # The rest of the last day not yet measured: the series ends at its last reading.
    series = long_series(2, pd.Timedelta(hours=1))
    frame = day_per_row(series, hours_ending(), "%m/%d/%Y").astype(object)
    frame.iloc[-1, 13:] = ""
    out, _ = read(frame)
    assert len(out) == 24 + 12
    assert out["ds"].iloc[-1] == pd.Timestamp("2021-02-02 12:00")


@pytest.mark.parametrize(
    ("columns", "rows"),
    [
        (["Date", "load", "00:00", "01:00"], [["2021-02-01", "1", "2", "3"]]),  # target named
        (["Date", "00:00", "01:00"], [["2021-02-01 00:00", "2", "3"]]),  # not dates
        (["Date", "00:00", "temp"], [["2021-02-01", "2", "3"]]),  # one time of day
        (["Date", "00:00", "24:00", "12:00"], [["2021-02-01", "1", "2", "3"]]),  # same instant
        (["Date", "H1", "01:00"], [["2021-02-01", "1", "2"]]),  # same instant
    ],
)
def test_other_layouts_are_not_taken_for_a_day_per_row(
    columns: list[str], rows: list[list[str]]
) -> None:
    raw = pd.DataFrame(rows, columns=columns)
    assert day_rows_layout(raw, time_col="Date", target="load") is None


def test_a_day_per_row_pair_of_files_runs_through_preprocessing() -> None:
    series = long_series(21, pd.Timedelta(hours=1))
    frame = day_per_row(series, hours_ending(), "%m/%d/%Y")
    train, test = (
        frame.iloc[:14].to_csv(index=False).encode(),
        frame.iloc[14:].to_csv(index=False).encode(),
    )
    config = PreprocessConfig(time_col="Date", target="load", horizon=1)
    prepared = prepare_datasets(train, test, config, config_hash="h")
    assert prepared.spec.step_seconds == 3600
    assert prepared.test["ds"].iloc[-1] == pd.Timestamp("2021-02-22 00:00")
