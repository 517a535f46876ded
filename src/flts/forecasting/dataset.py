"""Processed frame <-> Parquet bytes, with the lineage a consumer needs embedded in the file.

The Parquet schema metadata key ``flts`` holds a JSON :class:`DatasetMeta`: the preprocessing
config, ``config_hash``, the feature order and the training-only scaler (inside ``spec``). A
trainer or the inference service therefore needs nothing but the object itself. Features are
stored in *original units*; models scale internally with ``spec.scaler``.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec
from flts.forecasting.windows import mask_of

META_KEY = b"flts"


class DatasetMeta(BaseModel):
    """What a processed Parquet object carries besides its rows."""

    model_config = ConfigDict(frozen=True)

    config: PreprocessConfig
    config_hash: str
    identifier: str
    split: Literal["train", "test"]
    spec: ForecastSpec
    rows: int
    #: First and last timestamp (ISO 8601, UTC, tz-naive) of the rows.
    start: str
    end: str
    notes: tuple[str, ...] = ()
    #: Leading rows that are the tail of the training file, carried so that every test timestamp
    #: can be an origin (its history may reach back into training). Never scored; counted in
    #: ``rows``. 0 for training objects and for objects written before this field existed.
    context_rows: int = Field(default=0, ge=0)
    #: Half-open row ranges whose target was filled in by preprocessing, not read from the file
    #: (``windows.runs_of``): never scored (test objects), never learned from (training objects,
    #: see ``Forecaster.fit``). Empty for objects written before this field existed.
    unobserved_target_rows: tuple[tuple[int, int], ...] = ()

    def unobserved_mask(self) -> np.ndarray:
        """One flag per row: was the target filled in (see ``windows.scorable_actuals``)?"""
        return mask_of(self.unobserved_target_rows, self.rows)


def write_processed(frame: pd.DataFrame, meta: DatasetMeta) -> bytes:
    """Parquet bytes of ``ds`` + ``spec.feature_order``; deterministic for the same input."""
    columns = [TIME_COLUMN, *meta.spec.feature_order]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(f"processed frame lacks columns {missing}")
    if len(frame) != meta.rows:
        raise DataValidationError(
            f"processed frame has {len(frame)} rows, metadata says {meta.rows}"
        )
    table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    existing = table.schema.metadata or {}
    table = table.replace_schema_metadata({**existing, META_KEY: meta.model_dump_json().encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_meta(data: bytes, source: str = "processed data") -> DatasetMeta:
    """Only the FLTS metadata of a processed object (reads the footer, not the rows)."""
    try:
        schema = pq.read_schema(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataValidationError(f"object {source} is not Parquet ({exc})") from exc
    return _meta_from_schema(schema, source)


def read_processed(data: bytes, source: str = "processed data") -> tuple[pd.DataFrame, DatasetMeta]:
    """Rows and metadata of a processed object; DataValidationError if it is not one."""
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataValidationError(f"object {source} is not Parquet ({exc})") from exc
    meta = _meta_from_schema(table.schema, source)
    frame = table.to_pandas()
    expected = [TIME_COLUMN, *meta.spec.feature_order]
    if list(frame.columns) != expected:
        raise DataValidationError(
            f"object {source}: columns {list(frame.columns)} differ from the metadata's {expected}"
        )
    frame[TIME_COLUMN] = frame[TIME_COLUMN].astype("datetime64[ns]")
    return frame, meta


def _meta_from_schema(schema: pa.Schema, source: str) -> DatasetMeta:
    raw_meta = (schema.metadata or {}).get(META_KEY)
    if raw_meta is None:
        raise DataValidationError(
            f"object {source} is Parquet but has no FLTS metadata (not written by preprocess)"
        )
    try:
        return DatasetMeta.model_validate_json(raw_meta)
    except ValidationError as exc:
        raise DataValidationError(f"object {source}: FLTS metadata is invalid ({exc})") from exc
