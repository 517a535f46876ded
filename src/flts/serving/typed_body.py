"""The typed fast path of the /predict decoder: msgspec decodes a clean rows body in one C pass.

:func:`flts.serving.validation.parse_predict_body` tries this first. A per-model
``msgspec.Struct`` declares every raw column as ``float`` and the time keys as ``str | int |
float``, so msgspec itself refuses what the strict rules refuse (``true``, ``"1.5"``, ``null``,
numbers that overflow a double, a missing column) while it decodes, without building a dict per
row. It never explains a refusal: :func:`decode_rows` returns None for anything that is not a
plain, clean rows body, and the diagnosing decoder in :mod:`validation` then raises the error
naming the field (so messages and ``loc`` are the same whichever path saw the body first).

What keeps the two paths equivalent (``tests/unit/test_typed_body.py`` checks it on generated
bodies): this path is never more lenient than the diagnosing one. Anything it is unsure about
returns None: non-ASCII bodies (msgspec skips unknown fields without checking their UTF-8,
orjson refuses bad UTF-8 anywhere), a time key missing from a row, a row count over the limit, a
value that is not finite; timestamps go through the same :func:`validation.parse_times`.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np

_UNSET: Any = msgspec.UNSET
_Stamp = str | int | float | msgspec.UnsetType


class RowsDecoder:
    """Decodes ``{"observations": [...], "inference_length": n}`` for one tuple of columns;
    the first of ``time_keys`` present in the first row names every row's timestamp."""

    def __init__(self, columns: tuple[str, ...], time_keys: tuple[str, ...]) -> None:
        if not columns or set(columns) & set(time_keys):
            raise ValueError(f"columns {list(columns)} must be non-empty and not time keys")
        self.columns = columns
        self.time_keys = time_keys
        time_fields = [f"time_{i}" for i in range(len(time_keys))]
        value_fields = [f"column_{i}" for i in range(len(columns))]
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
            (name, float) for name in value_fields
        ]
        fields += [(name, _Stamp, _UNSET) for name in time_fields]
        rename = dict(zip(value_fields, columns, strict=True))
        rename.update(zip(time_fields, time_keys, strict=True))
        row = msgspec.defstruct("Row", fields, rename=rename, gc=False)
        body = msgspec.defstruct(
            "RowsBody",
            [
                ("observations", list[row] | msgspec.UnsetType, _UNSET),  # type: ignore[valid-type]
                ("inference_length", int | None, None),
            ],
            gc=False,
        )
        self._decoder = msgspec.json.Decoder(body)
        self._values = attrgetter(*value_fields)
        self._time_getters = [attrgetter(name) for name in time_fields]

    def decode(
        self, body: bytes, max_rows: int
    ) -> tuple[list[Any], np.ndarray, str, int | None] | None:
        """(timestamps, values (n, width) float64, time key, inference_length), or None when
        the diagnosing decoder must look at this body."""
        if not body.isascii():
            return None
        try:
            doc: Any = self._decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        rows = doc.observations
        if rows is _UNSET or not rows or len(rows) > max_rows:
            return None
        first = rows[0]
        index = next(
            (i for i, get in enumerate(self._time_getters) if get(first) is not _UNSET), None
        )
        if index is None:
            return None
        stamps = list(map(self._time_getters[index], rows))
        if _UNSET in stamps:
            return None
        width = len(self.columns)
        # One flat pass in C (fromiter over the chained row tuples) is cheaper than np.array
        # on a list of tuples; msgspec already made every cell a float.
        cells = (
            map(self._values, rows) if width == 1 else chain.from_iterable(map(self._values, rows))
        )
        values = np.fromiter(cells, dtype=np.float64, count=len(rows) * width)
        if not np.isfinite(values).all():
            return None
        values = values.reshape(len(rows), width)
        return stamps, values, self.time_keys[index], doc.inference_length
