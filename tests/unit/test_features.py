"""The feature pipeline: fixed order, cyclic time encodings, lags by timestamp, live reuse."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from _rawcsv import SMALL, START, csv_pair

from flts.errors import DataValidationError
from flts.forecasting.features import (
    build_features,
    feature_order_for,
    features_for_spec,
    tail_features,
    time_feature_frame,
)
from flts.forecasting.prepare import prepare_datasets
from flts.forecasting.time_step import TimeStep


def raw(rows: int, start: pd.Timestamp = START) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ds": pd.date_range(start, periods=rows, freq="min"),
            "down": np.arange(rows, dtype=float) * 10,
            "up": np.arange(rows, dtype=float),
        }
    )


def test_feature_order_is_raw_target_first_then_time_then_lags() -> None:
    order = feature_order_for(
        target="down", raw_columns=("up", "down"), time_features=True, lags=(3, 1)
    )
    assert order == (
        "down",
        "up",
        "day_sin",
        "day_cos",
        "week_sin",
        "week_cos",
        "down_lag3",
        "down_lag1",
    )
    assert feature_order_for(
        target="down", raw_columns=("down",), time_features=False, lags=()
    ) == ("down",)


def test_time_features_are_cyclic_over_day_and_week() -> None:
    monday_midnight = pd.Timestamp("2018-02-05 00:00")  # a Monday
    stamps = pd.Series(
        [
            monday_midnight,
            monday_midnight + pd.Timedelta(hours=6),
            monday_midnight + pd.Timedelta(days=7),
        ]
    )
    feats = time_feature_frame(stamps)
    np.testing.assert_allclose(feats.loc[0].to_numpy(), [0.0, 1.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(
        feats.loc[1, ["day_sin", "day_cos"]].to_numpy(), [1.0, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(feats.loc[2].to_numpy(), feats.loc[0].to_numpy(), atol=1e-12)


def test_lags_are_looked_up_by_timestamp_and_incomplete_rows_dropped() -> None:
    frame = build_features(
        raw(10),
        target="down",
        raw_columns=("down", "up"),
        time_features=False,
        lags=(2,),
        step=TimeStep(60),
    )
    assert len(frame) == 8
    assert list(frame.columns) == ["ds", "down", "up", "down_lag2"]
    np.testing.assert_array_equal(frame["down_lag2"].to_numpy(), frame["down"].to_numpy() - 20)


def test_lags_read_past_context_but_context_rows_never_become_output() -> None:
    past = raw(10)
    current = raw(5, start=START + pd.Timedelta(minutes=10))
    current["down"] += 1000
    frame = build_features(
        current,
        target="down",
        raw_columns=("down", "up"),
        time_features=True,
        lags=(3,),
        step=TimeStep(60),
        context=past,
    )
    assert len(frame) == 5
    assert frame["ds"].min() == current["ds"].min()
    assert list(frame["down_lag3"][:3]) == [70.0, 80.0, 90.0]  # from the context
    assert list(frame["down_lag3"][3:]) == [1000.0, 1010.0]  # from the frame itself


def test_missing_raw_column_is_an_error() -> None:
    with pytest.raises(DataValidationError, match=r"raw data is missing columns \['rnti'\]"):
        build_features(
            raw(5),
            target="down",
            raw_columns=("down", "rnti"),
            time_features=True,
            lags=(),
            step=TimeStep(60),
        )


def test_features_for_spec_rebuilds_exactly_what_preprocess_stored() -> None:
    """Live inference on raw test rows must see the same features the models were scored on."""
    config = SMALL.model_copy(update={"lags": (4,)})
    train_bytes, test_bytes = csv_pair()
    prepared = prepare_datasets(train_bytes, test_bytes, config, config_hash="h")
    test_raw = pd.read_csv(io.BytesIO(test_bytes), parse_dates=["time"])
    train_raw = pd.read_csv(io.BytesIO(train_bytes), parse_dates=["time"])
    live = features_for_spec(
        test_raw.rename(columns={"time": "ds"}),
        prepared.spec,
        context=train_raw.rename(columns={"time": "ds"}),
    )
    # The processed test frame starts with training-tail context rows; the test rows follow.
    context = prepared.test_context_rows
    assert context > 0
    pd.testing.assert_frame_equal(live, prepared.test.iloc[context:].reset_index(drop=True))


def test_features_for_spec_without_context_drops_rows_lacking_lag_history() -> None:
    config = SMALL.model_copy(update={"lags": (4,)})
    prepared = prepare_datasets(*csv_pair(), config, config_hash="h")
    window = prepared.test.loc[prepared.test_context_rows :, ["ds", "down", "up"]]
    live = features_for_spec(window, prepared.spec)
    assert len(live) == len(window) - 4
    assert tuple(live.columns[1:]) == prepared.spec.feature_order


def test_tail_features_equal_the_frame_path_on_the_same_rows() -> None:
    """The live path's numpy shortcut builds what features_for_spec builds, row for row."""
    config = SMALL.model_copy(update={"lags": (4,)})
    prepared = prepare_datasets(*csv_pair(), config, config_hash="h")
    window = prepared.test.loc[prepared.test_context_rows :, ["ds", "down", "up"]]
    window = window.reset_index(drop=True)
    times_us = window["ds"].to_numpy().astype("datetime64[us]").astype(np.int64)
    values = window[["down", "up"]].to_numpy(dtype=np.float64)
    rows = len(window) - 4
    fast = tail_features(times_us, values, prepared.spec, rows)
    pd.testing.assert_frame_equal(fast, features_for_spec(window, prepared.spec))
    assert len(tail_features(times_us, values, prepared.spec, 0)) == 0
    with pytest.raises(DataValidationError, match="reach before"):
        tail_features(times_us, values, prepared.spec, rows + 1)


def test_raw_column_clashing_with_a_feature_name_is_an_error() -> None:
    frame = raw(5).assign(down_lag1=1.0)
    with pytest.raises(DataValidationError, match=r"feature names \['down_lag1'\] clash"):
        build_features(
            frame,
            target="down",
            raw_columns=("down", "down_lag1"),
            time_features=False,
            lags=(1,),
            step=TimeStep(60),
        )


def test_empty_window_with_context_gives_no_rows() -> None:
    frame = build_features(
        raw(0),
        target="down",
        raw_columns=("down", "up"),
        time_features=True,
        lags=(1,),
        step=TimeStep(60),
        context=raw(5),
    )
    assert frame.empty
    assert list(frame.columns)[-1] == "down_lag1"
