"""Timestamps written as a period's label instead of a date: quarters and ISO weeks.

Statistical offices and reporting tools label aggregated load by its period: ``2016Q1``,
``2016-Q1``, ``2016 Q1`` or ``Q1 2016`` (Eurostat, national statistics, pandas' own
``Period``), and ``2019-W02`` or ``2019W02`` (ISO 8601 weeks, optionally with a weekday,
``2019-W02-3``). A column read this way is placed at each period's first instant: a quarter's
first day, an ISO week's Monday (or the weekday given), so quarterly data steps by calendar
months like ``2016-01-01`` would, and weekly data by seven days. Only a column whose every value
is such a label is read so; ``csv_text.parse_timestamps`` offers it as one candidate among the
others.
"""

from __future__ import annotations

import re

import pandas as pd

_QUARTER_YEAR_FIRST = re.compile(r"^(?P<year>\d{4})\s*[-/ ]?\s*Q(?P<quarter>[1-4])$", re.IGNORECASE)
_QUARTER_YEAR_LAST = re.compile(r"^Q(?P<quarter>[1-4])\s*[-/ ]?\s*(?P<year>\d{4})$", re.IGNORECASE)
_ISO_WEEK = re.compile(r"^(?P<year>\d{4})-?W(?P<week>\d{2})(?:-?(?P<day>[1-7]))?$", re.IGNORECASE)


def _quarter_start(value: str) -> pd.Timestamp | None:
    match = _QUARTER_YEAR_FIRST.match(value) or _QUARTER_YEAR_LAST.match(value)
    if match is None:
        return None
    month = 3 * (int(match["quarter"]) - 1) + 1
    return pd.Timestamp(year=int(match["year"]), month=month, day=1, tz="UTC")


def _iso_week_day(value: str) -> pd.Timestamp | None:
    match = _ISO_WEEK.match(value)
    if match is None:
        return None
    day = match["day"] or "1"
    try:  # week 53 exists only in some years: strptime says which
        stamp = pd.to_datetime(f"{match['year']}-{match['week']}-{day}", format="%G-%V-%u")
    except ValueError:
        return None
    return stamp.tz_localize("UTC")


def parse_period_labels(text: pd.Series) -> tuple[pd.Series, str] | None:
    """UTC timestamps at each label's first instant when every value of ``text`` (stripped
    strings) is a quarter label, or every one an ISO week; else None."""
    if text.empty:
        return None
    for parse, how in (
        (_quarter_start, "quarter labels (2016 Q1: the quarter's first day)"),
        (_iso_week_day, "ISO 8601 weeks (2019-W02: its Monday)"),
    ):
        first = parse(str(text.iloc[0]))
        if first is None:
            continue
        stamps = [parse(str(value)) for value in text]
        if all(stamp is not None for stamp in stamps):
            return pd.Series(pd.DatetimeIndex(stamps), index=text.index), how
        return None
    return None
