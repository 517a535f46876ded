"""Timestamps must increase; when they do not, say which lines and the likely reason.

The reasons a user's file goes back in time, most specific first: a row copied by joining files
with overlapping ends (every cell the same), several series one after another (a column constant
until time restarts, where it changes, or a column telling apart the rows that share a time: long
format, ``--series-col``), or local clock time
repeating an hour when daylight-saving time ends (``--timezone``). A file whose rows mostly go
back in time is listed newest first: the error names the first pair that does not (such a file
is read in reverse when every pair does, ``data.is_newest_first``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd

from flts.errors import DataValidationError

#: Data row 0 is on line 2 of the file (line 1 is the header) ...
_LINE_OFFSET = 2
#: ... unless lines above the header were skipped (``file_edges``): the reading of
#: such a file runs within ``lines_skipped``, so every message names the file's own lines.
_SKIPPED: ContextVar[int] = ContextVar("lines_above_the_header", default=0)


def line_of(index: int) -> int:
    """The file line of data row ``index``."""
    return int(index) + _LINE_OFFSET + _SKIPPED.get()


@contextmanager
def lines_skipped(count: int) -> Iterator[None]:
    """Line numbers within this block count ``count`` skipped lines above the header."""
    token = _SKIPPED.set(count)
    try:
        yield
    finally:
        _SKIPPED.reset(token)


#: Months in which daylight-saving time ends somewhere (north: Oct/Nov, south: Mar/Apr) and the
#: clock hours the repeated hour starts at (01:00 in North America, 02:00 in Europe, ...).
_DST_END_MONTHS = (3, 4, 9, 10, 11)
_DST_REPEAT_HOURS = (1, 2, 3)


def _dst_hint(before: pd.Timestamp, after: pd.Timestamp) -> str:
    """A hint when a repeated or backward timestamp looks like the end of daylight-saving time:
    the clock goes back to a whole hour by less than an hour, in a month where that happens."""
    back = before - after
    on_the_hour = after.minute == 0 and after.second == 0
    if (
        on_the_hour
        and after.hour in _DST_REPEAT_HOURS
        and after.month in _DST_END_MONTHS
        and pd.Timedelta(0) <= back < pd.Timedelta(hours=1)
    ):
        return (
            "; this looks like local clock time repeating an hour when daylight-saving time "
            f"ends: name the zone (`flts run --timezone {_ZONE_EXAMPLES[after.hour]}`, config "
            "field timezone), or write the timestamps with their UTC offset or in UTC"
        )
    return ""


#: A zone whose clock repeats the hour starting at that clock hour when summer time ends.
_ZONE_EXAMPLES = {1: "America/New_York", 2: "Europe/Berlin", 3: "Europe/Helsinki"}


def check_increasing(
    ds: pd.Series,
    *,
    source: str,
    clock_time: bool = True,
    raw: pd.DataFrame | None = None,
    rows: pd.DataFrame | None = None,
) -> None:
    """Timestamps strictly increasing, else an error naming the lines and the likely cause:
    a copied row (``rows``: every cell as read), several series (``raw``: the non-time,
    non-target columns), or daylight-saving time (``clock_time``)."""
    diffs = ds.diff().to_numpy()[1:]
    bad = np.flatnonzero(diffs <= np.timedelta64(0, "ns"))
    if not len(bad):
        return
    if 2 * int((diffs < np.timedelta64(0, "ns")).sum()) > len(diffs):
        _raise_newest_first(ds, diffs, source)
    i = int(bad[0]) + 1  # the later row of the offending pair
    before, after = ds.iloc[i - 1], ds.iloc[i]
    dst = _dst_hint(before, after) if clock_time else ""
    # A logger writing clock time may copy the hour's values when it comes round again
    # (simbench's profiles do): then the zone is the likelier way out than deleting rows.
    repeat = _repeat_hint(ds, rows, i, after_dst_hint=bool(dst))
    if dst and repeat:
        hint = dst + repeat
    else:
        hint = repeat or _series_hint(raw, i) or _interleaved_hint(ds, raw, i) or dst
    if before == after:
        raise DataValidationError(
            f"{source}: duplicated timestamp {after} at lines {line_of(i - 1)} and "
            f"{line_of(i)}{hint}"
        )
    raise DataValidationError(
        f"{source}: timestamps not sorted at lines {line_of(i - 1)}-{line_of(i)} "
        f"({after} after {before})"
        + (hint or "; if the rows are only out of order, `flts run --sort-rows` sorts them")
    )


def _repeat_hint(
    ds: pd.Series, rows: pd.DataFrame | None, i: int, *, after_dst_hint: bool = False
) -> str:
    """A hint when row ``i`` copies an earlier row with its timestamp in every cell: files
    joined end to end with overlapping ends (``after_dst_hint``: worded as the other reading,
    to follow the daylight-saving hint)."""
    if rows is None:
        return ""
    same_time = np.flatnonzero((ds.iloc[:i] == ds.iloc[i]).to_numpy())
    current = rows.iloc[i].str.strip().tolist()
    for j in same_time:
        if rows.iloc[int(j)].str.strip().tolist() == current:
            lead = "; if not, line" if after_dst_hint else "; line"
            return (
                f"{lead} {line_of(i)} repeats line {line_of(int(j))} in every column, as files "
                "joined with overlapping ends do: remove the repeated rows"
            )
    return ""


def _raise_newest_first(ds: pd.Series, diffs: np.ndarray, source: str) -> None:
    """The error for a file listed mostly newest first: the first pair that is not (a file read
    in reverse must be newest first throughout)."""
    backwards = int((diffs < np.timedelta64(0, "ns")).sum())
    i = int(np.flatnonzero(diffs >= np.timedelta64(0, "ns"))[0]) + 1
    before, after = ds.iloc[i - 1], ds.iloc[i]
    what = f"repeats {before}" if before == after else f"goes forward in time ({before}, {after})"
    raise DataValidationError(
        f"{source}: rows are listed newest first ({backwards} of {len(diffs)} rows are earlier "
        f"than the row above them), but line {line_of(i)} {what} at lines "
        f"{line_of(i - 1)}-{line_of(i)}: a file is read in reverse only when every row is "
        "earlier than the one above it"
    )


def _series_hint(raw: pd.DataFrame | None, i: int) -> str:
    """A hint when time restarts at row ``i`` where a column, constant until then, changes value:
    several series one after another (long format)."""
    if raw is None or i < 2:  # one row before is no evidence of a column held constant
        return ""
    for column in raw.columns:
        text = raw[column].str.strip()
        if text.iloc[:i].nunique() != 1 or text.iloc[i] == text.iloc[i - 1]:
            continue
        return (
            f"; column {column!r} changes from {text.iloc[i - 1]!r} to {text.iloc[i]!r} there: if "
            f"the file holds several series one after another, run them as a fleet with "
            f"`flts run --series-col {column}`"
        )
    return ""


def _interleaved_hint(ds: pd.Series, raw: pd.DataFrame | None, i: int) -> str:
    """A hint when rows of several series share each timestamp (long format sorted by time): a
    column that tells the two rows at ``i - 1`` and ``i`` apart and, with the time, every row."""
    # Most timestamps shared, not one repeated hour (daylight-saving time, a copied row).
    if raw is None or ds.iloc[i] != ds.iloc[i - 1] or ds.duplicated().mean() < 0.25:
        return ""
    keys = []
    for column in raw.columns:
        text = raw[column].str.strip()
        if text.iloc[i] == text.iloc[i - 1] or text.nunique() > len(text) // 2:
            continue
        if not pd.DataFrame({"t": ds.to_numpy(), "k": text.to_numpy()}).duplicated().any():
            keys.append(str(column))
    if not keys:
        return ""
    # An identifier is more often a name than a number (a zone name beside its numeric code).
    texts = [k for k in keys if pd.to_numeric(raw[k].str.strip(), errors="coerce").isna().any()]
    column = (texts or keys)[0]
    fleet = f"run them as a fleet with `flts run --series-col {column}`"
    numbered = _numbered_within_times(ds, raw[column].str.strip())
    if numbered is not None:
        return (
            f"; column {column!r} numbers the rows of each timestamp from {numbered[0]} to "
            f"{numbered[1]}: if it counts the periods of a day (hours, half hours), give it a "
            "name that says so (a column named with period, hour, interval, slot, block or "
            "quarter is read with the dates); if it tells series apart, " + fleet
        )
    return (
        f"; column {column!r} tells the rows of each timestamp apart: if the file holds several "
        f"series side by side, {fleet}"
    )


def _numbered_within_times(ds: pd.Series, text: pd.Series) -> tuple[int, int] | None:
    """The first and last number when ``text`` holds integers that count the rows of each run of
    equal timestamps from 0 or 1 (period numbers beside a date, or integer series ids)."""
    if not text.str.fullmatch(r"\d{1,4}").all():
        return None
    numbers = text.astype("int64").reset_index(drop=True)
    times = ds.reset_index(drop=True)
    same_time = (times == times.shift()).to_numpy()[1:]
    if not ((numbers.diff().to_numpy()[1:] == 1) == same_time).all():
        return None
    if int(numbers.min()) not in (0, 1):
        return None
    return int(numbers.min()), int(numbers.max())
