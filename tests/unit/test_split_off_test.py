"""`flts run --train FILE` without --test: the latest timestamps of the file are the test
period, for a single series, several series in one file, and files listed newest first."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flts.cli.run_inputs import split_off_test, validate_inputs
from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError


def write(path: Path, frame: pd.DataFrame, sep: str = ",") -> Path:
    frame.to_csv(path, index=False, sep=sep)
    return path


def hourly(rows: int) -> pd.DataFrame:
    times = pd.date_range("2024-01-01", periods=rows, freq="h")
    load = 100 + 20 * np.sin(2 * np.pi * times.hour / 24) + np.arange(rows) % 3
    return pd.DataFrame({"time": times.strftime("%d.%m.%Y %H:%M"), "load": load})


def test_the_latest_fifth_of_a_lone_file_is_the_test_period(tmp_path: Path) -> None:
    frame = hourly(24 * 20)
    source = write(tmp_path / "site.csv", frame, sep=";")
    train, test, note = split_off_test(source, "time", 0.2, tmp_path / "inputs")
    assert (train.name, test.name) == ("site.train.csv", "site.test.csv")
    train_text, test_text = train.read_text(), test.read_text()
    assert train_text.splitlines()[0] == "time;load"  # the file's own delimiter and cells
    assert len(train_text.splitlines()) - 1 == 384
    assert len(test_text.splitlines()) - 1 == 96
    assert test_text.splitlines()[1].startswith("17.01.2024 00:00;")
    assert (
        "from '17.01.2024 00:00' (2024-01-17 00:00:00) on (96 of 480 rows, the latest 20% of its "
        "timestamps)" in note
    )
    prepared = validate_inputs(train, test, PreprocessConfig(target="load"))
    assert prepared.test["ds"].iloc[-1] == pd.Timestamp("2024-01-20 23:00")


def test_a_file_with_lines_above_its_header_splits_without_them(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "sep=;\nMeter 4711;kWh\n" + write(tmp_path / "x.csv", hourly(100), ";").read_text()
    )
    train, test, note = split_off_test(source, "time", 0.2, tmp_path / "inputs")
    assert train.read_text().splitlines()[0] == "time;load"
    assert "line 1 ('sep=;', Excel's delimiter line) read as the delimiter" in note
    assert "header on line 3; the 1 line(s) above it skipped ('Meter 4711;kWh')" in note
    assert len(pd.read_csv(test, sep=";")) == 20


def test_series_side_by_side_are_cut_at_the_same_time(tmp_path: Path) -> None:
    frame = hourly(100)
    long = pd.concat([frame.assign(meter="a"), frame.assign(meter="b")]).sort_index(kind="stable")
    source = write(tmp_path / "meters.csv", long)
    train, test, _ = split_off_test(source, "time", 0.25, tmp_path / "inputs")
    test_rows = pd.read_csv(test)
    assert len(test_rows) == 50  # 25 timestamps x 2 meters
    assert set(test_rows["meter"]) == {"a", "b"}
    assert pd.read_csv(train)["time"].iloc[-1] == frame["time"].iloc[74]


def test_a_file_listed_newest_first_keeps_its_order_and_cuts_off_its_newest_rows(
    tmp_path: Path,
) -> None:
    frame = hourly(50).iloc[::-1]
    source = write(tmp_path / "dashboard.csv", frame)
    train, test, _ = split_off_test(source, "time", 0.2, tmp_path / "inputs")
    test_rows = pd.read_csv(test)
    assert test_rows["time"].tolist() == frame["time"].iloc[:10].tolist()
    assert len(pd.read_csv(train)) == 40


def test_a_file_without_the_time_column_names_the_way_out(tmp_path: Path) -> None:
    source = write(tmp_path / "x.csv", hourly(30).rename(columns={"time": "Time"}))
    with pytest.raises(
        DataValidationError,
        match=r"no test period can be split off \(or give --test\).*--time-col 'Time'",
    ):
        split_off_test(source, "time", 0.2, tmp_path / "inputs")
    # A name nothing like the default: the column holding the timestamps is named.
    other = write(tmp_path / "y.csv", hourly(30).rename(columns={"time": "Zeitstempel"}))
    with pytest.raises(
        DataValidationError,
        match=r"the timestamps look to be in 'Zeitstempel': --time-col 'Zeitstempel'$",
    ):
        split_off_test(other, "time", 0.2, tmp_path / "inputs")


def test_unparseable_timestamps_name_the_line(tmp_path: Path) -> None:
    frame = hourly(30)
    frame.loc[4, "time"] = "soon"
    source = write(tmp_path / "x.csv", frame)
    with pytest.raises(DataValidationError, match=r"1 values .* \(first at line 6\).*give --test"):
        split_off_test(source, "time", 0.2, tmp_path / "inputs")


@pytest.mark.parametrize("text", ["0", "1", "1.5", "a fifth"])
def test_the_fraction_is_between_zero_and_one(text: str) -> None:
    from flts.cli.run_cmd import _fraction

    with pytest.raises(argparse.ArgumentTypeError):
        _fraction(text)


def test_rows_out_of_order_are_sorted_by_time_stably(tmp_path: Path) -> None:
    from flts.cli.run_inputs import sorted_by_time

    frame = hourly(48)
    days = [frame.iloc[24:], frame.iloc[:24]]  # a day-block export: the later day first
    source = write(tmp_path / "blocks.csv", pd.concat(days))
    path, note = sorted_by_time(source, "time", tmp_path / "inputs", "train")
    assert path.name == "blocks.train.sorted.csv"
    assert pd.read_csv(path)["time"].tolist() == frame["time"].tolist()
    assert note is not None
    assert "rows of blocks.csv sorted by time (48 of 48 rows moved" in note


@pytest.mark.parametrize("newest_first", [False, True])
def test_rows_in_order_are_left_as_they_are(tmp_path: Path, newest_first: bool) -> None:
    from flts.cli.run_inputs import sorted_by_time

    frame = hourly(30)
    source = write(tmp_path / "x.csv", frame.iloc[::-1] if newest_first else frame)
    assert sorted_by_time(source, "time", tmp_path / "inputs", "train") == (source, None)


def test_sort_rows_then_split_a_lone_file(tmp_path: Path) -> None:
    from flts.cli.run_cmd import prepare_input_files

    frame = hourly(100)
    source = write(tmp_path / "x.csv", pd.concat([frame.iloc[50:], frame.iloc[:50]]))
    args = argparse.Namespace(
        train=source, test=None, sort_rows=True, time_col="time", test_fraction=0.2
    )
    notes = prepare_input_files(args, tmp_path / "run")
    assert len(notes) == 2
    assert pd.read_csv(args.test)["time"].tolist() == frame["time"].iloc[80:].tolist()
    assert pd.read_csv(args.train)["time"].tolist() == frame["time"].iloc[:80].tolist()


def test_a_directory_of_series_needs_a_test_directory(tmp_path: Path) -> None:
    from flts.cli.run_cmd import prepare_input_files
    from flts.errors import ConfigError

    args = argparse.Namespace(
        train=tmp_path, test=None, sort_rows=False, time_col="time", test_fraction=0.2
    )
    with pytest.raises(ConfigError, match="needs --test"):
        prepare_input_files(args, tmp_path / "run")
