"""Load data as meters, SCADA exports and spreadsheets write it, read to the same frame as ISO CSV.

Each case writes one frame another common way and checks the values, the UTC timestamps and the
note that says how the file was read; the ambiguous cases must stay errors with a way out.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _rawcsv import SMALL, START, raw_frame, to_csv

from flts.domain.config import PreprocessConfig, compute_config_hash
from flts.errors import DataValidationError
from flts.forecasting.csv_text import parse_timestamps, sniff_delimiter, split_timestamp
from flts.forecasting.data import read_csv_with_notes
from flts.forecasting.time_columns import zone_named_by


def read(data: bytes, config: PreprocessConfig = SMALL) -> tuple[pd.DataFrame, tuple[str, ...]]:
    return read_csv_with_notes(data, source="meter.csv", config=config)


def written(frame: pd.DataFrame, **options: str) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, **options)  # type: ignore[call-overload]
    return buffer.getvalue().encode()


def test_semicolons_and_decimal_commas_read_as_the_plain_file() -> None:
    frame = raw_frame(30)
    frame["down"] = frame["down"].round(3)
    plain, _ = read(to_csv(frame))
    european, notes = read(written(frame, sep=";", decimal=","))
    pd.testing.assert_frame_equal(european, plain)
    assert "meter.csv: fields delimited by ';'" in notes
    assert "meter.csv: decimal commas read in columns ['down', 'up']" in notes


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_tab_and_pipe_delimited_files(delimiter: str) -> None:
    frame = raw_frame(30)
    out, notes = read(written(frame, sep=delimiter))
    np.testing.assert_allclose(out["down"], frame["down"])
    assert f"meter.csv: fields delimited by {delimiter!r}" in notes


def test_a_decimal_comma_in_a_comma_delimited_file_stays_an_error() -> None:
    # "1,234" is as often a thousands separator: never guessed.
    data = b'time,down\n2018-02-05 00:00:00,"1,5"\n2018-02-05 00:01:00,"2,5"\n'
    with pytest.raises(DataValidationError, match=r"column 'down' is not numeric \(line 2"):
        read(data, PreprocessConfig(target="down"))


def test_dots_grouping_thousands_next_to_decimal_commas_read_as_a_spreadsheet_writes_them() -> None:
    data = b"time;down\n2018-02-05 00:00:00;1,5\n2018-02-05 00:01:00;1.234,5\n"
    data += b"2018-02-05 00:02:00;-12.345.678\n"
    out, notes = read(data, PreprocessConfig(target="down"))
    assert out["down"].tolist() == [1.5, 1234.5, -12345678.0]
    assert "meter.csv: decimal commas read in columns ['down']" in notes


@pytest.mark.parametrize("value", [b"1.5", b"1.2345,5", b"12.34,5"])
def test_a_column_with_dots_and_commas_used_otherwise_stays_an_error(value: bytes) -> None:
    # A dot not grouping three digits beside decimal commas: no single way to read the column.
    data = b"time;down\n2018-02-05 00:00:00;2,5\n2018-02-05 00:01:00;" + value + b"\n"
    with pytest.raises(DataValidationError, match="column 'down' is not numeric"):
        read(data, PreprocessConfig(target="down"))


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_commas_grouping_thousands_read_when_the_column_shows_they_cannot_be_decimal(
    delimiter: str,
) -> None:
    frame = raw_frame(30)
    frame["down"] = frame["down"].round(1)
    plain, _ = read(to_csv(frame))
    grouped = frame.assign(down=frame["down"].map(lambda v: f"{v:,.1f}"))
    out, notes = read(written(grouped, sep=delimiter))
    pd.testing.assert_frame_equal(out, plain)
    assert "meter.csv: commas grouping thousands read in columns ['down']" in notes


def test_commas_grouping_thousands_next_to_plain_decimals_and_without_a_point() -> None:
    data = b'time,down\n2018-02-05 00:00:00,"1,234"\n2018-02-05 00:01:00,987.5\n'
    data += b'2018-02-05 00:02:00,"12,345,678"\n'
    out, _ = read(data, PreprocessConfig(target="down"))
    assert out["down"].tolist() == [1234.0, 987.5, 12345678.0]


def test_commas_that_may_be_decimal_ones_stay_an_error() -> None:
    # "1,234" alone: a thousand and more, or one and a quarter; never guessed.
    data = b'time,down\n2018-02-05 00:00:00,"1,234"\n2018-02-05 00:01:00,"2,345"\n'
    with pytest.raises(DataValidationError, match=r"column 'down' is not numeric \(line 2"):
        read(data, PreprocessConfig(target="down"))


def test_integers_grouped_from_a_thousand_in_a_comma_delimited_file_read_as_thousands() -> None:
    # EIA-style hourly demand: "987" then "1,234": a writer of decimal commas would have put a
    # comma in the small value too (and would not quote them in a comma-delimited file).
    data = b'time,down\n2018-02-05 00:00:00,987\n2018-02-05 01:00:00,"1,234"\n'
    data += b'2018-02-05 02:00:00,"12,345"\n'
    out, notes = read(data, PreprocessConfig(target="down"))
    assert out["down"].tolist() == [987.0, 1234.0, 12345.0]
    assert "meter.csv: commas grouping thousands read in columns ['down']" in notes


@pytest.mark.parametrize(
    ("first", "delimiter"),
    [(b'"0,987"', b","), (b"987", b";")],  # a group after a zero; a file that may be decimal
)
def test_integers_and_grouped_values_stay_an_error_where_commas_may_be_decimal(
    first: bytes, delimiter: bytes
) -> None:
    rows = [b"2018-02-05 00:00:00" + delimiter + first, b"2018-02-05 01:00:00" + delimiter]
    rows[1] += b'"1,234"' if delimiter == b"," else b"1,234"
    rows.append(b"2018-02-05 02:00:00" + delimiter + b"5")
    data = b"time" + delimiter + b"down\n" + b"\n".join(rows) + b"\n"
    if delimiter == b";":  # read as decimal commas there: 1.234, never as thousands
        out, _ = read(data, PreprocessConfig(target="down"))
        assert out["down"].tolist() == [987.0, 1.234, 5.0]
        return
    with pytest.raises(DataValidationError, match="column 'down' is not numeric"):
        read(data, PreprocessConfig(target="down"))


@pytest.mark.parametrize(
    "date_format", ["%d-%b-%Y %H:%M", "%b %d, %Y %H:%M", "%d %B %Y %H:%M", "%d-%b-%y %H:%M"]
)
def test_month_names_in_timestamps(date_format: str) -> None:
    frame = raw_frame(40, step_s=3600)
    expected = pd.to_datetime(frame["time"])
    frame["time"] = expected.dt.strftime(date_format)
    out, _ = read(to_csv(frame))
    np.testing.assert_array_equal(out["ds"].to_numpy(), expected.to_numpy())


def test_missing_value_markers_are_gaps_and_counted_in_a_note() -> None:
    frame = raw_frame(30).astype({"down": object})
    frame.loc[[3, 4, 5, 9], "down"] = ["-", "n/a", "-", "#N/A"]
    out, notes = read(to_csv(frame))
    assert out["down"].isna().to_numpy().nonzero()[0].tolist() == [3, 4, 5, 9]
    assert (
        "meter.csv: column 'down': cells written 2 x '-', 1 x 'n/a', 1 x '#N/A' read as missing"
        in notes
    )


def test_entsoe_interval_timestamps_read_at_the_start_of_each_period() -> None:
    frame = raw_frame(60, step_s=3600)
    start = pd.to_datetime(frame["time"])
    periods = frame.astype({"down": object}).assign(
        time=start.dt.strftime("%d.%m.%Y %H:%M")
        + " - "
        + (start + pd.Timedelta(hours=1)).dt.strftime("%d.%m.%Y %H:%M")
    )
    periods.loc[7, "down"] = "n/e"
    out, notes = read(written(periods))
    plain, _ = read(to_csv(frame))
    pd.testing.assert_series_equal(out["ds"], plain["ds"])
    assert "meter.csv: column 'time' read as day-first dates, the start of each interval" in notes
    assert np.isnan(out["down"].iloc[7])


def test_entsoe_periods_in_clock_time_across_the_autumn_hour_read_with_the_zone() -> None:
    # The last summer period ends at 02:00 on the clock, before it starts (02:45).
    utc = pd.date_range("2021-10-30 23:00", periods=16, freq="15min", tz="UTC")
    local = utc.tz_convert("Europe/Berlin")
    ends = local + pd.Timedelta(minutes=15)
    periods = [f"{a:%d.%m.%Y %H:%M} - {b:%d.%m.%Y %H:%M}" for a, b in zip(local, ends, strict=True)]
    assert "31.10.2021 02:45 - 31.10.2021 02:00" in periods
    frame = pd.DataFrame({"time": periods, "down": np.arange(16.0)})
    config = PreprocessConfig(target="down", timezone="Europe/Berlin")
    out, _ = read(to_csv(frame), config)
    np.testing.assert_array_equal(out["ds"].to_numpy(), utc.tz_localize(None).to_numpy())


def test_a_time_column_naming_its_clock_needs_no_zone_option() -> None:
    # ENTSO-E names the column "Time (CET/CEST)": its clock time, summer time included.
    utc = pd.date_range("2021-10-30 23:00", periods=16, freq="15min", tz="UTC")
    local = utc.tz_convert("Europe/Berlin")
    ends = local + pd.Timedelta(minutes=15)
    periods = [f"{a:%d.%m.%Y %H:%M} - {b:%d.%m.%Y %H:%M}" for a, b in zip(local, ends, strict=True)]
    frame = pd.DataFrame({"Time (CET/CEST)": periods, "load": np.arange(16.0)})
    config = PreprocessConfig(time_col="Time (CET/CEST)", target="load")
    out, notes = read(to_csv(frame), config)
    np.testing.assert_array_equal(out["ds"].to_numpy(), utc.tz_localize(None).to_numpy())
    assert any("CET clock time" in n and "named by the column" in n for n in notes)
    summer = frame.iloc[:4]  # before the repeated hour, which UTC could not tell apart
    utc_out, _ = read(to_csv(summer), config.model_copy(update={"timezone": "UTC"}))
    assert utc_out["ds"].iloc[0] == pd.Timestamp("2021-10-31 01:00")  # the option wins


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("Time (CET/CEST)", "CET"),
        ("Hour Ending (EST/EDT)", "America/New_York"),
        ("time", None),
        ("Time (EST)", None),  # one abbreviation may be that offset all year
        ("timestamp_CESTX/CET", None),
    ],
)
def test_zones_named_by_time_columns(name: str, zone: str | None) -> None:
    assert zone_named_by(name) == zone


def test_a_spaced_dash_that_is_no_interval_is_not_split() -> None:
    # The end before the start: not a period, so read (and rejected) whole.
    text = pd.Series(["2018-02-05 00:05 - 2018-02-05 00:00", "2018-02-05 00:06 - 2018-02-05 00:01"])
    parsed, _ = parse_timestamps(text)
    assert parsed.isna().all()


def test_an_hour_ending_export_with_24_00_reads_as_a_regular_hourly_series() -> None:
    # Date and "Hour Ending" 01:00 ... 24:00 in two columns, month first, as US grid operators
    # export them: 24:00 is the next day's midnight.
    frame = raw_frame(72, step_s=3600, start=START + pd.Timedelta(hours=1))
    ends = pd.to_datetime(frame["time"])
    day = (ends - pd.Timedelta(hours=1)).dt.strftime("%m/%d/%Y")
    hour = ((ends - pd.Timedelta(hours=1)).dt.hour + 1).map(lambda h: f"{h:02d}:00")
    export = frame.drop(columns="time").assign(Date=day, HourEnding=hour)
    out, notes = read(written(export), PreprocessConfig(time_col="Date", target="down"))
    plain, _ = read(to_csv(frame))
    pd.testing.assert_series_equal(out["ds"], plain["ds"])
    assert any("24:00 as midnight of the next day" in note for note in notes)


def test_zone_abbreviations_tell_the_autumn_hours_apart_without_a_zone_option() -> None:
    utc = pd.date_range("2021-10-30 20:00", periods=12, freq="1h", tz="UTC")
    local = utc.tz_convert("Europe/Berlin")
    written_as = [f"{t:%d.%m.%Y %H:%M} ({t.tzname()})" for t in local]
    assert written_as[4:6] == ["31.10.2021 02:00 (CEST)", "31.10.2021 02:00 (CET)"]
    frame = pd.DataFrame({"time": written_as, "down": np.arange(12.0)})
    out, notes = read(to_csv(frame), PreprocessConfig(target="down"))
    np.testing.assert_array_equal(out["ds"].to_numpy(), utc.tz_localize(None).to_numpy())
    assert any("zone abbreviations as their UTC offsets" in note for note in notes)


def test_hours_written_am_pm_with_a_zone_as_eia_writes_them() -> None:
    """``11/6/2022 1 a.m. EDT`` then ``11/6/2022 1 a.m. EST``: the autumn hour told apart."""
    utc = pd.date_range("2022-11-06 02:00", periods=8, freq="1h", tz="UTC")
    local = utc.tz_convert("America/New_York")
    written_as = [
        f"{t.month}/{t.day}/{t.year} {t.hour % 12 or 12} {'a' if t.hour < 12 else 'p'}.m. "
        f"{t.tzname()}"
        for t in local
    ]
    assert written_as[3:5] == ["11/6/2022 1 a.m. EDT", "11/6/2022 1 a.m. EST"]
    frame = pd.DataFrame({"time": written_as, "down": np.arange(8.0)})
    out, _ = read(to_csv(frame), PreprocessConfig(target="down"))
    np.testing.assert_array_equal(out["ds"].to_numpy(), utc.tz_localize(None).to_numpy())


def test_an_unknown_zone_abbreviation_stays_an_error() -> None:
    text = pd.Series(["2021-01-31 01:00 XYZ", "2021-01-31 02:00 XYZ"])
    assert parse_timestamps(text)[0].isna().all()


def test_sniffing_falls_back_to_commas() -> None:
    assert sniff_delimiter(b"time\n2018-02-05\n") == ","
    assert sniff_delimiter(b"") == ","
    assert sniff_delimiter(b'time,"Load; kW"\n2018-02-05,1\n') == ","


def test_day_first_dates_are_told_apart_by_their_regular_spacing() -> None:
    # 1st to 3rd of February, hourly: month first would read 2 January, 2 March, ...
    frame = raw_frame(60, step_s=3600)
    stamps = pd.to_datetime(frame["time"])
    frame["time"] = stamps.dt.strftime("%d.%m.%Y %H:%M")
    out, notes = read(to_csv(frame))
    assert out["ds"].tolist() == stamps.tolist()
    assert "meter.csv: column 'time' read as day-first dates" in notes


def test_month_first_dates_that_cannot_be_day_first_are_said_to_be_month_first() -> None:
    # 03/22 to 03/24: pandas reads them month first even when told day first.
    text = pd.Series([f"03/{day}/2021 {hour:02d}:00" for day in (22, 23, 24) for hour in (0, 12)])
    assert parse_timestamps(text)[1] == "dates in an inferred format"


def test_month_first_dates_still_read_month_first() -> None:
    frame = raw_frame(60, step_s=3600, start=pd.Timestamp("2018-03-12"))
    stamps = pd.to_datetime(frame["time"])
    frame["time"] = stamps.dt.strftime("%m/%d/%Y %H:%M")
    out, _ = read(to_csv(frame))
    assert out["ds"].tolist() == stamps.tolist()


@pytest.mark.parametrize(("scale", "unit"), [(1, "seconds"), (1000, "milliseconds")])
def test_unix_epoch_times(scale: int, unit: str) -> None:
    frame = raw_frame(30)
    stamps = pd.to_datetime(frame["time"])
    frame["time"] = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1) * scale
    out, notes = read(to_csv(frame))
    assert out["ds"].tolist() == stamps.tolist()
    assert f"meter.csv: column 'time' read as Unix epoch {unit}" in notes


@pytest.mark.parametrize(
    ("mark", "sep", "decimal"),
    [(" ", ";", ","), ("\u00a0", ";", ","), ("\u202f", ",", ","), ("'", ",", ".")],
)
def test_spaces_or_apostrophes_grouping_thousands(mark: str, sep: str, decimal: str) -> None:
    """``1 234,5`` (French, Nordic, Polish spreadsheets; a no-break or narrow no-break space),
    ``1'234.5`` (Swiss): with spaces grouping, a comma is the decimal mark even in a
    comma-delimited file (quoted there)."""
    frame = raw_frame(30)
    frame["down"] = 900.0 + 37.5 * np.arange(30)  # crosses a thousand: plain and grouped values
    plain, _ = read(to_csv(frame))
    grouped = frame.copy()
    grouped["down"] = [
        f"{v:,.1f}".replace(",", "#").replace(".", decimal).replace("#", mark) for v in frame.down
    ]
    out, notes = read(written(grouped, sep=sep))
    pd.testing.assert_frame_equal(out, plain)
    assert any(
        "spaces or apostrophes grouping thousands read in columns ['down']" in n for n in notes
    )


def test_a_unicode_minus_sign_is_a_minus() -> None:
    frame = raw_frame(10)
    frame["up"] = [f"\u2212{v}" for v in range(10)]
    out, _ = read(to_csv(frame))
    assert out["up"].tolist() == [-float(v) for v in range(10)]


def test_spaces_inside_other_text_stay_an_error() -> None:
    frame = raw_frame(10)
    frame["down"] = ["1 2"] + [str(v) for v in range(9)]  # not three digits after the space
    with pytest.raises(DataValidationError, match="column 'down' is not numeric"):
        read(to_csv(frame))


def test_spreadsheet_serial_dates() -> None:
    """A sheet saved as CSV without a date format writes day numbers since 1899-12-30, a
    quarter hour as 0.0104166667 of a day."""
    frame = raw_frame(30, step_s=900, start=pd.Timestamp("2023-03-20 22:00"))
    stamps = pd.to_datetime(frame["time"])
    days = (stamps - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)
    frame["time"] = days.map(lambda d: f"{d:.10f}")
    out, notes = read(to_csv(frame))
    assert out["ds"].tolist() == stamps.tolist()
    assert "meter.csv: column 'time' read as spreadsheet serial dates" in " ".join(notes)
    # Clock times like a written date: placed in the zone (Berlin: UTC+1 until 26 March).
    zoned, _ = read(to_csv(frame), SMALL.model_copy(update={"timezone": "Europe/Berlin"}))
    assert zoned["ds"].tolist() == (stamps - pd.Timedelta(hours=1)).tolist()


def test_a_row_counter_is_not_taken_for_spreadsheet_dates() -> None:
    frame = raw_frame(30)
    frame["time"] = range(19_990, 19_990 + len(frame))  # crosses 20,000: 1954-09-03
    with pytest.raises(DataValidationError, match="cannot be parsed as timestamps"):
        read(to_csv(frame))


def test_a_row_counter_is_not_taken_for_epoch_time() -> None:
    frame = raw_frame(30)
    frame["time"] = range(len(frame))
    with pytest.raises(DataValidationError, match="cannot be parsed as timestamps") as err:
        read(to_csv(frame))
    assert "Unix epoch seconds" in str(err.value)  # the way out


def clock_times(start: str, hours: int, zone: str) -> pd.Series:
    """Local clock times, as a logger in ``zone`` writes them (the autumn hour twice)."""
    utc = pd.date_range(pd.Timestamp(start, tz=zone).tz_convert("UTC"), periods=hours, freq="h")
    return pd.Series(utc.tz_convert(zone).strftime("%Y-%m-%d %H:%M"))


def test_local_clock_time_with_the_autumn_hour_twice_needs_the_zone() -> None:
    frame = raw_frame(48, step_s=3600)
    frame["time"] = clock_times("2016-10-29 12:00", 48, "Europe/Berlin")
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    message = str(err.value)
    assert "duplicated timestamp 2016-10-30 02:00:00 at lines" in message
    assert "daylight-saving time ends" in message
    assert "--timezone Europe/Berlin" in message
    config = SMALL.model_copy(update={"timezone": "Europe/Berlin"})
    out, notes = read(to_csv(frame), config)
    expected = pd.date_range("2016-10-29 10:00", periods=48, freq="h")  # UTC, no gap, no repeat
    assert out["ds"].tolist() == expected.tolist()
    assert "meter.csv: column 'time' read as ISO 8601, Europe/Berlin clock time" in notes


def test_the_autumn_hour_written_twice_with_copied_values_points_at_the_zone_first() -> None:
    # Some loggers (simbench's profiles) write the repeated hour's first values again: every
    # cell of the row repeats, as in files joined with overlapping ends, but the zone is the fix.
    utc = pd.date_range(
        pd.Timestamp("2016-10-30 00:00", tz="Europe/Berlin"), periods=16, freq="15min"
    )
    frame = raw_frame(16, step_s=900)
    frame["time"] = utc.tz_convert("Europe/Berlin").strftime("%Y-%m-%d %H:%M")
    values = [c for c in frame.columns if c != "time"]
    frame.loc[12:15, values] = frame.loc[8:11, values].to_numpy()  # 02:00-02:45 again
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    message = str(err.value)
    assert message.index("--timezone Europe/Berlin") < message.index("if not, line 14 repeats")
    assert "line 14 repeats line 10 in every column" in message
    out, _ = read(to_csv(frame), SMALL.model_copy(update={"timezone": "Europe/Berlin"}))
    assert out["ds"].tolist() == utc.tz_convert("UTC").tz_localize(None).tolist()


def test_clock_time_in_the_skipped_spring_hour_is_an_error_naming_it() -> None:
    frame = raw_frame(3, step_s=1800)
    frame["time"] = ["2016-03-27 01:30", "2016-03-27 02:30", "2016-03-27 03:00"]
    config = SMALL.model_copy(update={"timezone": "Europe/Berlin"})
    with pytest.raises(DataValidationError, match="2016-03-27 02:30:00 is a nonexistent time"):
        read(to_csv(frame), config)


def test_timestamps_with_offsets_ignore_the_zone() -> None:
    text = pd.Series(["2016-10-30T02:00:00+02:00", "2016-10-30T02:00:00+01:00"])
    parsed, how = parse_timestamps(text, "America/New_York")
    assert how == "ISO 8601"
    assert parsed.dt.tz_localize(None).tolist() == [
        pd.Timestamp("2016-10-30 00:00"),
        pd.Timestamp("2016-10-30 01:00"),
    ]


def test_unknown_zone_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        PreprocessConfig(timezone="Mars/Olympus")


def test_an_unset_zone_keeps_the_config_hash_of_earlier_releases() -> None:
    # The hash feeds lineage and the retrain check: adding the field must not change it.
    # The literals are the hashes the release before the field computed for these configs.
    assert compute_config_hash(PreprocessConfig(), "d") == (
        "5ec9088793ecbd25f4e55ac6057ec0bcf8fedbb977506923289abc34f509fc84"
    )
    config = PreprocessConfig(target="load", horizon=16, lags=(1, 2))
    assert compute_config_hash(config, "abc") == (
        "fc38d80a802c3f935edf35cb53370ee2695490f265ccd40569817040ccbae475"
    )
    zoned = config.model_copy(update={"timezone": "Europe/Berlin"})
    assert compute_config_hash(zoned, "abc") != compute_config_hash(config, "abc")


def test_iso_files_read_exactly_as_before() -> None:
    frame = raw_frame(20)
    out, notes = read(to_csv(frame))
    assert out["ds"].iloc[0] == START
    assert notes == ()


def test_a_european_meter_export_reads_as_one_regular_utc_series() -> None:
    # Semicolons, decimal commas, day-first dates and local clock time with the autumn hour
    # twice: the way a German load-profile file is written.
    clock = clock_times("2016-10-29 00:00", 72, "Europe/Berlin")
    stamps = pd.to_datetime(clock).dt.strftime("%d.%m.%Y %H:%M")
    values = [f"{v:.3f}".replace(".", ",") for v in np.linspace(0.1, 0.9, len(stamps))]
    text = "Zeit;Last_kW\n" + "".join(f"{t};{v}\n" for t, v in zip(stamps, values, strict=True))
    config = PreprocessConfig(time_col="Zeit", target="Last_kW", timezone="Europe/Berlin")
    out, notes = read(text.encode(), config)
    expected = pd.date_range("2016-10-28 22:00", periods=72, freq="h")
    assert out["ds"].tolist() == expected.tolist()
    assert out["Last_kW"].iloc[-1] == pytest.approx(0.9)
    assert notes == (
        "meter.csv: fields delimited by ';'",
        "meter.csv: column 'Zeit' read as day-first dates, Europe/Berlin clock time",
        "meter.csv: decimal commas read in columns ['Last_kW']",
    )


def test_a_written_pandas_index_is_not_a_covariate() -> None:
    frame = raw_frame(20).set_index(pd.RangeIndex(100, 120))
    data = frame.to_csv().encode()  # the index lands in a column without a header
    out, notes = read(data, PreprocessConfig(target="down"))
    assert list(out.columns) == ["ds", "down", "up"]
    assert notes == (
        "meter.csv: column 'Unnamed: 0' ignored: an unnamed row number (a written index), "
        "not a measurement",
    )
    # An unnamed column that measures something stays an input.
    kept = raw_frame(20).rename(columns={"up": ""})
    out, _ = read(to_csv(kept), PreprocessConfig(target="down"))
    assert list(out.columns) == ["ds", "down", "Unnamed: 2"]


@pytest.mark.parametrize("ids", [("north", "south"), ("101", "102")])
def test_several_series_in_one_file_point_to_the_fleet_option(ids: tuple[str, str]) -> None:
    first, second = raw_frame(12), raw_frame(12, seed=3)
    first["site"], second["site"] = ids
    data = to_csv(pd.concat([first, second]))
    with pytest.raises(DataValidationError) as err:
        read(data, PreprocessConfig(target="down"))
    assert str(err.value).startswith("meter.csv: timestamps not sorted at lines 13-14")
    assert f"column 'site' changes from '{ids[0]}' to '{ids[1]}' there" in str(err.value)
    assert "`flts run --series-col site`" in str(err.value)


def test_windows_1252_and_utf8_with_a_byte_order_mark_both_read() -> None:
    rows = "".join(f"2018-02-05 00:{m:02d}:00;{m},5\n" for m in range(12))
    data = ("Zeit;Verbrauch_Ü\n" + rows).encode("cp1252")
    config = PreprocessConfig(time_col="Zeit", target="Verbrauch_Ü")
    out, notes = read(data, config)
    assert out["Verbrauch_Ü"].iloc[3] == 3.5
    assert "meter.csv: not UTF-8, read as cp1252" in notes
    bom = ("\ufeffZeit;Verbrauch_Ü\n" + rows).encode("utf-8")
    out, notes = read(bom, config)  # Excel's UTF-8: the mark is not part of the first name
    assert list(out.columns) == ["ds", "Verbrauch_Ü"]
    assert not [note for note in notes if "UTF-8" in note]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_excel_unicode_text_reads_as_the_plain_file(encoding: str) -> None:
    """Excel's "Unicode Text" export: UTF-16 with a byte-order mark, fields delimited by tabs."""
    frame = raw_frame(30)
    plain, _ = read(to_csv(frame))
    text = written(frame, sep="\t").decode()
    data = text.encode(encoding)
    if encoding == "utf-16-be":  # Python writes the mark for "utf-16" and "utf-32" only
        data = codecs.BOM_UTF16_BE + data
    unicode, notes = read(data)
    pd.testing.assert_frame_equal(unicode, plain)
    assert f"meter.csv: not UTF-8, read as {encoding[:6]}" in notes
    # A header below a preamble is found in such a file too.
    below, notes = read(("Meter 17\nkWh\n" + text).encode("utf-16"))
    pd.testing.assert_frame_equal(below, plain)
    assert (
        "meter.csv: header on line 3; the 2 line(s) above it skipped ('Meter 17', 'kWh')" in notes
    )


def test_the_live_replay_reads_any_file_flts_run_reads(tmp_path: Path) -> None:
    from flts.run.live import canonical_csv

    clock = clock_times("2016-10-29 00:00", 30, "Europe/Berlin")
    stamps = pd.to_datetime(clock).dt.strftime("%d.%m.%Y %H:%M")
    text = "Zeit;Last\n" + "".join(f"{t};{i},5\n" for i, t in enumerate(stamps))
    source = tmp_path / "meter.csv"
    source.write_text(text, encoding="cp1252")
    config = PreprocessConfig(time_col="Zeit", target="Last", timezone="Europe/Berlin")
    out = canonical_csv(source, config, tmp_path / "live" / "a.csv")
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["Zeit", "Last"]
    assert frame["Zeit"].iloc[0] == "2016-10-28T22:00:00Z"  # UTC, ISO 8601
    assert pd.to_datetime(frame["Zeit"]).diff().dropna().eq(pd.Timedelta(hours=1)).all()
    assert frame["Last"].iloc[2] == 2.5


def test_a_delimiter_at_the_end_of_every_line_and_padded_names_read_as_the_plain_file() -> None:
    frame = raw_frame(20)
    frame["down"] = frame["down"].round(2)
    plain, _ = read(to_csv(frame), PreprocessConfig(target="down"))
    text = " time ; down ;\n" + "".join(
        f"{t};{d};\n" for t, d in zip(frame["time"], frame["down"], strict=True)
    )
    out, notes = read(text.encode(), PreprocessConfig(target="down"))
    pd.testing.assert_frame_equal(out, plain[["ds", "down"]])
    assert (
        "meter.csv: column 'Unnamed: 2' ignored: no name and no value (a delimiter at the end "
        "of every line)"
    ) in notes


@pytest.mark.parametrize("time_col", ["Datum", "Uhrzeit"])
def test_a_date_and_a_time_of_day_in_two_columns_read_as_one_timestamp(time_col: str) -> None:
    # Hourly, over midnight: the date column alone would repeat and the clock one restart.
    frame = raw_frame(60, step_s=3600)
    stamps = pd.to_datetime(frame["time"])
    frame.insert(0, "Datum", stamps.dt.strftime("%d.%m.%Y"))
    frame.insert(1, "Uhrzeit", stamps.dt.strftime("%H:%M"))
    config = PreprocessConfig(time_col=time_col, target="down")
    out, notes = read(written(frame.drop(columns=["time"]), sep=";", decimal=","), config)
    assert out["ds"].tolist() == stamps.tolist()
    assert list(out.columns) == ["ds", "down", "up"]  # neither half is an input
    np.testing.assert_allclose(out["down"], frame["down"])
    assert (
        "meter.csv: columns 'Datum' (date) and 'Uhrzeit' (time of day) read together as the "
        "timestamp" in notes
    )
    assert "meter.csv: columns 'Datum' + 'Uhrzeit' read as day-first dates" in notes


def test_a_date_column_with_start_and_end_clock_columns_reads_the_start() -> None:
    # A period's start and end: read at the start, as a period written `A - B` is (the end of
    # a day's last period, 00:00, would otherwise go back in time).
    frame = raw_frame(60, step_s=3600)
    stamps = pd.to_datetime(frame["time"])
    frame["time"] = stamps.dt.strftime("%Y-%m-%d")
    frame["start"] = stamps.dt.strftime("%H:%M")
    frame["end"] = (stamps + pd.Timedelta(hours=1)).dt.strftime("%H:%M")
    split = split_timestamp(pd.read_csv(io.BytesIO(to_csv(frame)), dtype=str), "time")
    assert split is not None
    assert (split.clock_column, split.end_column) == ("start", "end")
    out, _ = read(to_csv(frame), PreprocessConfig(target="down"))
    assert out["ds"].tolist() == stamps.tolist()


def test_a_date_column_with_two_unrelated_clock_columns_is_not_guessed() -> None:
    frame = raw_frame(60, step_s=3600)
    stamps = pd.to_datetime(frame["time"])
    frame["time"] = stamps.dt.strftime("%Y-%m-%d")
    frame["start"] = stamps.dt.strftime("%H:%M")
    frame["logged"] = [f"{(h * 7) % 24:02d}:{h % 60:02d}" for h in range(60)]  # no fixed span
    assert split_timestamp(pd.read_csv(io.BytesIO(to_csv(frame)), dtype=str), "time") is None
    with pytest.raises(DataValidationError, match="duplicated timestamp"):
        read(to_csv(frame), PreprocessConfig(target="down"))


def test_daily_dates_alone_are_no_split_timestamp() -> None:
    frame = raw_frame(30, step_s=86_400)
    stamps = pd.to_datetime(frame["time"])
    frame["time"] = stamps.dt.strftime("%Y-%m-%d")
    out, notes = read(to_csv(frame), PreprocessConfig(target="down"))
    assert out["ds"].tolist() == stamps.tolist()
    assert not [n for n in notes if "read together" in n]


def test_a_true_false_covariate_reads_as_one_and_zero() -> None:
    frame = raw_frame(30)
    frame["holiday"] = [i % 7 == 0 for i in range(30)]  # pandas writes True / False
    frame["holiday"] = frame["holiday"].astype(object)
    frame.loc[3, "holiday"] = None  # an empty cell is missing, as anywhere
    out, notes = read(to_csv(frame), PreprocessConfig(target="down"))
    assert out["holiday"].iloc[:3].tolist() == [1.0, 0.0, 0.0]
    assert np.isnan(out["holiday"].iloc[3])
    assert out["holiday"].iloc[7] == 1.0
    assert "meter.csv: true/false read as 1/0 in columns ['holiday']" in notes
    # The target is a quantity: a true/false target stays an error.
    with pytest.raises(DataValidationError, match="column 'holiday' is not numeric"):
        read(to_csv(frame), PreprocessConfig(target="holiday"))


def test_dates_are_calendar_days_whatever_the_zone() -> None:
    """Daily data with --timezone: converted, local midnight would move by the season (and snap
    an hour onto the grid) and a western zone's holiday flags would read the day before."""
    from flts.forecasting.models.lag_features import HolidayInputs
    from flts.forecasting.prepare import prepare_datasets

    days = pd.date_range("2016-01-01", periods=400, freq="D")
    text = pd.Series(days.strftime("%Y-%m-%d"))
    parsed, how = parse_timestamps(text, "America/Los_Angeles")
    assert how == "ISO 8601, calendar dates (the time zone does not move them)"
    assert parsed.dt.tz_localize(None).tolist() == days.tolist()
    load = 100 + 10 * (days.dayofweek < 5) + np.random.default_rng(0).normal(0, 1, len(days))
    frame = pd.DataFrame({"date": text, "load": load})
    config = PreprocessConfig(
        time_col="date",
        target="load",
        lookback=7,
        horizon=1,
        timezone="America/Los_Angeles",
        holidays="US",
    )
    prepared = prepare_datasets(
        frame.iloc[:340].to_csv(index=False).encode(),
        frame.iloc[340:].to_csv(index=False).encode(),
        config,
        config_hash="h",
    )
    assert not any("snapped" in note for note in prepared.train_notes)
    assert prepared.spec.timezone is None  # holiday days are the dates themselves
    holidays = HolidayInputs.of(prepared.spec)
    assert holidays is not None
    seconds = (pd.DatetimeIndex(["2016-07-04", "2016-07-05"]) - pd.Timestamp(0)).total_seconds()
    assert holidays.flags(seconds.to_numpy()).tolist() == [1.0, 0.0]
    # Clock times are still placed in the zone.
    hourly = pd.Series(["2016-07-04 00:00", "2016-07-04 01:00"])
    _, clock = parse_timestamps(hourly, "America/Los_Angeles")
    assert clock == "ISO 8601, America/Los_Angeles clock time"


@pytest.mark.parametrize(
    ("cells", "delimiter", "style"),
    [
        (["1.5 kW", "2.5 kW", "", "12 kW"], ",", "a unit after every value ('kW')"),
        (["1,5kWh", "2,5kWh", "", "12kWh"], ";", "decimal commas and a unit after every value"),
        (["1.5%", "2.5%", "", "12%"], ",", "a unit after every value ('%')"),
    ],
)
def test_a_unit_after_every_value_is_read_as_the_number(
    cells: list[str], delimiter: str, style: str
) -> None:
    times = pd.date_range("2018-02-05", periods=4, freq="h").strftime("%Y-%m-%d %H:%M")
    frame = pd.DataFrame({"time": times, "down": cells})
    out, notes = read(written(frame, sep=delimiter), PreprocessConfig(target="down"))
    np.testing.assert_array_equal(out["down"].to_numpy(), [1.5, 2.5, np.nan, 12.0])
    assert any(style in note and "columns ['down']" in note for note in notes)


def test_values_in_two_units_are_an_error_naming_them() -> None:
    times = pd.date_range("2018-02-05", periods=3, freq="h").strftime("%Y-%m-%d %H:%M")
    frame = pd.DataFrame({"time": times, "down": ["900 kW", "1.2 MW", "950 kW"]})
    with pytest.raises(DataValidationError, match=r"written in 2 units \(kW, MW\): use one"):
        read(written(frame), PreprocessConfig(target="down"))


def test_no_data_markers_of_grid_operators_are_missing() -> None:
    frame = raw_frame(30).astype({"down": object})
    frame.loc[[2, 7], "down"] = ["ND", "n/d"]
    out, _ = read(to_csv(frame))
    assert out["down"].isna().to_numpy().nonzero()[0].tolist() == [2, 7]


def test_an_unquoted_delimiter_in_a_value_is_an_error_naming_the_line() -> None:
    # pandas would make the first field an index and shift every column one place.
    rows = "".join(f"Mon,January {d:02d}, 2021,{d}.5\n" for d in range(1, 30))
    data = f"Daily energy export\nDay,Date,Energy\n{rows}".encode()
    with pytest.raises(DataValidationError) as err:
        read(data, PreprocessConfig(time_col="Date", target="Energy"))
    assert str(err.value) == (
        "meter.csv: cannot be read as CSV (line 3 has 4 fields ('Mon', 'January 01', ' 2021', "
        "'1.5') where the header names 3 columns ('Day', 'Date', 'Energy'): quote each value "
        "that holds the delimiter ',', or name every column in the header)"
    )


def test_a_delimiter_ending_every_data_line_but_not_the_header_is_read() -> None:
    frame = raw_frame(30)
    text = "time,down,up\n" + "".join(f"{t},{d},{u},\n" for t, d, u in frame.to_numpy())
    out, _ = read(text.encode())
    assert out["down"].tolist() == pytest.approx(frame["down"].tolist())
    assert list(out.columns) == ["ds", "down", "up"]


def test_a_column_of_weekday_names_beside_the_date_is_left_out_with_a_note() -> None:
    frame = raw_frame(30, step_s=86_400)
    days = pd.to_datetime(frame["time"])
    frame.insert(1, "Weekday", days.dt.day_name())
    frame.insert(2, "Mon.", days.dt.strftime("%b."))  # abbreviated, with a full stop
    out, notes = read(to_csv(frame), PreprocessConfig(season_steps=7))
    assert list(out.columns) == ["ds", "down", "up"]
    assert (
        "meter.csv: column 'Weekday' ignored: day or month names ('Monday', ...) repeat the "
        "timestamps' calendar, which the models read from the time itself"
    ) in notes
    assert any("column 'Mon.' ignored: day or month names ('Feb.'" in n for n in notes)
    frame.loc[3, "Weekday"] = "closed"  # not a calendar name: text a model cannot read
    with pytest.raises(DataValidationError, match="column 'Weekday' is not numeric"):
        read(to_csv(frame), PreprocessConfig(season_steps=7))
