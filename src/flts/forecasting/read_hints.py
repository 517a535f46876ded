"""Error hints: what a user probably meant when a file or a name does not fit.

Each helper returns a clause to append to an error message ("; did you mean --target 'Load'?"),
or "" when it has nothing to say; the reading code (``flts.forecasting.data``) decides when to
raise.
"""

from __future__ import annotations

import difflib

import numpy as np

from flts.forecasting.time_order import line_of


def did_you_mean(name: str, columns: list[str], option: str) -> str:
    """A hint naming the column the user probably meant (another case, spaces, a typo)."""
    folded = {c.strip().casefold(): c for c in columns}
    match = folded.get(name.strip().casefold())
    if match is None:
        close = difflib.get_close_matches(name, columns, n=1, cutoff=0.75)
        match = close[0] if close else None
    return f"; did you mean {option} {match!r}?" if match is not None else ""


def time_column_hint(candidates: list[str]) -> str:
    """A hint naming the column that holds timestamps when the named one is missing (one
    candidate: that one; several: all of them)."""
    if not candidates:
        return ""
    if len(candidates) == 1:
        return f"; the timestamps look to be in {candidates[0]!r}: --time-col {candidates[0]!r}"
    return f"; columns holding timestamps: {candidates} (name one with --time-col)"


#: At most this many rows without a timestamp at either end of a file are taken for a sub-header
#: or a footer in the error's hint.
_EDGE_ROWS = 3


def edge_rows_hint(bad: np.ndarray, rows: int) -> str:
    """A hint when only the first or the last few rows have no timestamp: rows under the header
    (units, descriptions) or, at the end, a line cut short or a footer (rows whose time cell
    holds no digit at all are left out before: ``file_edges``)."""
    if len(bad) > _EDGE_ROWS:
        return ""
    lines = ", ".join(str(line_of(int(i))) for i in bad)
    if np.array_equal(bad, np.arange(len(bad))):
        return (
            f"; only line(s) {lines} right under the header: if they hold units or "
            "descriptions, not data, remove them"
        )
    if np.array_equal(bad, np.arange(rows - len(bad), rows)):
        return (
            f"; only the last line(s) {lines}: a timestamp cut short (a file copied while it "
            "was being written?) or a footer with a number in its first cell: remove them"
        )
    return ""
