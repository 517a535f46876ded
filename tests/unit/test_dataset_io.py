"""Processed Parquet carries its lineage; anything else is refused with a clear message."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _rawcsv import SMALL, csv_pair

from flts.errors import DataValidationError
from flts.forecasting.dataset import DatasetMeta, read_meta, read_processed, write_processed
from flts.forecasting.prepare import prepare_datasets


def meta_for(frame: pd.DataFrame, **changes: object) -> DatasetMeta:
    prepared = prepare_datasets(*csv_pair(), SMALL, config_hash="abc")
    fields = {
        "config": SMALL,
        "config_hash": "abc",
        "identifier": "run-1",
        "split": "train",
        "spec": prepared.spec,
        "rows": len(frame),
        "start": frame["ds"].iloc[0].isoformat(),
        "end": frame["ds"].iloc[-1].isoformat(),
        "notes": ("a note",),
    }
    return DatasetMeta.model_validate({**fields, **changes})


@pytest.fixture(scope="module")
def train_frame() -> pd.DataFrame:
    return prepare_datasets(*csv_pair(), SMALL, config_hash="abc").train


def test_round_trip_keeps_rows_and_metadata(train_frame: pd.DataFrame) -> None:
    meta = meta_for(train_frame)
    data = write_processed(train_frame, meta)
    frame, back = read_processed(data)
    pd.testing.assert_frame_equal(frame, train_frame)
    assert back == meta
    assert back.spec.scaler.columns == back.spec.feature_order
    assert read_meta(data) == meta


def test_same_input_gives_identical_bytes(train_frame: pd.DataFrame) -> None:
    meta = meta_for(train_frame)
    assert write_processed(train_frame.copy(), meta) == write_processed(train_frame, meta)


def test_columns_are_written_in_feature_order(train_frame: pd.DataFrame) -> None:
    meta = meta_for(train_frame)
    shuffled = train_frame[list(reversed(train_frame.columns))]
    frame, _ = read_processed(write_processed(shuffled, meta))
    assert list(frame.columns) == ["ds", *meta.spec.feature_order]


def test_row_count_must_match_metadata(train_frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="has 140 rows, metadata says 3"):
        write_processed(train_frame, meta_for(train_frame, rows=3))


def test_bytes_that_are_not_parquet() -> None:
    with pytest.raises(DataValidationError, match="object processed-data/x is not Parquet"):
        read_processed(b"time,down\n", source="processed-data/x")
    with pytest.raises(DataValidationError, match="object processed-data/x is not Parquet"):
        read_meta(b"\x00\x01", source="processed-data/x")


def test_parquet_without_flts_metadata() -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"ds": [1, 2]}), sink)
    with pytest.raises(DataValidationError, match="has no FLTS metadata"):
        read_processed(sink.getvalue(), source="processed-data/y")


def test_parquet_with_invalid_flts_metadata() -> None:
    sink = io.BytesIO()
    table = pa.table({"ds": [1, 2]}).replace_schema_metadata({b"flts": b'{"rows": 2}'})
    pq.write_table(table, sink)
    with pytest.raises(DataValidationError, match="FLTS metadata is invalid"):
        read_processed(sink.getvalue(), source="processed-data/z")
