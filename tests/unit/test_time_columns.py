"""Columns that complete or repeat the time column, as grid operators and public data sets write
them: period numbers beside a date, a zone abbreviation column, a second timestamp column; and
the hints for files that hold several series side by side."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.data import read_csv_with_notes

HALF_HOUR = pd.Timedelta(minutes=30)


def read(
    frame: pd.DataFrame, time_col: str, target: str, **config: object
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    settings = PreprocessConfig(time_col=time_col, target=target, **config)  # type: ignore[arg-type]
    return read_csv_with_notes(buffer.getvalue().encode(), source="grid.csv", config=settings)


def settlement_periods(start: str, days: int, zone: str) -> pd.DataFrame:
    """``SETTLEMENT_DATE,SETTLEMENT_PERIOD,ND,TSD`` as a grid operator writes half hours: period 1
    starts at local midnight; a day has as many periods as it has half hours (46 or 50 on the
    daylight-saving days)."""
    rows = []
    for day in pd.date_range(start, periods=days, freq="D"):
        midnight = pd.Timestamp(day).tz_localize(zone)
        next_midnight = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(zone)
        count = int((next_midnight - midnight) / HALF_HOUR)
        rows.extend((day.strftime("%Y-%m-%d"), k) for k in range(1, count + 1))
    frame = pd.DataFrame(rows, columns=["SETTLEMENT_DATE", "SETTLEMENT_PERIOD"])
    frame["ND"] = 20_000 + 100 * np.arange(len(frame)) % 7_000
    frame["TSD"] = frame["ND"] + 500
    return frame


def test_periods_of_a_day_are_read_as_their_ends_and_are_no_input() -> None:
    frame = settlement_periods("2023-02-01", 3, "Europe/London")
    out, notes = read(frame, "SETTLEMENT_DATE", "ND")
    expected = pd.date_range("2023-02-01 00:30", periods=3 * 48, freq="30min")
    np.testing.assert_array_equal(out["ds"].to_numpy(), expected.to_numpy())
    assert list(out.columns) == ["ds", "ND", "TSD"]  # SETTLEMENT_PERIOD is part of the time
    assert any("'SETTLEMENT_PERIOD' numbering 48 periods a day from 1" in n for n in notes)


def test_periods_counted_from_zero_are_read_as_their_starts() -> None:
    days = pd.date_range("2024-05-13", periods=3 * 24, freq="h")  # day first beyond doubt
    frame = pd.DataFrame(
        {"Date": days.strftime("%d/%m/%Y"), "Hour": days.hour, "Load": np.arange(len(days))}
    )
    out, _ = read(frame, "Date", "Load")
    np.testing.assert_array_equal(out["ds"].to_numpy(), days.to_numpy())


def test_a_file_that_starts_and_ends_within_a_day_keeps_its_periods() -> None:
    frame = settlement_periods("2023-02-01", 3, "Europe/London").iloc[30:-10]
    out, _ = read(frame, "SETTLEMENT_DATE", "ND")
    assert out["ds"].iloc[0] == pd.Timestamp("2023-02-01 15:30")
    assert out["ds"].iloc[-1] == pd.Timestamp("2023-02-03 19:00")
    assert (out["ds"].diff().iloc[1:] == HALF_HOUR).all()


@pytest.mark.parametrize("start", ["2023-03-25", "2023-10-28"])
def test_with_the_zone_a_daylight_saving_day_of_46_or_50_periods_is_continuous(
    start: str,
) -> None:
    frame = settlement_periods(start, 3, "Europe/London")
    out, notes = read(frame, "SETTLEMENT_DATE", "ND", timezone="Europe/London")
    first = pd.Timestamp(start).tz_localize("Europe/London").tz_convert("UTC").tz_localize(None)
    expected = pd.date_range(first + HALF_HOUR, periods=len(frame), freq="30min")
    np.testing.assert_array_equal(out["ds"].to_numpy(), expected.to_numpy())
    assert any("periods counted from midnight (Europe/London clock)" in n for n in notes)


def test_without_the_zone_a_day_of_50_periods_is_an_error_naming_the_line_and_the_option() -> None:
    frame = settlement_periods("2023-10-28", 3, "Europe/London")
    with pytest.raises(DataValidationError) as caught:
        read(frame, "SETTLEMENT_DATE", "ND")
    message = str(caught.value)
    line = 48 + 48 + 2  # period 49 of the second day; the header is line 1
    assert f"line {line}: period 49 of 2023-10-29 in column 'SETTLEMENT_PERIOD'" in message
    assert "where most days have 48" in message
    assert "--timezone" in message


def test_with_the_zone_a_period_after_the_end_of_its_day_is_an_error() -> None:
    frame = settlement_periods("2023-02-01", 3, "Europe/London")
    frame.loc[len(frame)] = ["2023-02-03", 49, 1, 1]  # no 49th half hour on an ordinary day
    with pytest.raises(DataValidationError, match=r"period 49 of 2023-02-03 .* after the end"):
        read(frame, "SETTLEMENT_DATE", "ND", timezone="Europe/London")


def test_an_integer_covariate_that_does_not_restart_each_day_is_no_period_number() -> None:
    frame = settlement_periods("2023-02-01", 2, "Europe/London").drop(columns="SETTLEMENT_PERIOD")
    frame["count"] = np.arange(1, len(frame) + 1)  # counts on across days
    with pytest.raises(DataValidationError, match="duplicated timestamp"):
        read(frame, "SETTLEMENT_DATE", "ND")


def test_daily_data_with_an_integer_column_is_read_as_days() -> None:
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    frame = pd.DataFrame(
        {"date": days.strftime("%Y-%m-%d"), "weekday": days.weekday + 1, "load": 1.0}
    )
    frame["load"] = np.arange(60.0)
    out, _ = read(frame, "date", "load")
    np.testing.assert_array_equal(out["ds"].to_numpy(), days.to_numpy())
    assert "weekday" in out.columns


def zone_column_file() -> pd.DataFrame:
    """``Time Stamp,Time Zone,Load`` across the autumn change in New York, as US grid operators
    write it: the repeated 01:00 hour is told apart only by the zone column."""
    utc = pd.date_range("2023-11-05 03:00", periods=6 * 12, freq="5min", tz="UTC")
    local = utc.tz_convert("America/New_York")
    return pd.DataFrame(
        {
            "Time Stamp": local.strftime("%m/%d/%Y %H:%M:%S"),
            "Time Zone": ["EDT" if t.dst() else "EST" for t in local],
            "Load": np.arange(len(utc), dtype=float),
        }
    )


def test_a_zone_column_gives_each_timestamp_its_offset() -> None:
    frame = zone_column_file()
    assert frame["Time Stamp"].duplicated().any()  # the repeated hour, on the clock
    out, notes = read(frame, "Time Stamp", "Load")
    expected = pd.date_range("2023-11-05 03:00", periods=len(frame), freq="5min")
    np.testing.assert_array_equal(out["ds"].to_numpy(), expected.to_numpy())
    assert list(out.columns) == ["ds", "Load"]
    assert any(
        "column 'Time Zone' (EDT/EST) read with the timestamps as their UTC offsets" in n
        for n in notes
    )


def test_a_zone_column_is_not_applied_to_timestamps_that_carry_their_own_offset() -> None:
    frame = zone_column_file()
    frame["Time Stamp"] = pd.date_range(
        "2023-11-05 03:00", periods=len(frame), freq="5min", tz="UTC"
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(DataValidationError, match="column 'Time Zone' is not numeric"):
        read(frame, "Time Stamp", "Load")


def test_a_second_timestamp_column_is_left_out_with_a_note() -> None:
    utc = pd.date_range("2019-01-01", periods=200, freq="15min", tz="UTC")
    frame = pd.DataFrame(
        {
            "utc_timestamp": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cet_cest_timestamp": utc.tz_convert("Europe/Berlin").strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load": np.arange(200.0),
            "solar": 1.5,
        }
    )
    out, notes = read(frame, "utc_timestamp", "load")
    assert list(out.columns) == ["ds", "load", "solar"]
    assert any("column 'cet_cest_timestamp' ignored: timestamps" in n for n in notes)
    with pytest.raises(DataValidationError, match="'cet_cest_timestamp' is not numeric"):
        read(frame, "utc_timestamp", "load", feature_columns=("cet_cest_timestamp",))


def test_a_question_mark_is_a_missing_value() -> None:
    times = pd.date_range("2006-12-16 17:24", periods=50, freq="min")
    frame = pd.DataFrame(
        {
            "Date": times.strftime("%-d/%-m/%Y"),
            "Time": times.strftime("%H:%M:%S"),
            "Global_active_power": [f"{v:.3f}" for v in np.linspace(1, 2, 50)],
        }
    )
    frame.loc[10, "Global_active_power"] = "?"
    out, notes = read(frame, "Date", "Global_active_power")
    assert np.isnan(out["Global_active_power"].iloc[10])
    assert any("cells written 1 x '?' read as missing" in n for n in notes)


def test_series_side_by_side_at_each_timestamp_are_offered_as_a_fleet() -> None:
    times = pd.date_range("2023-03-01", periods=30, freq="5min")
    frame = pd.DataFrame(
        {
            "Time Stamp": np.repeat(times.strftime("%Y-%m-%d %H:%M"), 2),
            "PTID": np.tile([61757, 61754], 30),
            "Name": np.tile(["CAPITL", "CENTRL"], 30),
            "Load": np.arange(60.0),
        }
    )
    with pytest.raises(DataValidationError) as caught:
        read(frame, "Time Stamp", "Load")
    message = str(caught.value)
    assert "duplicated timestamp 2023-03-01 00:00:00 at lines 2 and 3" in message
    assert "`flts run --series-col Name`" in message  # the name, not the numeric code


def test_a_repeated_autumn_hour_with_a_covariate_is_not_taken_for_several_series() -> None:
    local = pd.date_range("2023-11-04 20:00", periods=10, freq="h", tz="America/New_York")
    frame = pd.DataFrame(
        {
            "time": local.strftime("%Y-%m-%d %H:%M"),
            "temperature": np.linspace(5, 9, 10),
            "load": np.arange(10.0),
        }
    )
    with pytest.raises(DataValidationError) as caught:
        read(frame, "time", "load")
    message = str(caught.value)
    assert "--series-col" not in message
    assert "`flts run --timezone America/New_York`" in message


def test_a_wide_file_with_period_numbers_has_no_period_series(tmp_path: Path) -> None:
    from flts.cli.fleet_inputs import WIDE_TARGET, split_wide_csv
    from flts.cli.run_inputs import validate_inputs

    frame = settlement_periods("2023-02-01", 12, "Europe/London")
    paths = (tmp_path / "train.csv", tmp_path / "test.csv")
    frame.iloc[: 48 * 10].to_csv(paths[0], index=False)
    frame.iloc[48 * 10 :].to_csv(paths[1], index=False)
    pairs, _, notices = split_wide_csv(*paths, "SETTLEMENT_DATE", ("all",), tmp_path / "out")
    assert set(pairs) == {"ND", "TSD"}
    assert "column 'SETTLEMENT_PERIOD' is part of the time of every series" in notices
    train, test = pairs["ND"]
    assert train is not None
    assert test is not None
    prepared = validate_inputs(
        train, test, PreprocessConfig(time_col="SETTLEMENT_DATE", target=WIDE_TARGET)
    )
    assert prepared.spec.step_seconds == 1800


def unnamed_first_column_file(rows: int, start: str) -> str:
    """``"";"MT_001";"MT_002"``: a data set written from its time index, with decimal commas."""
    times = pd.date_range(start, periods=rows, freq="15min")
    lines = ['"";"MT_001";"MT_002"']
    lines += [f'"{t:%Y-%m-%d %H:%M:%S}";"{k % 7},5";"{k % 5}"' for k, t in enumerate(times)]
    return "\n".join(lines) + "\n"


def test_an_unnamed_first_column_of_timestamps_is_the_time_column() -> None:
    data = unnamed_first_column_file(20, "2011-01-01 00:15").encode()
    config = PreprocessConfig(target="MT_001")  # the default --time-col: no such column
    out, notes = read_csv_with_notes(data, source="LD.txt", config=config)
    assert out["ds"].iloc[0] == pd.Timestamp("2011-01-01 00:15")
    assert out["MT_001"].iloc[1] == 1.5
    assert any("the first column has no name and holds timestamps" in n for n in notes)


def test_an_unnamed_first_column_of_row_numbers_is_not_taken_for_time() -> None:
    data = b",load,time\n0,1.0,2024-01-01 00:00\n1,2.0,2024-01-01 01:00\n2,3.0,2024-01-01 02:00\n"
    out, _ = read_csv_with_notes(data, source="x.csv", config=PreprocessConfig(target="load"))
    assert list(out.columns) == ["ds", "load"]  # the index is ignored, "time" is the time
    with pytest.raises(DataValidationError, match="time column 'ts' not found"):
        read_csv_with_notes(
            data, source="x.csv", config=PreprocessConfig(time_col="ts", target="load")
        )


def test_a_wide_file_with_an_unnamed_time_column_splits_into_its_series(tmp_path: Path) -> None:
    from flts.cli.fleet_inputs import split_wide_csv

    paths = (tmp_path / "train.csv", tmp_path / "test.csv")
    paths[0].write_text(unnamed_first_column_file(200, "2011-01-01 00:15"))
    paths[1].write_text(unnamed_first_column_file(50, "2011-01-03 02:15"))
    pairs, _, _ = split_wide_csv(*paths, "time", ("all",), tmp_path / "out")
    assert set(pairs) == {"MT_001", "MT_002"}


def test_integer_series_ids_listed_per_date_are_not_read_as_periods() -> None:
    days = pd.date_range("2024-01-01", periods=5, freq="D")
    frame = pd.DataFrame(
        {
            "date": np.repeat(days.strftime("%Y-%m-%d"), 48),
            "store": np.tile(np.arange(1, 49), 5),  # 48 stores: as many as half hours in a day
            "sales": np.arange(240.0),
        }
    )
    with pytest.raises(DataValidationError, match="--series-col store"):
        read(frame, "date", "sales")


@pytest.mark.parametrize("name", ["Stunde", "Heure", "Hora", "Uur"])
def test_period_columns_named_in_other_languages(name: str) -> None:
    days = pd.date_range("2024-05-13 01:00", periods=3 * 24, freq="h")
    frame = pd.DataFrame(
        {
            "Datum": np.repeat(pd.date_range("2024-05-13", periods=3).strftime("%d.%m.%Y"), 24),
            name: np.tile(np.arange(1, 25), 3),
            "Last": np.arange(72.0),
        }
    )
    out, _ = read(frame, "Datum", "Last")
    np.testing.assert_array_equal(out["ds"].to_numpy(), days.to_numpy())


def test_numbers_under_an_unknown_name_get_both_readings_in_the_hint() -> None:
    """A column counting each date's rows may be periods under a name not known to the reader,
    or series ids: the error names both ways out, not only the fleet."""
    frame = pd.DataFrame(
        {
            "date": np.repeat(pd.date_range("2024-01-01", periods=4).strftime("%Y-%m-%d"), 24),
            "h_idx": np.tile(np.arange(1, 25), 4),
            "load": np.arange(96.0),
        }
    )
    with pytest.raises(DataValidationError) as err:
        read(frame, "date", "load")
    message = str(err.value)
    assert "column 'h_idx' numbers the rows of each timestamp from 1 to 24" in message
    assert "give it a name that says so" in message
    assert "`flts run --series-col h_idx`" in message


@pytest.mark.parametrize("order", [("Anfang", "Ende"), ("Ende", "Anfang")])
def test_a_date_with_start_and_end_times_reads_each_row_at_its_start(
    order: tuple[str, str],
) -> None:
    """``Datum;Anfang;Ende;...`` (as SMARD exports German load): the period's start and end as
    two times of day; each row is read at its start, the end column is no input."""
    stamps = pd.date_range("2019-01-01", periods=200, freq="15min")
    times = {
        "Anfang": stamps.strftime("%H:%M"),
        "Ende": (stamps + pd.Timedelta(minutes=15)).strftime("%H:%M"),
    }
    frame = pd.DataFrame(
        {
            "Datum": stamps.strftime("%d.%m.%Y"),
            order[0]: times[order[0]],
            order[1]: times[order[1]],
            "Last": np.arange(200.0),
        }
    )
    out, notes = read(frame, "Datum", "Last")
    np.testing.assert_array_equal(out["ds"].to_numpy(), stamps.to_numpy())
    assert list(out.columns) == ["ds", "Last"]
    assert any("each row at its period's start ('Ende', the end, left out)" in n for n in notes)


def test_two_unrelated_times_of_day_are_no_period() -> None:
    days = pd.date_range("2024-03-01", periods=40, freq="D")
    frame = pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d"),
            "sunrise": [f"06:{m:02d}" for m in range(40)],
            "sunset": [f"18:{59 - m:02d}" for m in range(40)],
            "load": np.arange(40.0),
        }
    )
    out, _ = read(frame, "date", "load", feature_columns=("load",))
    assert out["ds"].iloc[1] == pd.Timestamp("2024-03-02")  # daily dates, no time taken
