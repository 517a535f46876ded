"""A day per row, a column per time of day: the layout many meter and utility exports use.

``Date,00:15,00:30,...,24:00`` (a quarter-hour meter, periods named by their end),
``Date,00:00,01:00,...,23:00`` or ``Date,HE1,...,HE24`` (hours ending): the load of one day is
spread over one row. FLTS reads such a file as the one series it is, a row per time of day, so a
user need not reshape it. The layout is recognised only when it cannot be anything else:

* the named target is not a column (the series has no column of its own),
* the time column holds dates only, and
* at least two other columns are named by a time of day (``13:45``, ``0:15``) or an hour
  (``H1``, ``HE24``, ``Hour 7``; hour *k* is ``k:00``, so hours ending at 24 reach the next
  midnight, ``csv_text``'s 24:00 rule).

The cells are checked in the wide file, so an error names the file's own line and column. Other
columns (a day's mean temperature, a weekday name) are left out with a note: a value given once
per day cannot be placed at a time of day without reading the rest of that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from flts.forecasting.csv_text import DATE_ONLY

#: A column named by a time of day (``00:15``, ``7:00``, ``24:00``).
_CLOCK_NAME = re.compile(r"^(\d{1,2}):(\d{2})$")
#: A column named by an hour (``H1``, ``HE24``, ``Hour 7``, ``hour_07``).
_HOUR_NAME = re.compile(r"^(?:he|h|hour)[\s_]*(\d{1,2})$", re.IGNORECASE)


def _clock_of(name: str) -> str | None:
    """``HH:MM`` for a column named by a time of day or an hour, else None."""
    clock = _CLOCK_NAME.match(name)
    if clock is not None:
        hours, minutes = int(clock.group(1)), int(clock.group(2))
        valid = minutes < 60 and (hours < 24 or (hours, minutes) == (24, 0))
        return f"{hours:02d}:{minutes:02d}" if valid else None
    hour = _HOUR_NAME.match(name)
    if hour is not None and int(hour.group(1)) <= 24:
        return f"{int(hour.group(1)):02d}:00"
    return None


@dataclass(frozen=True)
class DayRows:
    """Where the layout puts the series: the date column and the time-of-day columns, in clock
    order, each with its ``HH:MM``."""

    date_column: str
    clocks: tuple[tuple[str, str], ...]
    #: Columns that are neither: left out.
    others: tuple[str, ...]

    def long(self, raw: pd.DataFrame, *, target: str) -> pd.DataFrame:
        """The series as a row per time of day: ``date_column`` (``<date> <HH:MM>`` text) and
        ``target`` (the cells' text), days in file order, times of day in clock order."""
        dates = raw[self.date_column].str.strip()
        stamps = pd.concat(
            [dates + " " + clock for _, clock in self.clocks], axis=1, ignore_index=True
        )
        cells = raw[[column for column, _ in self.clocks]]
        long = pd.DataFrame(
            {
                self.date_column: stamps.to_numpy().ravel(),
                target: cells.to_numpy().ravel(),
            }
        )
        # An empty cell is a missing value either way; leaving its row out keeps the times a
        # day does not have (the spring hour skipped by daylight-saving time, a day's future
        # at the end of an export) out of the timestamps. The grid fills them like any gap.
        kept: pd.DataFrame = long[long[target].str.strip() != ""].reset_index(drop=True)
        return kept


def day_rows_layout(raw: pd.DataFrame, *, time_col: str, target: str) -> DayRows | None:
    """The layout of ``raw`` (every cell text) when it is a day per row, else None."""
    if target in raw.columns or time_col not in raw.columns or raw.empty:
        return None
    if not raw[time_col].str.strip().str.fullmatch(DATE_ONLY).all():
        return None
    clocks = {str(c): _clock_of(str(c).strip()) for c in raw.columns if c != time_col}
    named = sorted(((c, t) for c, t in clocks.items() if t is not None), key=lambda ct: ct[1])
    times = [t for _, t in named]
    if len(named) < 2 or len(set(times)) < len(times) or {"00:00", "24:00"} <= set(times):
        return None  # one column, or two naming the same instant: not a day's profile
    others = tuple(c for c, t in clocks.items() if t is None)
    return DayRows(time_col, tuple(named), others)
