"""`flts run` checks the CSVs with preprocess's own code before starting anything."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pandas as pd
import pytest
from _rawcsv import csv_pair

from flts.cli import run_cmd
from flts.cli.run_inputs import run_config, validate_inputs
from flts.domain.config import PreprocessConfig
from flts.errors import ConfigError, DataValidationError


def _files(tmp_path: Path, **extra: object) -> tuple[Path, Path]:
    train_bytes, test_bytes = csv_pair(train_rows=300, test_rows=30)
    paths = []
    for name, data in (("my_site.csv", train_bytes), ("my_site_test.csv", test_bytes)):
        frame = pd.read_csv(io.BytesIO(data))
        for column, value in extra.items():  # a list value is cycled over the rows
            frame[column] = (
                [value[i % len(value)] for i in range(len(frame))]
                if isinstance(value, list)
                else value
            )
        path = tmp_path / name
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def _args(train: Path, test: Path, **over: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_cmd.register(parser)
    args = parser.parse_args(["--train", str(train), "--test", str(test)])
    for key, value in over.items():
        setattr(args, key, value)
    return args


def test_text_column_is_rejected_naming_the_users_file_and_the_way_out(tmp_path: Path) -> None:
    train, test = _files(tmp_path, label=["a", "b"] * 150)
    with pytest.raises(DataValidationError) as err:
        validate_inputs(train, test, PreprocessConfig(season_steps=10))
    text = str(err.value)
    assert text.startswith(f"{train}: column 'label' is not numeric")
    assert "raw/" not in text
    assert "`--drop label`" in text
    assert "`--features down,up`" in text


def test_run_refuses_bad_input_before_starting_the_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    train, test = _files(tmp_path, label=["a", "b"] * 150)

    def no_stack(*_: object) -> None:
        raise AssertionError("the stack must not start for bad input")

    monkeypatch.setattr("flts.run.flow.execute_run", no_stack)
    assert run_cmd.run(_args(train, test, config='{"season_steps": 10}')) == 1
    err = capsys.readouterr().err
    assert "input rejected before starting anything" in err
    assert "my_site.csv: column 'label' is not numeric" in err


def test_drop_leaves_the_column_out_and_the_check_passes(tmp_path: Path) -> None:
    train, test = _files(tmp_path, label=["a", "b"] * 150)
    config = run_config(PreprocessConfig(season_steps=10), train_csv=train, drop=("label",))
    assert config.feature_columns == ("down", "up")
    prepared = validate_inputs(train, test, config)
    assert "label" not in prepared.spec.feature_order
    with pytest.raises(ConfigError, match="cannot drop the target"):
        run_config(PreprocessConfig(), train_csv=train, drop=("down",))
    with pytest.raises(ConfigError, match="no such input column"):
        run_config(PreprocessConfig(), train_csv=train, drop=("nope",))


def test_constant_text_column_is_ignored_with_a_notice(tmp_path: Path) -> None:
    train, test = _files(tmp_path, site="PobleSec")
    prepared = validate_inputs(train, test, PreprocessConfig(season_steps=10))
    assert "site" not in prepared.spec.feature_order
    assert any("column 'site' ignored" in note for note in prepared.train_notes)


def test_horizon_and_features_flags_reach_the_config(tmp_path: Path) -> None:
    train, _test = _files(tmp_path)
    config = run_config(PreprocessConfig(), train_csv=train, horizon=4, features=("up",))
    assert (config.horizon, config.feature_columns) == (4, ("up",))
