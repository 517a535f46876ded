"""Public holidays as model inputs: a shop's load on Easter Monday looks like a Sunday's.

A run names its calendar with ``PreprocessConfig.holidays`` (``flts run --holidays DE``): an ISO
3166 country code, optionally with a subdivision (``ES-CT`` for Catalonia, ``AU-VIC``,
``US-CA``). The dates come from the maintained ``holidays`` package (already installed with
Prophet), which extends to any year asked for, so a saved model flags the holidays of years it
never saw. A timestamp's day is its local calendar day when the run has a ``timezone``, else its
UTC day (naive timestamps taken as clock time read the same way).

Who uses them: LightGBM, with two kinds of flag per design row (the target day is a holiday;
the day one season before the target was one, so its seasonal lag is no ordinary day). A
holiday changes the load's shape through the day (a shop: no opening ramp), which trees follow
from the flags and the time of day. Measured (LightGBM MAE / the better baseline's, 15-minute
simbench profiles): a year of a commercial profile with Christmas in the two test weeks, one
day ahead, 0.902x -> 0.783x (G1-A) and 0.547x -> 0.419x (G0-A), a household's unchanged
(0.785x -> 0.789x); the panel's three-week commercial slice with Easter Monday at 16 steps
0.857x -> 0.630x persistence MAE. The same flags made the linear model worse (one additive
weight shifts the night as much as the day: 0.985x -> 1.175x on G1-A), and Prophet given a
holiday-only daily seasonality moved by 1-4 % either way, so neither takes them. ``flts live``
converts its inputs to UTC first, so its days are UTC days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.domain.calendars import calendar_for, split_code

_DAY_SECONDS = 86_400


def local_days(seconds: np.ndarray, timezone: str | None) -> np.ndarray:
    """Day number (days since 1970-01-01) of each UTC timestamp, in ``timezone`` when given."""
    values = np.asarray(seconds, dtype=np.float64)
    if timezone is None:
        days: np.ndarray = np.floor(values / _DAY_SECONDS).astype(np.int64)
        return days
    utc = pd.DatetimeIndex(values.astype("int64").astype("datetime64[s]")).tz_localize("UTC")
    local = utc.tz_convert(timezone).tz_localize(None)
    return np.asarray(local.to_numpy().astype("datetime64[D]").astype(np.int64))


def holiday_flags(seconds: np.ndarray, code: str, timezone: str | None = None) -> np.ndarray:
    """1.0 where the (local) calendar day of each timestamp is a public holiday, else 0.0."""
    days = local_days(seconds, timezone)
    unique, inverse = np.unique(days, return_inverse=True)
    calendar = calendar_for(*split_code(code))
    dates = unique.astype("datetime64[D]").astype(object)
    flags = np.fromiter((date in calendar for date in dates), dtype=np.float64, count=len(dates))
    result: np.ndarray = flags[inverse].reshape(days.shape)
    return result


#: The one name every holiday gets in Prophet's table: one effect shared by all of them, learned
#: from any holiday in training (per-holiday effects need each holiday seen, i.e. years of data).
PROPHET_HOLIDAY = "public holiday"


def holiday_table(code: str, first_year: int, last_year: int) -> pd.DataFrame:
    """Prophet's ``holidays`` frame (``holiday``, ``ds``) for the years given, inclusive."""
    calendar = calendar_for(*split_code(code))
    start = np.datetime64(f"{first_year}-01-01")
    days = np.arange(start, np.datetime64(f"{last_year + 1}-01-01"), dtype="datetime64[D]")
    dates = [pd.Timestamp(day) for day in days.astype(object) if day in calendar]
    return pd.DataFrame({"holiday": PROPHET_HOLIDAY, "ds": dates})
