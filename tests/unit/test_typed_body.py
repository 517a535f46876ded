"""The typed fast path of the /predict decoder never accepts more than the diagnosing decoder,
and when it accepts a body it returns exactly what the diagnosing decoder returns."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flts.serving.typed_body import RowsDecoder
from flts.serving.validation import (
    TIME_KEYS,
    PredictInput,
    RequestError,
    _parse_diagnosing,
    _rows_decoder,
    parse_predict_body,
)

COLUMNS = ("down", "up")
MAX_ROWS = 6

# Cells a client might send: mostly clean numbers, plus every kind of mistake the strict rules
# refuse (bools, numeric strings, null, huge integers, values that are not numbers at all).
_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**70), max_value=2**70),
)
_mistakes = st.one_of(
    st.booleans(),
    st.none(),
    st.sampled_from(["1.5", "", "nan", "é"]),
    st.lists(st.integers(), max_size=1),
)
_cells = st.one_of(_numbers, _numbers, _numbers, _mistakes)
_stamps = st.one_of(
    st.sampled_from(
        [
            "2018-02-05T23:40:00",
            "2018-02-05 23:42:00",
            "2018-02-05",
            "2018-02-05T23:44:00Z",
            "2018-02-05T23:46:00+01:00",
            "now",
            "9999-01-01T00:00:00",
            "2018-13-45",
        ]
    ),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


@st.composite
def rows_bodies(draw: st.DrawFn) -> bytes:
    """Mostly clean bodies (so both decoders accept many), each with a chance of one mistake."""
    n = draw(st.integers(min_value=0, max_value=MAX_ROWS + 1))
    key = draw(st.sampled_from(TIME_KEYS))
    rows: list[Any] = []
    for i in range(n):
        stamp: Any = f"2018-02-05T23:{2 * i:02d}:00"
        if draw(st.integers(0, 15)) == 0:
            stamp = draw(_stamps)
        row: dict[str, Any] = {key: stamp}
        for column in COLUMNS:
            if draw(st.integers(0, 39)):  # now and then a column is missing
                row[column] = draw(_numbers if draw(st.integers(0, 24)) else _cells)
        if draw(st.integers(0, 3)) == 0:
            row[draw(st.sampled_from(["extra", "extra", "extra", *TIME_KEYS]))] = draw(
                st.one_of(st.text(max_size=3), _cells, _stamps)
            )
        if draw(st.integers(0, 39)) == 0:
            row.pop(key)
        rows.append(row if draw(st.integers(0, 59)) else draw(_cells))
    doc: dict[str, Any] = {"observations": rows}
    if draw(st.booleans()):
        doc["inference_length"] = draw(st.one_of(st.integers(-1, 3), _mistakes, st.floats()))
    # The standard library writes integers beyond 64 bits and NaN (invalid JSON: refused).
    return json.dumps(doc, ensure_ascii=False).encode()


def _outcome(parse: Any, body: bytes) -> tuple[str, Any]:
    try:
        result: PredictInput = parse(body, COLUMNS, MAX_ROWS)
    except RequestError as exc:
        return "error", exc.detail()
    return "ok", result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows_bodies())
def test_fast_path_is_never_more_lenient_and_answers_alike(body: bytes) -> None:
    decoder = RowsDecoder(COLUMNS, TIME_KEYS)
    fast = decoder.decode(body, MAX_ROWS)
    slow_kind, slow = _outcome(_parse_diagnosing, body)
    if fast is not None:
        _stamps_seen, values, key, length = fast
        # Accepted by the typed decoder: the diagnosing decoder must accept the same cells
        # (timestamps are checked by the shared parse_times after both).
        assert slow_kind == "ok" or slow["loc"][-1] == key, slow
        if slow_kind == "ok":
            assert key == slow.time_key
            assert length == slow.inference_length
            np.testing.assert_array_equal(values, slow.values)
    # Whatever path answered, the public decoder answers exactly like the diagnosing one.
    kind, answer = _outcome(parse_predict_body, body)
    assert kind == slow_kind
    if kind == "error":
        assert answer == slow
    else:
        np.testing.assert_array_equal(answer.times_us, slow.times_us)
        np.testing.assert_array_equal(answer.values, slow.values)
        assert (answer.time_key, answer.inference_length, answer.legacy) == (
            slow.time_key,
            slow.inference_length,
            slow.legacy,
        )


def test_a_clean_body_takes_the_fast_path() -> None:
    body = orjson.dumps(
        {
            "observations": [
                {"ts": "2018-02-05T23:40:00", "down": 1, "up": 2.5, "other": "x"},
                {"ts": "2018-02-05T23:42:00", "down": 3.0, "up": -4},
            ],
            "inference_length": 1,
        }
    )
    fast = RowsDecoder(COLUMNS, TIME_KEYS).decode(body, MAX_ROWS)
    assert fast is not None
    stamps, values, key, length = fast
    assert (key, length, len(stamps)) == ("ts", 1, 2)
    np.testing.assert_array_equal(values, [[1.0, 2.5], [3.0, -4.0]])


@pytest.mark.parametrize(
    "body",
    [
        b'{"observations":[{"ds":"2018-02-05","down":true,"up":1}]}',
        b'{"observations":[{"ds":"2018-02-05","down":"1.5","up":1}]}',
        b'{"observations":[{"ds":"2018-02-05","down":null,"up":1}]}',
        b'{"observations":[{"ds":"2018-02-05","down":1e999,"up":1}]}',
        b'{"observations":[{"ds":"2018-02-05","up":1}]}',
        b'{"observations":[{"down":1,"up":1}]}',
        b'{"observations":[{"ds":"2018-02-05","down":1,"up":1,"x":"\xff"}]}',
        b'{"observations":[]}',
        b'{"data":{"ds":["2018-02-05"],"down":[1],"up":[1]}}',
    ],
)
def test_anything_unclean_is_left_to_the_diagnosing_decoder(body: bytes) -> None:
    assert RowsDecoder(COLUMNS, TIME_KEYS).decode(body, MAX_ROWS) is None


def test_columns_named_like_time_keys_use_the_diagnosing_decoder_only() -> None:
    assert _rows_decoder(("down", "time")) is None
    with pytest.raises(ValueError, match="time keys"):
        RowsDecoder(("down", "time"), TIME_KEYS)
