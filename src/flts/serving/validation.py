"""POST /predict bodies: one strict decoder for every lane, with FastAPI-style error locations.

Two request shapes are accepted (``flts.api.predict_schema`` documents them in OpenAPI):

* rows: ``{"observations": [{"ds": "2018-02-05 23:40:00", "down": 1.1e8, ...}, ...],
  "inference_length": 1}``;
* the existing pipeline's columnar shape: ``{"data": {"ts": [...], "down": [...], ...},
  "index_col": "ts", "inference_length": 1}``, ``index_col`` optional. A request in this shape
  is answered in the existing pipeline's response shape.

The time column may be named ``ds``, ``time``, ``ts`` or ``timestamp`` (the first present, in
that order; ``index_col`` names it explicitly in the columnar shape).

Strict by design (a lenient parser turned client mistakes into 500s or into wrong answers):
values are JSON numbers (``true`` and ``"1.5"`` are refused), finite; timestamps are ISO 8601
strings (a ``Z`` or ``+hh:mm`` offset is converted to UTC; no offset means UTC) or numbers of
seconds since the Unix epoch (numbers >= 1e11 are milliseconds), and must lie between
:data:`MIN_TIME` and :data:`MAX_TIME`; words such as ``"now"`` are not timestamps. Every
problem raises :class:`RequestError` whose ``loc`` names the exact field
(``["body", "observations", 3, "ds"]``), so clients see FastAPI's 422 detail format.

Two decoders, one set of rules, used by every route (so strictness cannot drift between lanes):
a rows body is first decoded by msgspec into per-model typed structs (:mod:`typed_body`: the
type checks happen in C while decoding, about half the cost of orjson plus per-cell checks in
Python); a body it does not accept cleanly goes to the diagnosing decoder here (orjson plus
explicit checks), which finds the first problem and names it. The fast path only ever accepts
what the diagnosing decoder accepts, with the same result (a property test checks both).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from flts.serving.typed_body import RowsDecoder

TIME_KEYS: tuple[str, ...] = ("ds", "time", "ts", "timestamp")
MIN_TIME = "1900-01-01"
MAX_TIME = "2200-01-01"
_MIN_US = int(np.datetime64(MIN_TIME, "us").astype(np.int64))
_MAX_US = int(np.datetime64(MAX_TIME, "us").astype(np.int64))
_MS_THRESHOLD = 1e11
#: numpy parses these lengths of naive ISO text fast ("2018-02-05" .. "2018-02-05 23:40:00");
#: it also reads words such as "now" and "today", which the minimum length keeps out.
_FAST_ISO_MIN, _FAST_ISO_MAX = len("2018-02-05"), len("2018-02-05 23:40:00")
_NUMBER_TYPES = frozenset({float, int})

Loc = tuple[str | int, ...]


class RequestError(Exception):
    """One client mistake; ``loc`` follows FastAPI's validation-error convention."""

    def __init__(self, loc: Loc, msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg
        self.kind = kind

    def detail(self) -> dict[str, Any]:
        return {"type": self.kind, "loc": list(self.loc), "msg": self.msg}


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

    def time_loc(self, i: int) -> Loc:
        """The location of row ``i``'s timestamp in the body."""
        if self.legacy:
            return ("body", *self.base_loc, self.time_key, i)
        return ("body", *self.base_loc, i, self.time_key)


def parse_predict_body(body: bytes, columns: tuple[str, ...], max_rows: int) -> PredictInput:
    """Decode a /predict body and extract ``columns``; RequestError names the field at fault.

    A clean rows body is decoded by the typed fast path (:mod:`flts.serving.typed_body`); any
    other body, and every body that path is unsure about, by the diagnosing decoder below,
    which names the field at fault. Both apply the same rules.
    """
    decoder = _rows_decoder(columns)
    typed = None if decoder is None else decoder.decode(body, max_rows)
    if typed is not None:
        stamps, values, key, length = typed
        times = parse_times(stamps, lambda i: ("body", "observations", i, key))
        return PredictInput(times, values, False, length, ("observations",), key)
    return _parse_diagnosing(body, columns, max_rows)


@lru_cache(maxsize=16)
def _rows_decoder(columns: tuple[str, ...]) -> RowsDecoder | None:
    """The typed decoder for a model's raw columns; None if a column is named like a time key."""
    if not columns or set(columns) & set(TIME_KEYS):
        return None
    return RowsDecoder(columns, TIME_KEYS)


def _parse_diagnosing(body: bytes, columns: tuple[str, ...], max_rows: int) -> PredictInput:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(("body",), f"body is not valid JSON: {exc}", "json_invalid") from None
    if not isinstance(doc, dict):
        raise RequestError(("body",), "body must be a JSON object", "dict_type")
    length = _inference_length(doc.get("inference_length"))
    if "observations" in doc:
        times, values, key = _from_rows(doc["observations"], columns, max_rows)
        return PredictInput(times, values, False, length, ("observations",), key)
    if "data" in doc:
        times, values, key = _from_columns(doc["data"], doc.get("index_col"), columns, max_rows)
        return PredictInput(times, values, True, length, ("data",), key)
    raise RequestError(
        ("body",),
        "expected 'observations' (a list of rows) or 'data' (a mapping of columns to lists)",
        "missing",
    )


def _inference_length(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise RequestError(("body", "inference_length"), "must be an integer", "int_type")
    return value


def _check_count(n: int, max_rows: int, loc: Loc) -> None:
    if n > max_rows:
        raise RequestError(
            loc,
            f"{n} rows is more than this server's limit of {max_rows} (API_MAX_ROWS)",
            "too_long",
        )


def _from_rows(
    rows: Any, columns: tuple[str, ...], max_rows: int
) -> tuple[np.ndarray, np.ndarray, str]:
    loc: Loc = ("body", "observations")
    if not isinstance(rows, list) or not rows:
        raise RequestError(loc, "must be a non-empty list of rows", "list_type")
    _check_count(len(rows), max_rows, loc)
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
    width = len(columns)
    cells = table if width == 1 else list(chain.from_iterable(table))
    if set(map(type, cells)) <= _NUMBER_TYPES:
        flat = np.fromiter(cells, dtype=np.float64, count=len(cells))
        if np.isfinite(flat).all():
            return times, flat.reshape(len(rows), width), key
    bad = _first_bad_cell(cells)
    row, col = divmod(bad, width)
    raise _cell_error(cells[bad], (*loc, row, columns[col]))


def _first_bad_cell(cells: list[Any]) -> int:
    for i, value in enumerate(cells):
        if type(value) not in _NUMBER_TYPES or not np.isfinite(value):
            return i
    raise AssertionError("called without a bad cell")  # pragma: no cover


def _cell_error(value: Any, loc: Loc) -> RequestError:
    if type(value) in _NUMBER_TYPES:
        return RequestError(loc, "value is not a finite number", "finite_number")
    if value is None:
        return RequestError(loc, "value is missing (null); send a number", "float_type")
    return RequestError(loc, f"{value!r} is not a JSON number", "float_type")


def _locate_row_problem(
    rows: list[Any], key: str, columns: tuple[str, ...], loc: Loc
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
    data: Any, index_col: Any, columns: tuple[str, ...], max_rows: int
) -> tuple[np.ndarray, np.ndarray, str]:
    loc: Loc = ("body", "data")
    if not isinstance(data, dict):
        raise RequestError(loc, "must be a mapping of column name to a list of values", "dict_type")
    if index_col is None:
        index_col = next((k for k in TIME_KEYS if k in data), None)
        if index_col is None:
            raise RequestError(
                loc, f"no time column; name it one of {list(TIME_KEYS)} or set index_col", "missing"
            )
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
    _check_count(len(stamps), max_rows, (*loc, index_col))
    n = len(stamps)
    for c in columns:
        col = data[c]
        if not isinstance(col, list) or len(col) != n:
            size = len(col) if isinstance(col, list) else "no list of"
            raise RequestError((*loc, c), f"has {size} values; {index_col!r} has {n}", "list_type")
    times = parse_times(stamps, lambda i: (*loc, index_col, i))
    cells = list(chain.from_iterable(data[c] for c in columns))
    if set(map(type, cells)) <= _NUMBER_TYPES:
        flat = np.fromiter(cells, dtype=np.float64, count=len(cells))
        if np.isfinite(flat).all():
            return times, np.ascontiguousarray(flat.reshape(len(columns), n).T), index_col
    bad = _first_bad_cell(cells)
    col, row = divmod(bad, n)
    raise _cell_error(cells[bad], (*loc, columns[col], row))


def parse_times(stamps: list[Any], where: Any) -> np.ndarray:
    """Epoch microseconds (UTC) for ISO strings or epoch numbers; ``where(i)`` locates row i."""
    times = None
    if set(map(type, stamps)) == {str}:
        lengths = set(map(len, stamps))
        if min(lengths) >= _FAST_ISO_MIN and max(lengths) <= _FAST_ISO_MAX:
            try:  # noqa: SIM105 (suppress() costs a context manager per request)
                times = np.array(stamps, dtype="datetime64[us]").view(np.int64)
            except ValueError:
                pass  # the loop below finds the offending row
    if times is None:
        times = np.empty(len(stamps), dtype=np.int64)
        for i, s in enumerate(stamps):
            times[i] = _one_time(s, where(i))
    if times.min() < _MIN_US or times.max() > _MAX_US:
        i = int(np.flatnonzero((times < _MIN_US) | (times > _MAX_US))[0])
        raise _range_error(stamps[i], where(i))
    return times


def _range_error(value: Any, loc: Loc) -> RequestError:
    return RequestError(
        loc,
        f"timestamp {value!r} is outside {MIN_TIME} .. {MAX_TIME}",
        "datetime_out_of_range",
    )


def _one_time(value: Any, loc: Loc) -> int:
    kind = type(value)
    if kind is int or kind is float:
        if not np.isfinite(value):
            raise RequestError(loc, "timestamp is not finite", "datetime_parsing")
        seconds = value / 1000.0 if abs(value) >= _MS_THRESHOLD else float(value)
        if not _MIN_US <= seconds * 1_000_000 <= _MAX_US:
            raise _range_error(value, loc)
        return round(seconds * 1_000_000)
    if kind is not str:
        raise RequestError(loc, f"{value!r} is not a timestamp", "datetime_type")
    text = value.strip()
    if len(text) == 7 and text[4] == "-":  # a calendar month (ISO 8601 "2016-01"): its first day
        text += "-01"
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        seconds = calendar.timegm(parsed.utctimetuple())
    except (ValueError, OverflowError):
        raise RequestError(
            loc, f"{value!r} is not an ISO 8601 timestamp", "datetime_parsing"
        ) from None
    return seconds * 1_000_000 + parsed.microsecond
