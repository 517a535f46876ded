"""Each kind of bad CSV fails with its own message naming the file, column and line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _rawcsv import SMALL, START, csv_pair, raw_frame, to_csv

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.data import (
    apply_clip,
    fit_clip_bounds,
    infer_step_seconds,
    read_csv_bytes,
    read_csv_with_notes,
    regularise,
)
from flts.forecasting.prepare import prepare_datasets
from flts.forecasting.time_step import TimeStep


def read(data: bytes, config: PreprocessConfig = SMALL, source: str = "train.csv") -> pd.DataFrame:
    return read_csv_bytes(data, source=source, config=config)


def test_valid_csv_gives_ds_and_float_columns_target_first() -> None:
    frame = raw_frame(20)[["time", "up", "down"]]
    out = read(to_csv(frame))
    assert list(out.columns) == ["ds", "down", "up"]
    assert str(out["ds"].dtype) == "datetime64[ns]"
    assert out["down"].dtype == np.float64
    assert out["ds"].iloc[0] == START


def test_missing_time_column() -> None:
    data = to_csv(raw_frame(10).rename(columns={"time": "when"}))
    with pytest.raises(DataValidationError) as err:
        read(data)
    assert str(err.value) == (
        "train.csv: time column 'time' not found; columns are ['when', 'down', 'up']; the "
        "timestamps look to be in 'when': --time-col 'when'"
    )
    # Two columns of timestamps: both named; none: no hint.
    two = raw_frame(10).rename(columns={"time": "start"})
    two.insert(1, "end", two["start"])
    with pytest.raises(DataValidationError) as err:
        read(to_csv(two))
    assert str(err.value).endswith(
        "; columns holding timestamps: ['start', 'end'] (name one with --time-col)"
    )
    numbered = raw_frame(10).rename(columns={"time": "when"})
    numbered["when"] = range(10)  # numbers are measurements, not timestamps
    with pytest.raises(DataValidationError) as err:
        read(to_csv(numbered))
    assert str(err.value).endswith("columns are ['when', 'down', 'up']")


def test_a_header_below_a_preamble_is_found_and_lines_keep_their_numbers() -> None:
    """Meter and portal exports write a few lines above the header: they are skipped, named in a
    note, and a message about the data names the file's own line."""
    rows = "".join(f"2018-02-05 00:{m:02d}:00,{m}\n" for m in range(12))
    data = ("Meter: 4711\nUnit: kW\n\ntime,down\n" + rows).encode()
    out, notes = read_csv_with_notes(data, source="train.csv", config=PreprocessConfig())
    assert out["down"].tolist() == [float(m) for m in range(12)]
    assert notes[0] == (
        "train.csv: header on line 4; the 3 line(s) above it skipped ('Meter: 4711', "
        "'Unit: kW', ...)"
    )
    broken = data.replace(b"00:05:00,5", b"00:05:00,five")  # data row 5: line 10 of the file
    with pytest.raises(DataValidationError, match="line 10"):
        read(broken)


def test_lines_stay_the_files_own_in_later_checks_too() -> None:
    """The grid check runs after reading (``regularise``): it still counts the preamble and the
    units row when it names lines."""
    rows = "".join(f"2018-02-05 00:{m:02d}:00,{m}\n" for m in range(40))
    train = ("Meter 1\nkW\ntime,down\n,kW\n" + rows.replace("00:07:00", "00:06:30")).encode()
    test = ("time,down\n" + "".join(f"2018-02-05 01:{m:02d}:00,{m}\n" for m in range(40))).encode()
    with pytest.raises(DataValidationError, match="rows at lines 11 and 12 fall on the same"):
        prepare_datasets(train, test, PreprocessConfig(target="down", lags=[]), config_hash="x")


def half_hours_on_a_quarter_hour_grid(start: str, rows: int) -> bytes:
    """A download that writes every quarter hour but holds values every half hour."""
    stamps = pd.date_range(start, periods=rows, freq="15min")
    lines = [
        f"{t:%Y-%m-%d %H:%M},{'' if t.minute % 30 else 100 + i % 48}" for i, t in enumerate(stamps)
    ]
    return ("time,down\n" + "\n".join(lines) + "\n").encode()


def test_rows_without_values_do_not_set_the_step() -> None:
    train = half_hours_on_a_quarter_hour_grid("2024-01-01", 4 * 96)
    test = half_hours_on_a_quarter_hour_grid("2024-01-05", 2 * 96)
    prepared = prepare_datasets(train, test, PreprocessConfig(target="down"), config_hash="x")
    assert prepared.spec.step_seconds == 1800
    assert "train.csv: 192 rows with no value in any column left out" in " ".join(
        prepared.train_notes
    )


def test_a_sporadic_empty_row_is_a_gap_and_later_lines_keep_their_numbers() -> None:
    stamps = pd.date_range("2018-02-05", periods=200, freq="min")
    rows = [f"{t:%Y-%m-%d %H:%M:%S},{i}" for i, t in enumerate(stamps)]
    rows[5] = f"{stamps[5]:%Y-%m-%d %H:%M:%S},"  # no value: left out, filled as a missing step
    test_stamps = pd.date_range("2018-02-05 04:00", periods=60, freq="min")
    test = ("time,down\n" + "".join(f"{t},{i}\n" for i, t in enumerate(test_stamps))).encode()
    clash = rows.copy()
    clash[21] = "2018-02-05 00:20:20,21"  # data row 21: line 23, on the slot of line 22
    data = ("time,down\n" + "\n".join(clash) + "\n").encode()
    config = PreprocessConfig(target="down", lags=[])
    with pytest.raises(DataValidationError, match="rows at lines 22 and 23 fall on the same"):
        prepare_datasets(data, test, config, config_hash="x")
    data = ("time,down\n" + "\n".join(rows) + "\n").encode()
    prepared = prepare_datasets(data, test, config, config_hash="x")
    assert prepared.spec.step_seconds == 60
    assert "train.csv: 1 missing time steps inserted" in prepared.train_notes


def test_excel_delimiter_line_names_the_delimiter() -> None:
    rows = "".join(f"2018-02-05 00:{m:02d}:00;{m},5\n" for m in range(12))
    data = ('"sep=;"\ntime;down\n' + rows).encode()
    out, notes = read_csv_with_notes(data, source="train.csv", config=PreprocessConfig())
    assert out["down"].iloc[2] == 2.5
    assert "train.csv: line 1 ('sep=;', Excel's delimiter line) read as the delimiter" in notes
    with pytest.raises(DataValidationError, match="line 5"):  # data row 2, below two lines
        read(data.replace(b"2018-02-05 00:02:00", b"yesterday"))


def notes_of(data: bytes) -> tuple[pd.DataFrame, tuple[str, ...]]:
    return read_csv_with_notes(data, source="train.csv", config=PreprocessConfig())


def test_a_row_of_units_under_the_header_is_skipped_and_lines_keep_their_numbers() -> None:
    rows = "".join(f"2018-02-05 00:{m:02d}:00,{m},2\n" for m in range(6))
    data = ("time,down,up\n,kW,kvar\n" + rows).encode()
    out, notes = notes_of(data)
    assert out["down"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert notes[0] == (
        "train.csv: line 2 under the header skipped: no timestamp ('kW kvar': units or a "
        "description, not data)"
    )
    with pytest.raises(DataValidationError, match=r"first at line 5: 'soon'"):
        read(data.replace(b"2018-02-05 00:02:00", b"soon"))  # data row 2, below the units


def test_a_footer_and_empty_spreadsheet_rows_are_skipped() -> None:
    data = to_csv(raw_frame(5)) + b"Total,123,45\n,,\n,,\n"
    out, notes = notes_of(data)
    assert len(out) == 5
    assert notes[0] == (
        "train.csv: the last lines 7-9 skipped: no timestamp ('Total': a footer or empty rows, "
        "not data)"
    )


def test_rows_without_a_timestamp_within_the_data_stay_an_error() -> None:
    """Only the ends of a file are taken for units or footers: a row without a time in the
    middle, or a truncated timestamp at the end, may be data."""
    middle = to_csv(raw_frame(5)).replace(b"\n2018-02-05 00:02:00", b"\nTotal", 1)
    with pytest.raises(DataValidationError, match="first at line 4: 'Total'"):
        read(middle)
    truncated = to_csv(raw_frame(5)) + b"2018-02-0\n"
    with pytest.raises(DataValidationError, match="only the last line"):
        read(truncated)
    four = to_csv(raw_frame(8)) + b"Total,1,2\nMean,1,2\nMin,1,2\nMax,1,2\n"
    with pytest.raises(DataValidationError, match="cannot be parsed as timestamps"):
        read(four)  # more than three labelled rows: a table, not a footer


def test_unparseable_timestamps_are_counted_and_located() -> None:
    frame = raw_frame(10)
    frame.loc[3, "time"] = "xx"
    frame.loc[7, "time"] = "not a time"
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    assert str(err.value) == (
        "train.csv: 2 of 10 values in column 'time' cannot be parsed as timestamps "
        "(first at line 5: 'xx'); write them as ISO 8601 (2024-01-31 13:45, with +01:00 or Z "
        "for the zone), day-first or month-first dates, or Unix epoch seconds"
    )


def test_unknown_target() -> None:
    with pytest.raises(DataValidationError) as err:
        read(to_csv(raw_frame(10)), PreprocessConfig(target="foo"))
    assert str(err.value) == (
        "train.csv: target 'foo' not in columns ['down', 'up']; name the column to forecast "
        "with --target"
    )
    with pytest.raises(DataValidationError) as err:  # one value column: that one
        read(to_csv(raw_frame(10)[["time", "up"]]), PreprocessConfig(target="foo"))
    assert str(err.value).endswith(
        "target 'foo' not in columns ['up']; the file's one value column is 'up': --target 'up'"
    )


@pytest.mark.parametrize(("written", "hint"), [("Down", "'Down'"), ("dwon", "'dwon'")])
def test_a_target_written_otherwise_is_suggested(written: str, hint: str) -> None:
    frame = raw_frame(5).rename(columns={"down": written})
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    assert str(err.value).endswith(f"; did you mean --target {hint}?")


def test_a_time_column_written_otherwise_is_suggested() -> None:
    frame = raw_frame(5).rename(columns={"time": "Time"})
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    assert str(err.value).endswith("; did you mean --time-col 'Time'?")


def test_unknown_feature_column() -> None:
    with pytest.raises(DataValidationError, match=r"feature columns \['rnti'\] not in columns"):
        read(to_csv(raw_frame(10)), PreprocessConfig(feature_columns=("up", "rnti")))


def test_non_numeric_column_names_column_line_and_value() -> None:
    frame = raw_frame(20).astype({"up": object})
    frame.loc[15, "up"] = "abc"
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame), source="PobleSec.csv")
    assert str(err.value) == (
        "PobleSec.csv: column 'up' is not numeric (line 17: 'abc'; 1 such values); only "
        "numeric columns can be model inputs: leave it out with `--drop up` or choose the "
        "inputs with `--features down` (config: feature_columns)"
    )


def test_non_numeric_column_not_selected_is_ignored() -> None:
    frame = raw_frame(20).assign(site="PobleSec")
    out = read(to_csv(frame), PreprocessConfig(feature_columns=("up",)))
    assert list(out.columns) == ["ds", "down", "up"]


def test_empty_cells_are_missing_values_not_errors() -> None:
    frame = raw_frame(20).astype({"up": object})
    frame.loc[[4, 5], "up"] = ""
    out = read(to_csv(frame))
    assert out["up"].isna().sum() == 2


def test_infinite_value_rejected() -> None:
    frame = raw_frame(20).astype({"down": object})
    frame.loc[2, "down"] = "inf"
    with pytest.raises(
        DataValidationError, match="column 'down' holds an infinite value at line 4"
    ):
        read(to_csv(frame))


def test_column_without_any_value_rejected() -> None:
    frame = raw_frame(5).assign(up="")
    with pytest.raises(DataValidationError, match="column 'up' has no values at all"):
        read(to_csv(frame))


def test_duplicated_timestamp() -> None:
    frame = raw_frame(20)
    frame.loc[9, "time"] = frame.loc[8, "time"]
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    assert (
        str(err.value) == "train.csv: duplicated timestamp 2018-02-05 00:08:00 at lines 10 and 11"
    )


def test_unsorted_timestamps() -> None:
    frame = raw_frame(20)
    frame.loc[[8, 9], "time"] = frame.loc[[9, 8], "time"].to_numpy()
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    assert str(err.value) == (
        "train.csv: timestamps not sorted at lines 10-11 "
        "(2018-02-05 00:08:00 after 2018-02-05 00:09:00); if the rows are only out of order, "
        "`flts run --sort-rows` sorts them"
    )


def test_a_file_listed_newest_first_reads_as_the_same_series_with_a_note() -> None:
    frame = raw_frame(20)
    forward = read(to_csv(frame))
    backward, notes = read_csv_with_notes(
        to_csv(frame.iloc[::-1]), source="train.csv", config=SMALL
    )
    pd.testing.assert_frame_equal(backward, forward)
    assert (
        "train.csv: rows listed newest first (2018-02-05 00:19:00 on line 2): read in reverse"
        in notes
    )


def test_a_newest_first_file_cites_its_own_lines_when_rows_share_a_slot() -> None:
    frame = raw_frame(20)
    frame.loc[10, "time"] = str(START + pd.Timedelta(seconds=9 * 60 + 20))  # 20 s after row 9
    train = to_csv(frame.iloc[::-1])  # row 9 on line 12, row 10 on line 11
    with pytest.raises(DataValidationError) as err:
        prepare_datasets(
            train,
            to_csv(raw_frame(30, start=START + pd.Timedelta(hours=1))),
            SMALL,
            config_hash="h",
        )
    assert "train.csv: rows at lines 12 and 11 fall on the same 60 s slot" in str(err.value)


def test_a_newest_first_file_with_a_row_out_of_place_says_why_it_is_not_reversed() -> None:
    frame = raw_frame(20).iloc[::-1].reset_index(drop=True)
    frame.loc[[4, 5], "time"] = frame.loc[[5, 4], "time"].to_numpy()
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    assert str(err.value) == (
        "train.csv: rows are listed newest first (18 of 19 rows are earlier than the row above "
        "them), but line 7 goes forward in time (2018-02-05 00:14:00, 2018-02-05 00:15:00) at "
        "lines 6-7: a file is read in reverse only when every row is earlier than the one above it"
    )


def test_a_covariate_changing_on_the_second_row_is_no_series_id() -> None:
    # One row before the step back is no evidence of a column held constant (a long format).
    frame = raw_frame(20)
    frame.loc[[0, 1], "time"] = frame.loc[[1, 0], "time"].to_numpy()
    with pytest.raises(DataValidationError) as err:
        read(to_csv(frame))
    assert "--series-col" not in str(err.value)


def test_rows_copied_by_joining_files_with_overlapping_ends_are_named() -> None:
    frame = raw_frame(20)
    joined = pd.concat([frame.iloc[:10], frame.iloc[9:]], ignore_index=True)  # row 9 twice
    with pytest.raises(DataValidationError) as err:
        read(to_csv(joined))
    assert str(err.value) == (
        "train.csv: duplicated timestamp 2018-02-05 00:09:00 at lines 11 and 12; line 12 "
        "repeats line 11 in every column, as files joined with overlapping ends do: remove "
        "the repeated rows"
    )
    overlap = pd.concat([frame.iloc[:12], frame.iloc[8:]], ignore_index=True)  # 4 rows again
    with pytest.raises(DataValidationError, match="line 14 repeats line 10 in every column"):
        read(to_csv(overlap))
    changed = joined.copy()
    changed.loc[10, "down"] += 1.0  # same time, another value: no such hint
    with pytest.raises(DataValidationError) as err:
        read(to_csv(changed))
    assert "repeats" not in str(err.value)


def test_header_only_file() -> None:
    with pytest.raises(DataValidationError, match=r"train\.csv: has a header but no data rows"):
        read(b"time,down,up\n")


def test_empty_file() -> None:
    with pytest.raises(DataValidationError, match=r"train\.csv: cannot be read as CSV"):
        read(b"")


def test_timezone_offsets_become_naive_utc() -> None:
    frame = raw_frame(3)
    frame["time"] = [
        "2018-02-05T01:00:00+01:00",
        "2018-02-05T01:01:00+01:00",
        "2018-02-05T00:02:00Z",
    ]
    out = read(to_csv(frame))
    assert list(out["ds"]) == [
        START,
        START + pd.Timedelta(minutes=1),
        START + pd.Timedelta(minutes=2),
    ]


def test_too_few_training_rows_names_file_rows_and_need() -> None:
    train, test = csv_pair(train_rows=50)
    with pytest.raises(DataValidationError) as err:
        prepare_datasets(train, test, SMALL, config_hash="h")
    assert str(err.value) == (
        "train.csv: too few rows for the configured windows: has 50 rows, needs 106 "
        "(lookback 5 + horizon 2 - 1 + 100 training windows)"
    )


def test_too_few_test_rows_names_file_rows_and_need() -> None:
    train, test = csv_pair(test_rows=1)
    with pytest.raises(DataValidationError) as err:
        prepare_datasets(train, test, SMALL, config_hash="h")
    assert str(err.value) == (
        "test.csv: too few rows for the configured windows: has 1 rows, needs 2 "
        "(a horizon of 2 for one scoring window)"
    )


def test_a_short_test_file_is_scored_on_every_row_with_training_context() -> None:
    """History comes from the end of training, so even 2 test rows give one origin."""
    train, test = csv_pair(test_rows=2)
    prepared = prepare_datasets(train, test, SMALL, config_hash="h")
    context = prepared.test_context_rows
    assert context == max(SMALL.lookback, SMALL.season_steps or 0) == 10
    assert len(prepared.test) == context + 2


def test_test_file_overlapping_training_is_rejected() -> None:
    train = raw_frame(140)
    test = raw_frame(30, start=START + pd.Timedelta(minutes=130))
    with pytest.raises(DataValidationError) as err:
        prepare_datasets(to_csv(train), to_csv(test), SMALL, config_hash="h")
    assert str(err.value) == (
        "test data overlaps training data: test.csv starts at 2018-02-05 02:10:00 but train.csv "
        "ends at 2018-02-05 02:19:00 (10 test rows at or before the end of training)"
    )


def test_a_test_file_from_before_the_training_file_is_named_so() -> None:
    train = raw_frame(140, start=START + pd.Timedelta(hours=3))
    test = raw_frame(30)  # 00:00-00:29, the training file starts at 03:00
    with pytest.raises(DataValidationError) as err:
        prepare_datasets(to_csv(train), to_csv(test), SMALL, config_hash="h")
    assert str(err.value) == (
        "test data precedes training data: test.csv ends at 2018-02-05 00:29:00, before "
        "train.csv starts at 2018-02-05 03:00:00; the test file must follow the training file "
        "in time (are the two files swapped?)"
    )


def test_test_file_with_another_step_is_rejected() -> None:
    train, _ = csv_pair()
    test = raw_frame(30, start=START + pd.Timedelta(hours=5), step_s=120)
    with pytest.raises(
        DataValidationError, match=r"test\.csv: rows are 120 s apart .* step is 60 s"
    ):
        prepare_datasets(train, to_csv(test), SMALL, config_hash="h")


def test_how_the_test_file_was_read_is_in_its_notes() -> None:
    train, _ = csv_pair()
    test = raw_frame(30, start=START + pd.Timedelta(hours=5)).astype({"down": object})
    test.loc[4, "down"] = "-"
    prepared = prepare_datasets(train, to_csv(test.iloc[::-1]), SMALL, config_hash="h")
    assert "test.csv: column 'down': cells written 1 x '-' read as missing" in prepared.test_notes
    assert any("test.csv: rows listed newest first" in note for note in prepared.test_notes)


def test_test_file_missing_a_training_column_is_rejected() -> None:
    train, _ = csv_pair()
    test = raw_frame(30, start=START + pd.Timedelta(hours=5)).drop(columns=["up"])
    with pytest.raises(DataValidationError) as err:
        prepare_datasets(train, to_csv(test), SMALL, config_hash="h")
    assert str(err.value) == (
        "test.csv: no column 'up', an input the models read in train.csv: every origin's forecast "
        "needs it, so the test file must hold it too; or leave it out of both with `--drop up` "
        "(config: feature_columns)"
    )


def test_infer_step_is_median_spacing() -> None:
    ds = pd.Series(
        pd.to_datetime(
            ["2018-01-01 00:00", "2018-01-01 00:02", "2018-01-01 00:04", "2018-01-01 00:10"]
        )
    )
    assert infer_step_seconds(ds) == 120


def test_regularise_inserts_gaps_and_interpolates_in_time() -> None:
    frame = read(to_csv(raw_frame(10)))
    frame.loc[0, "up"] = np.nan
    gappy = frame.drop(index=[4, 5]).reset_index(drop=True)
    out, notes, filled = regularise(gappy, TimeStep(60), source="train.csv")
    assert filled.tolist() == [i in (4, 5) for i in range(10)]  # the target's inserted rows
    assert len(out) == 10
    assert list(out["ds"]) == list(frame["ds"])
    # Linear in time across the 3-minute gap between rows 3 and 6.
    expected = frame.loc[3, "down"] + (frame.loc[6, "down"] - frame.loc[3, "down"]) / 3
    assert math.isclose(out.loc[4, "down"], expected)
    # Leading edge takes the nearest observed value.
    assert out.loc[0, "up"] == frame.loc[1, "up"]
    assert notes == (
        "train.csv: 10 rows on a 60 s grid",
        "train.csv: 2 missing time steps inserted",
        "train.csv: 5 missing values filled (down: 2, up: 3)",
    )


def test_regularise_snaps_jittered_timestamps() -> None:
    frame = read(to_csv(raw_frame(5)))
    frame.loc[2, "ds"] += pd.Timedelta(seconds=20)
    out, notes, _ = regularise(frame, TimeStep(60), source="f.csv")
    assert out.loc[2, "ds"] == START + pd.Timedelta(minutes=2)
    assert "f.csv: 1 timestamps snapped to the grid" in notes


def test_regularise_rejects_rows_denser_than_step() -> None:
    frame = read(to_csv(raw_frame(5)))
    with pytest.raises(
        DataValidationError, match=r"f\.csv: rows at lines 2 and 3 fall on the same"
    ):
        regularise(frame, TimeStep(600), source="f.csv")


def test_clip_bounds_come_from_training_only() -> None:
    train = pd.DataFrame(
        {"ds": pd.date_range(START, periods=101, freq="min"), "down": np.arange(101.0)}
    )
    test = pd.DataFrame(
        {"ds": pd.date_range(START, periods=3, freq="min"), "down": [-50.0, 50.0, 1e6]}
    )
    bounds = fit_clip_bounds(train, (0.1, 0.9))
    assert bounds == {"down": (10.0, 90.0)}
    clipped, changed = apply_clip(test, bounds)
    assert list(clipped["down"]) == [10.0, 50.0, 90.0]
    assert changed == 2


def test_no_training_context_after_a_gap_between_the_files() -> None:
    train, _ = csv_pair()
    later = raw_frame(40, start=START + pd.Timedelta(minutes=150), seed=1)  # 10-step gap
    prepared = prepare_datasets(train, to_csv(later), SMALL, config_hash="h")
    assert prepared.test_context_rows == 0
    assert len(prepared.test) == 40
    assert (
        "test.csv: starts 10 steps after the end of training, so no training context is "
        "carried; the first 10 test rows only serve as history"
    ) in prepared.test_notes


def test_the_longest_gap_of_an_hour_or_more_is_named() -> None:
    frame = read(to_csv(raw_frame(200)))
    gappy = frame.drop(index=range(50, 125)).reset_index(drop=True)  # 75 minutes missing
    gappy.loc[10, "down"] = np.nan  # a shorter gap elsewhere
    _out, notes, filled = regularise(gappy, TimeStep(60), source="train.csv")
    assert int(filled.sum()) == 76
    assert notes[-1] == (
        "train.csv: longest gap in the target: 0 days 01:15:00 from 2018-02-05 00:50:00 (filled "
        "by a straight line so the grid stays regular; filled values are neither learned from "
        "nor scored, except by MSTL, which fits an unbroken series)"
    )
    _out, notes, _ = regularise(
        frame.drop(index=[5]).reset_index(drop=True), TimeStep(60), source="f"
    )
    assert not [note for note in notes if "longest gap" in note]  # a minute is not worth it


def test_a_meter_register_is_forecast_as_given_with_a_note_saying_what_it_looks_like() -> None:
    train = raw_frame(400)
    test = raw_frame(40, start=START + pd.Timedelta(minutes=400), seed=1)
    for frame in (train, test):
        frame["down"] = np.abs(frame["down"]) / 1e6
    running = pd.concat([train, test], ignore_index=True)["down"].cumsum()
    train["down"], test["down"] = running.iloc[:400].to_numpy(), running.iloc[400:].to_numpy()
    prepared = prepare_datasets(to_csv(train), to_csv(test), SMALL, config_hash="x")
    [note] = [n for n in prepared.train_notes if "running total" in n]
    assert note.startswith("train.csv: target 'down' never decreases over 400 rows and rises")
    assert "write the differences between rows as the target" in note
    # An ordinary load, or a register that was reset once, gets no such note.
    plain = prepare_datasets(*csv_pair(), SMALL, config_hash="x")
    assert not [n for n in plain.train_notes if "running total" in n]
    train.loc[200:, "down"] -= train.loc[199, "down"]  # back to zero
    reset = prepare_datasets(to_csv(train), to_csv(test), SMALL, config_hash="x")
    assert not [n for n in reset.train_notes if "running total" in n]
