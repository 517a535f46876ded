"""POST /predict bodies: the documented shapes and the fast hand-written parser behind them.

Two request shapes are accepted (the models below document them in OpenAPI):

* rows: ``{"observations": [{"ds": "2018-02-05 23:40:00", "down": 1.1e8, ...}, ...],
  "inference_length": 1}`` (the time key may be ``ds`` or ``time``);
* the existing pipeline's columnar shape: ``{"data": {"time": [...], "down": [...], ...},
  "index_col": "time", "inference_length": 1}``. A request in this shape is answered in the
  existing pipeline's response shape.

Pydantic validation per request costs more than the model forward, so bodies are parsed by hand
here; every problem raises :class:`RequestError` with a FastAPI-style ``loc`` naming the exact
field (``["body", "observations", 3, "ds"]``), so clients see the same 422 detail format as for
any FastAPI endpoint.

Timestamps: ISO 8601 strings (a ``Z`` or ``+hh:mm`` offset is converted to UTC; no offset means
UTC) or numbers of seconds since the Unix epoch (numbers >= 1e11 are taken as milliseconds).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, Field

TIME_KEYS: tuple[str, ...] = ("ds", "time")
_MS_THRESHOLD = 1e11
_NAIVE_ISO_LEN = len("2018-02-05 23:40:00")


class RequestError(Exception):
    """One client mistake; ``loc`` follows FastAPI's validation-error convention."""

    def __init__(self, loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg
        self.kind = kind

    def detail(self) -> dict[str, Any]:
        return {"type": self.kind, "loc": list(self.loc), "msg": self.msg}


# -- documented shapes (OpenAPI only; the parser below enforces them) ----------------------------
class RowsRequest(BaseModel):
    """Observations as rows, oldest first, at the model's step."""

    observations: list[dict[str, float | str | int]] = Field(
        description="Rows with a timestamp under 'ds' or 'time' and every raw column of the model"
    )
    inference_length: int | None = Field(
        None, ge=1, description="Steps to forecast, 1..horizon (default: the model's horizon)"
    )


class ColumnarRequest(BaseModel):
    """The existing pipeline's request: one list per column, including the time column."""

    data: dict[str, list[float | str | int]]
    index_col: str = "time"
    inference_length: int | None = Field(None, ge=1)


class ModelRef(BaseModel):
    model_type: str
    run_id: str
    model_uri: str
    config_hash: str


class ForecastPoint(BaseModel):
    ts: str = Field(description="ISO 8601, UTC, no offset; strictly after the last input row")
    step: int
    value: float


class PredictResponse(BaseModel):
    model: ModelRef
    target: str
    unit: str = "original"
    forecast: list[ForecastPoint]


class LegacyResponse(BaseModel):
    """The existing pipeline's answer: ``predictions`` rows carry ``ts`` and ``<target>``."""

    status: str = "SUCCESS"
    identifier: str
    run_id: str
    predictions: list[dict[str, float | str]]


PREDICT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        RowsRequest.model_json_schema(),
                        ColumnarRequest.model_json_schema(),
                    ]
                }
            }
        },
    }
}


# -- parsing -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PredictInput:
    """A request reduced to arrays: epoch microseconds and the raw columns asked for."""

    times_us: np.ndarray  # (n,) int64, UTC
    values: np.ndarray  # (n, len(columns)) float64, original units
    legacy: bool
    inference_length: int | None
    #: Where the rows live in the body, for error locations: ("observations",) or ("data",).
    base_loc: tuple[str, ...]
    time_key: str


def parse_predict_body(body: bytes, columns: tuple[str, ...]) -> PredictInput:
    """Decode a /predict body and extract ``columns``; RequestError names the field at fault."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(("body",), f"body is not valid JSON: {exc}", "json_invalid") from None
    if not isinstance(doc, dict):
        raise RequestError(("body",), "body must be a JSON object", "dict_type")
    length = _inference_length(doc.get("inference_length"))
    if "observations" in doc:
        times, values, key = _from_rows(doc["observations"], columns)
        return PredictInput(times, values, False, length, ("observations",), key)
    if "data" in doc:
        times, values, key = _from_columns(doc["data"], doc.get("index_col"), columns)
        return PredictInput(times, values, True, length, ("data",), key)
    raise RequestError(
        ("body",),
        "expected 'observations' (a list of rows) or 'data' (a mapping of columns to lists)",
        "missing",
    )


def _inference_length(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(("body", "inference_length"), "must be an integer", "int_type")
    return value


def _from_rows(rows: Any, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, str]:
    loc: tuple[str | int, ...] = ("body", "observations")
    if not isinstance(rows, list) or not rows:
        raise RequestError(loc, "must be a non-empty list of rows", "list_type")
    first = rows[0]
    if not isinstance(first, dict):
        raise RequestError((*loc, 0), "each row must be a JSON object", "dict_type")
    key = next((k for k in TIME_KEYS if k in first), None)
    if key is None:
        raise RequestError(
            (*loc, 0), f"row has no timestamp; use one of {list(TIME_KEYS)}", "missing"
        )
    try:
        stamps = list(map(itemgetter(key), rows))
        table: list[Any] = list(map(itemgetter(*columns), rows))
    except (KeyError, TypeError):
        raise _locate_row_problem(rows, key, columns, loc) from None
    times = parse_times(stamps, lambda i: (*loc, i, key))
    values = _finite_matrix(table, len(columns))
    if values is not None:
        return times, values, key
    if len(columns) == 1:
        table = [[v] for v in table]  # itemgetter of one key returns the value, not a tuple
    return times, _numbers(table, lambda i, j: (*loc, i, columns[j])), key


def _finite_matrix(table: list[Any], width: int) -> np.ndarray | None:
    """The (rows, width) float64 matrix when every cell is a finite number, else None.

    ``np.fromiter`` over the flattened cells skips ``np.array``'s shape discovery (the costliest
    step of parsing a body); it converts exactly the cells ``np.array`` converts. Anything odd
    returns None and :func:`_numbers` finds the cell at fault.
    """
    cells = table if width == 1 else chain.from_iterable(table)
    try:
        flat = np.fromiter(cells, dtype=np.float64, count=len(table) * width)
    except (ValueError, TypeError):
        return None
    if not np.isfinite(flat).all():
        return None
    return flat.reshape(len(table), width)


def _locate_row_problem(
    rows: list[Any], key: str, columns: tuple[str, ...], loc: tuple[str | int, ...]
) -> RequestError:
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            return RequestError((*loc, i), "each row must be a JSON object", "dict_type")
        if key not in row:
            return RequestError((*loc, i, key), f"row {i} has no {key!r} timestamp", "missing")
        missing = [c for c in columns if c not in row]
        if missing:
            return RequestError(
                (*loc, i, missing[0]),
                f"row {i} is missing columns {missing}; the model needs {list(columns)}",
                "missing",
            )
    return RequestError(loc, "rows are malformed")


def _from_columns(
    data: Any, index_col: Any, columns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, str]:
    loc: tuple[str | int, ...] = ("body", "data")
    if not isinstance(data, dict):
        raise RequestError(loc, "must be a mapping of column name to a list of values", "dict_type")
    if index_col is None:
        index_col = next((k for k in TIME_KEYS if k in data), "time")
    if not isinstance(index_col, str):
        raise RequestError(("body", "index_col"), "must be a column name", "string_type")
    missing = [c for c in (index_col, *columns) if c not in data]
    if missing:
        raise RequestError(
            (*loc, missing[0]),
            f"missing columns {missing}; the model needs {[index_col, *columns]}",
            "missing",
        )
    stamps = data[index_col]
    if not isinstance(stamps, list) or not stamps:
        raise RequestError((*loc, index_col), "must be a non-empty list", "list_type")
    for c in columns:
        col = data[c]
        if not isinstance(col, list) or len(col) != len(stamps):
            size = len(col) if isinstance(col, list) else "no list of"
            raise RequestError(
                (*loc, c), f"has {size} values; {index_col!r} has {len(stamps)}", "list_type"
            )
    times = parse_times(stamps, lambda i: (*loc, index_col, i))
    table = [data[c] for c in columns]
    values = _numbers(table, lambda j, i: (*loc, columns[j], i)).T
    return times, np.ascontiguousarray(values), index_col


def _numbers(table: list[Any], where: Any) -> np.ndarray:
    """A float64 matrix; ``where(i, j)`` gives the loc of cell (i, j) for errors."""
    try:
        arr = np.array(table, dtype=np.float64)
    except (ValueError, TypeError):
        arr = None
    if arr is not None and arr.ndim == 2:
        bad = ~np.isfinite(arr)
        if not bad.any():
            return arr
        i, j = (int(x[0]) for x in np.nonzero(bad))
        raise RequestError(where(i, j), "value is missing or not a finite number", "finite_number")
    for i, row in enumerate(table):
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestError(where(i, j), f"{value!r} is not a number", "float_type")
    raise RequestError(where(0, 0), "values are malformed", "float_type")


def parse_times(stamps: list[Any], where: Any) -> np.ndarray:
    """Epoch microseconds (UTC) for ISO strings or epoch numbers; ``where(i)`` locates row i."""
    # numpy parses naive ISO strings fast; anything longer may carry an offset numpy mishandles.
    if set(map(type, stamps)) == {str} and max(map(len, stamps)) <= _NAIVE_ISO_LEN:
        try:
            return np.array(stamps, dtype="datetime64[us]").astype(np.int64)
        except ValueError:
            pass  # fall through to find the offending row
    out = np.empty(len(stamps), dtype=np.int64)
    for i, s in enumerate(stamps):
        out[i] = _one_time(s, where(i))
    return out


def _one_time(value: Any, loc: tuple[str | int, ...]) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000.0 if abs(value) >= _MS_THRESHOLD else float(value)
        if not np.isfinite(seconds):
            raise RequestError(loc, "timestamp is not finite", "datetime_parsing")
        return round(seconds * 1_000_000)
    if not isinstance(value, str):
        raise RequestError(loc, f"{value!r} is not a timestamp", "datetime_type")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise RequestError(
            loc, f"{value!r} is not an ISO 8601 timestamp", "datetime_parsing"
        ) from None
    seconds = calendar.timegm(parsed.utctimetuple())
    return seconds * 1_000_000 + parsed.microsecond
