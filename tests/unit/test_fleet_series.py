"""Fleet identifiers and inputs: sanitising, collisions, aliases, splitting a long CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flts.cli.fleet_cmd import parse_replicas
from flts.cli.fleet_inputs import fleet_series, pair_directories, split_long_csv
from flts.domain.config import PreprocessConfig
from flts.domain.series import (
    champion_alias,
    sanitise_all,
    sanitise_series_id,
    series_identifier,
)
from flts.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("cell-7", "cell-7"),
        ("cell 7/a", "cell_7_a"),
        ("../etc", "etc"),
        ("  Zürich.1 ", "Z_rich.1"),
        ("x" * 300, "x" * 100),
    ],
)
def test_series_ids_become_key_safe(raw: str, safe: str) -> None:
    assert sanitise_series_id(raw) == safe


@pytest.mark.parametrize("raw", ["", "  ", "...", "_/"])
def test_an_id_with_nothing_usable_is_rejected(raw: str) -> None:
    with pytest.raises(ConfigError, match="no character usable"):
        sanitise_series_id(raw)


def test_sanitising_reports_changes_and_rejects_collisions() -> None:
    mapping, notices = sanitise_all(["a b", "c", "c"])
    assert mapping == {"a b": "a_b", "c": "c"}
    assert notices == ["series id 'a b' is used as 'a_b' (unsafe characters replaced)"]
    with pytest.raises(ConfigError, match="'a b' and 'a/b' both become 'a_b'"):
        sanitise_all(["a b", "a/b"])


def test_identifier_rule_and_run_identifier_without_separator() -> None:
    assert series_identifier("fleet-1", "cell 7") == "fleet-1/cell_7"
    with pytest.raises(ConfigError, match="must not contain '/'"):
        series_identifier("a/b", "c")


def test_champion_alias_per_series_and_unchanged_for_single_runs() -> None:
    assert champion_alias("flts-run-1") == "champion"
    assert champion_alias("fleet-1/cell_7") == "champion--fleet-1--cell_7"
    dotted = champion_alias("fleet-1/cell.7")
    other = champion_alias("fleet-1/cell_7.")
    assert dotted.startswith("champion--fleet-1--cell_7-")
    assert dotted != other
    assert len(champion_alias("f/" + "x" * 300)) <= 255


def _long(path: Path, rows: dict[str, list[float]], start: str) -> None:
    frames = []
    for cell, values in rows.items():
        times = pd.date_range(start, periods=len(values), freq="1h")
        frames.append(pd.DataFrame({"time": times, "cell": cell, "load": values}))
    pd.concat(frames).to_csv(path, index=False)


def test_long_csv_splits_per_series_and_bad_series_get_a_reason(tmp_path: Path) -> None:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    _long(
        train,
        {"a": [1.0, 2.0, 3.0], "flat b": [5.0, 5.0, 5.0], "only-train": [1.0, 2.0]},
        "2024-01-01",
    )
    _long(test, {"a": [4.0], "flat b": [5.0]}, "2024-01-02")
    pairs, raw_ids, notices = split_long_csv(train, test, "cell", tmp_path / "out")
    assert set(pairs) == {"a", "flat_b", "only-train"}
    assert raw_ids["flat_b"] == "flat b"
    assert notices
    a_train = pd.read_csv(pairs["a"][0])  # type: ignore[arg-type]
    assert list(a_train.columns) == ["time", "load"]
    assert a_train["load"].tolist() == [1, 2, 3]
    assert pairs["only-train"][1] is None

    checked: list[str] = []

    def config_for(path: Path) -> PreprocessConfig:
        return PreprocessConfig(target="load")

    def check(train_csv: Path, test_csv: Path, config: PreprocessConfig) -> None:
        checked.append(train_csv.parent.name)

    series = {
        s.series_id: s for s in fleet_series("fleet", pairs, raw_ids, "load", config_for, check)
    }
    assert series["a"].reason is None
    assert series["a"].identifier == "fleet/a"
    assert series["a"].preprocess_config_json is not None
    assert "constant" in str(series["flat b"].reason)
    assert series["only-train"].reason == "no test rows"
    assert checked == ["a"]


def test_unknown_series_column_is_named(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    _long(train, {"a": [1.0, 2.0]}, "2024-01-01")
    with pytest.raises(ConfigError, match="no series column 'site'"):
        split_long_csv(train, train, "site", tmp_path / "out")


def test_a_long_csv_footer_naming_no_series_is_left_out(tmp_path: Path) -> None:
    rows = "".join(f"2024-01-01 {h:02d}:00,{s},{h}\n" for h in range(12) for s in ("a", "b"))
    train = tmp_path / "train.csv"
    train.write_text("Export of 2024-01-02\ntime,site,load\n" + rows + "Total,,132\n,,\n")
    pairs, _, notices = split_long_csv(train, train, "site", tmp_path / "out")
    assert set(pairs) == {"a", "b"}
    assert f"{train}: the last 2 row(s) from line 27 name no series" in notices[0]
    middle = tmp_path / "middle.csv"
    middle.write_text(
        "time,site,load\n2024-01-01 00:00,a,1\n2024-01-01 00:00,,2\n2024-01-01 01:00,a,3\n"
    )
    with pytest.raises(ConfigError, match="line 3 has no 'site' value"):
        split_long_csv(middle, middle, "site", tmp_path / "out2")


def test_directories_pair_by_file_stem(tmp_path: Path) -> None:
    (tmp_path / "tr").mkdir()
    (tmp_path / "te").mkdir()
    for name in ("s1", "s2"):
        (tmp_path / "tr" / f"{name}.csv").write_text("time,load\n")
    (tmp_path / "te" / "s1.csv").write_text("time,load\n")
    pairs, raw_ids, _ = pair_directories(tmp_path / "tr", tmp_path / "te")
    assert pairs["s1"] == (tmp_path / "tr" / "s1.csv", tmp_path / "te" / "s1.csv")
    assert pairs["s2"][1] is None
    assert raw_ids == {"s1": "s1", "s2": "s2"}


def test_replicas_option() -> None:
    assert parse_replicas("train-gru=2, inference=3") == {"train-gru": 2, "inference": 3}
    for bad in ("train-gru", "nope=2", "eval=0", "eval=x"):
        with pytest.raises(Exception, match="--replicas"):
            parse_replicas(bad)


def test_each_series_is_checked_at_its_own_step_and_a_short_one_gets_a_reason(
    tmp_path: Path,
) -> None:
    from flts.cli.run_inputs import validate_inputs
    from flts.forecasting.prepare import PreparedData

    frames_train, frames_test = [], []
    for cell, freq, rows in (
        ("hourly", "1h", 600),
        ("half-hourly", "30min", 1200),
        ("short", "1h", 40),
    ):
        times = pd.date_range("2024-01-01", periods=rows + 48, freq=freq)
        load = 10 + np.sin(np.arange(len(times)) / 7.0) + np.arange(len(times)) % 5
        frame = pd.DataFrame({"time": times, "cell": cell, "load": load})
        frames_train.append(frame.iloc[:rows])
        frames_test.append(frame.iloc[rows:])
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.concat(frames_train).to_csv(train, index=False)
    pd.concat(frames_test).to_csv(test, index=False)
    pairs, raw_ids, _ = split_long_csv(train, test, "cell", tmp_path / "out")
    steps: dict[str, int] = {}

    def check(train_csv: Path, test_csv: Path, config: PreprocessConfig) -> PreparedData:
        prepared = validate_inputs(train_csv, test_csv, config)
        steps[train_csv.parent.name] = prepared.spec.step_seconds
        return prepared

    def config_for(path: Path) -> PreprocessConfig:
        return PreprocessConfig(target="load", lookback=12)

    series = {s.series_id: s for s in fleet_series("f", pairs, raw_ids, "load", config_for, check)}
    assert steps == {"hourly": 3600, "half-hourly": 1800}
    assert series["hourly"].reason is None
    assert series["half-hourly"].reason is None
    assert str(series["short"].reason).startswith("rejected by preprocess:")


def test_a_semicolon_long_csv_with_decimal_commas_splits_into_readable_series(
    tmp_path: Path,
) -> None:
    from flts.cli.run_inputs import validate_inputs

    times = pd.date_range("2024-01-01", periods=240, freq="1h")
    frames = [
        pd.DataFrame({"time": times, "cell": cell, "load": 10.5 + np.arange(240) % 7 + shift})
        for cell, shift in (("north", 0.25), ("flat", 0.0))
    ]
    frames[1]["load"] = 3.5
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.concat(f.iloc[:200] for f in frames).to_csv(train, index=False, sep=";", decimal=",")
    pd.concat(f.iloc[200:] for f in frames).to_csv(test, index=False, sep=";", decimal=",")
    pairs, raw_ids, _ = split_long_csv(train, test, "cell", tmp_path / "out")
    north_train, north_test = pairs["north"]
    assert north_train is not None
    assert north_test is not None
    prepared = validate_inputs(north_train, north_test, PreprocessConfig(target="load"))
    assert (prepared.train["load"].min(), prepared.train["load"].max()) == (10.75, 16.75)
    assert any("decimal commas" in note for note in prepared.train_notes)

    series = {
        s.series_id: s
        for s in fleet_series(
            "f", pairs, raw_ids, "load", lambda _: PreprocessConfig(target="load"), validate_inputs
        )
    }
    assert series["north"].reason is None
    assert "constant (3.5)" in str(series["flat"].reason)  # read as 3.5, not as text


def test_meters_with_a_day_per_row_run_as_a_fleet(tmp_path: Path) -> None:
    # MeterID, Date, HE1 ... HE24: several meters' day-per-row exports in one long file.
    from flts.cli.run_inputs import validate_inputs

    days = pd.date_range("2024-01-01", periods=35, freq="D").strftime("%m/%d/%Y")
    hours = [f"HE{k}" for k in range(1, 25)]
    frames = []
    for meter, level in (("m1", 10.0), ("m2", 50.0)):
        t = np.arange(len(days) * 24)
        load = (level + 3 * np.sin(2 * np.pi * t / 24) + (t % 5) / 4).reshape(len(days), 24)
        frames.append(pd.DataFrame(load, columns=hours).assign(MeterID=meter, Date=days))
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.concat(f.iloc[:28] for f in frames)[["MeterID", "Date", *hours]].to_csv(train, index=False)
    pd.concat(f.iloc[28:] for f in frames)[["MeterID", "Date", *hours]].to_csv(test, index=False)
    pairs, raw_ids, _ = split_long_csv(train, test, "MeterID", tmp_path / "out")
    config = PreprocessConfig(time_col="Date", target="kwh", horizon=1)
    series = {
        s.series_id: s
        for s in fleet_series(
            "f", pairs, raw_ids, "kwh", lambda _: config, validate_inputs, time_col="Date"
        )
    }
    assert [series[m].reason for m in ("m1", "m2")] == [None, None]
    m2_train, m2_test = pairs["m2"]
    assert m2_train is not None
    assert m2_test is not None
    prepared = validate_inputs(m2_train, m2_test, config)
    assert prepared.spec.step_seconds == 3600
    assert 45 < prepared.train["kwh"].mean() < 55


def _wide(path: Path, start: str, rows: int, **options: str) -> pd.DataFrame:
    times = pd.date_range(start, periods=rows, freq="1h")
    t = np.arange(rows)
    frame = pd.DataFrame(
        {
            "time": times,
            "meter 1": 10.5 + t % 7,
            "meter-2": 20.25 + t % 5,
            "temperature": 3.5 + t % 3,
        }
    )
    frame.to_csv(path, index=False, **options)  # type: ignore[call-overload]
    return frame


def test_a_wide_csv_splits_into_one_series_per_column_sharing_the_others(tmp_path: Path) -> None:
    from flts.cli.fleet_inputs import WIDE_TARGET, split_wide_csv
    from flts.cli.run_inputs import validate_inputs

    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    frame = _wide(train, "2024-01-01", 200, sep=";", decimal=",")
    _wide(test, "2024-01-09 08:00", 40, sep=";", decimal=",")
    pairs, raw_ids, notices = split_wide_csv(
        train, test, "time", ("meter 1", "meter-2"), tmp_path / "out"
    )
    assert raw_ids == {"meter_1": "meter 1", "meter-2": "meter-2"}
    assert "columns ['temperature'] are covariates of every series" in notices
    meter_train, meter_test = pairs["meter_1"]
    assert meter_train is not None
    assert meter_test is not None
    config = PreprocessConfig(target=WIDE_TARGET)
    prepared = validate_inputs(meter_train, meter_test, config)
    np.testing.assert_allclose(
        prepared.train[WIDE_TARGET], frame["meter 1"].iloc[-len(prepared.train) :]
    )
    assert prepared.spec.raw_columns == (WIDE_TARGET, "temperature")
    # "all": every column but the time is a series, none is shared.
    everything, _, notices = split_wide_csv(train, test, "time", ("all",), tmp_path / "all")
    assert set(everything) == {"meter_1", "meter-2", "temperature"}
    assert not [n for n in notices if "covariates" in n]
    series = fleet_series(
        "f",
        everything,
        raw_ids | {"temperature": "temperature"},
        WIDE_TARGET,
        lambda _: config,
        validate_inputs,
    )
    assert [s.reason for s in series] == [None, None, None]


def test_all_series_of_a_wide_csv_with_date_and_time_columns_leave_the_time_out(
    tmp_path: Path,
) -> None:
    """Datum;Uhrzeit;meter 1;meter-2: the time-of-day column is the other half of every
    series' timestamp, not a series of its own."""
    from flts.cli.fleet_inputs import WIDE_TARGET, split_wide_csv
    from flts.cli.run_inputs import validate_inputs

    paths = []
    for name, start, rows in (
        ("train.csv", "2024-01-01", 200),
        ("test.csv", "2024-01-09 08:00", 40),
    ):
        frame = _wide(tmp_path / f"wide-{name}", start, rows)
        stamps = pd.to_datetime(frame["time"])
        frame.insert(0, "Uhrzeit", stamps.dt.strftime("%H:%M"))
        frame.insert(0, "Datum", stamps.dt.strftime("%d.%m.%Y"))
        frame = frame.drop(columns=["time"])
        frame.to_csv(tmp_path / name, index=False, sep=";")
        paths.append(tmp_path / name)
    pairs, _, notices = split_wide_csv(paths[0], paths[1], "Datum", ("all",), tmp_path / "out")
    assert set(pairs) == {"meter_1", "meter-2", "temperature"}  # no "Uhrzeit" series
    assert "column 'Uhrzeit' is part of the time of every series" in notices
    meter_train, meter_test = pairs["meter_1"]
    assert meter_train is not None
    assert meter_test is not None
    config = PreprocessConfig(time_col="Datum", target=WIDE_TARGET)
    prepared = validate_inputs(meter_train, meter_test, config)
    assert prepared.spec.raw_columns == (WIDE_TARGET,)
    assert prepared.spec.step_seconds == 3600


def test_a_wide_export_with_a_preamble_units_and_a_total_splits_into_its_series(
    tmp_path: Path,
) -> None:
    """A portal's wide export: lines above the header, a units row, a total at the end. No
    series' file holds them, and the notices say they were left out."""
    from flts.cli.fleet_inputs import WIDE_TARGET, split_wide_csv
    from flts.cli.run_inputs import validate_inputs

    paths = []
    for name, start, rows in (
        ("train.csv", "2024-01-01", 200),
        ("test.csv", "2024-01-09 08:00", 40),
    ):
        body = _wide(tmp_path / f"plain-{name}", start, rows, sep=";").to_csv(index=False, sep=";")
        header, data = body.split("\n", 1)
        path = tmp_path / name
        path.write_text(f"Portal export\n{header}\n;kWh;kWh;degC\n{data}Total;1;2;3\n")
        paths.append(path)
    pairs, _, notices = split_wide_csv(paths[0], paths[1], "time", ("all",), tmp_path / "out")
    assert set(pairs) == {"meter_1", "meter-2", "temperature"}
    assert any("line 3 under the header skipped" in n and "kWh" in n for n in notices)
    assert any("'Total': a footer" in n for n in notices)
    meter_train, meter_test = pairs["meter_1"]
    assert meter_train is not None
    assert meter_test is not None
    assert len(pd.read_csv(meter_test)) == 40  # the data rows only
    prepared = validate_inputs(meter_train, meter_test, PreprocessConfig(target=WIDE_TARGET))
    assert prepared.test["ds"].iloc[-1] == pd.Timestamp("2024-01-10 23:00")


def test_a_wide_csv_names_the_columns_it_lacks(tmp_path: Path) -> None:
    from flts.cli.fleet_inputs import split_wide_csv

    train = tmp_path / "train.csv"
    _wide(train, "2024-01-01", 10)
    with pytest.raises(ConfigError, match="no series column\\(s\\) 'meter 3'"):
        split_wide_csv(train, train, "time", ("meter 1", "meter 3"), tmp_path / "out")
    with pytest.raises(ConfigError, match="no time column 'ts'"):
        split_wide_csv(train, train, "ts", ("all",), tmp_path / "out")


def test_series_cols_make_a_fleet_run_and_exclude_series_col(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flts.cli import build_parser, main
    from flts.cli.fleet_cmd import is_fleet

    argv = ["run", "--train", "a.csv", "--test", "b.csv", "--series-cols", "all"]
    args = build_parser(argv).parse_args(argv)
    assert args.series_cols == ("all",)
    assert is_fleet(args)
    both = [*argv, "--series-col", "cell", "--run-dir", str(tmp_path)]
    assert main(both) == 1
    assert "--series-col (long) or --series-cols (wide), not both" in capsys.readouterr().err


def test_all_series_of_a_wide_csv_leave_a_weekday_column_out(tmp_path: Path) -> None:
    from flts.cli.fleet_inputs import WIDE_TARGET, split_wide_csv
    from flts.cli.run_inputs import validate_inputs

    paths = []
    for name, start, rows in (
        ("train.csv", "2024-01-01", 200),
        ("test.csv", "2024-01-09 08:00", 40),
    ):
        frame = _wide(tmp_path / f"wide-{name}", start, rows)
        frame.insert(1, "Weekday", pd.to_datetime(frame["time"]).dt.day_name())
        frame.to_csv(tmp_path / name, index=False)
        paths.append(tmp_path / name)
    pairs, _, notices = split_wide_csv(paths[0], paths[1], "time", ("all",), tmp_path / "out")
    assert set(pairs) == {"meter_1", "meter-2", "temperature"}  # no "Weekday" series
    assert not [n for n in notices if "covariates" in n]  # nor a covariate
    meter_train, meter_test = pairs["meter_1"]
    assert meter_train is not None
    assert meter_test is not None
    prepared = validate_inputs(meter_train, meter_test, PreprocessConfig(target=WIDE_TARGET))
    assert prepared.spec.raw_columns == (WIDE_TARGET,)
    assert any("column 'Weekday' ignored: day or month names" in n for n in prepared.train_notes)
