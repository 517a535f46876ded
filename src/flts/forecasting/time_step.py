"""The grid step of a series: a fixed number of seconds, or whole calendar months.

Most load data is a fixed time apart (2 minutes, 15 minutes, an hour, a day). Monthly,
quarterly and yearly data is not: a month is 28 to 31 days, so no fixed step puts every row on
one grid (February and March 1st fall on the same 31-day slot). Such data steps by calendar
months instead: ``months`` per step (1 monthly, 3 quarterly, 12 yearly), every timestamp at the
same point of its month, counted from the month's start (``2016-03-01``, ``2016-03-15 12:00``) or
back from its end (``2016-03-31``, the last day of each month, ``month_end``).

Every computation of "the timestamp k steps later" goes through :meth:`TimeStep.shift_us`, so
lags, forecast timestamps, the HTTP API and the live loop agree on months as on seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_US = 1_000_000
#: The mean Gregorian month (365.2425 days / 12): the nominal ``seconds`` of a monthly step.
MONTH_SECONDS = 2_629_746
#: Calendar steps recognised, in months (monthly, two-monthly, quarterly, four-monthly,
#: half-yearly, yearly): the ones that divide a year.
CALENDAR_MONTHS: tuple[int, ...] = (1, 2, 3, 4, 6, 12)
#: How far (as a fraction of the step) the median spacing may be from ``months`` mean months:
#: a two-row file a February apart (28 days) still reads as monthly.
_TOLERANCE = 0.085


@dataclass(frozen=True)
class TimeStep:
    """One step of a regular grid; ``seconds`` is nominal (the mean length) for calendar steps."""

    seconds: int
    months: int = 0
    month_end: bool = False

    @classmethod
    def monthly(cls, months: int, *, month_end: bool = False) -> TimeStep:
        return cls(months * MONTH_SECONDS, months, month_end)

    @property
    def calendar(self) -> bool:
        return self.months > 0

    def describe(self) -> str:
        """``120 s``, ``1 month``, ``3 months (month ends)``: for notes and error messages."""
        if not self.calendar:
            return f"{self.seconds} s"
        unit = "month" if self.months == 1 else "months"
        anchor = " (month ends)" if self.month_end else ""
        return f"{self.months} {unit}{anchor}"

    def shift_us(self, times_us: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
        """Epoch microseconds ``k`` steps after ``times_us`` (broadcast like ``times + k``).

        Calendar steps keep a timestamp's place in its month: its offset from the month's start,
        or for ``month_end`` its offset from the next month's start (so the 31st of January
        becomes the 28th or 29th of February).
        """
        times = np.asarray(times_us, dtype=np.int64)
        steps = np.asarray(k, dtype=np.int64)
        if not self.calendar:
            shifted: np.ndarray = times + steps * (self.seconds * _US)
            return shifted
        month = times.astype("datetime64[us]").astype("datetime64[M]")
        base = month + 1 if self.month_end else month
        offset = times - _month_us(base)
        later: np.ndarray = _month_us(base + steps * self.months) + offset
        return later

    def shift(self, stamps: np.ndarray, k: np.ndarray | int) -> np.ndarray:
        """:meth:`shift_us` for naive ``datetime64`` arrays (the result is ``datetime64[ns]``)."""
        us = np.asarray(stamps).astype("datetime64[us]").astype(np.int64)
        return self.shift_us(us, k).astype("datetime64[us]").astype("datetime64[ns]")

    def steps_from(self, times_us: np.ndarray, origin_us: int) -> np.ndarray:
        """Each timestamp's step number on the grid ``origin + k * step`` (the nearest one)."""
        times = np.asarray(times_us, dtype=np.int64)
        if self.calendar:
            months = _month_index(times) - _month_index(np.array([origin_us]))[0]
            slot: np.ndarray = np.round(months / self.months).astype(np.int64)
        else:
            slot = np.round((times - origin_us) / (self.seconds * _US)).astype(np.int64)
        return slot

    def slots(self, times_us: np.ndarray, origin_us: int) -> tuple[np.ndarray, int]:
        """:meth:`steps_from`, and how many timestamps were not exactly on the grid."""
        times = np.asarray(times_us, dtype=np.int64)
        slot = self.steps_from(times, origin_us)
        snapped = int(np.count_nonzero(self.shift_us(origin_us, slot) != times))
        return slot, snapped


def _month_index(times_us: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each timestamp (floored, so before 1970 too)."""
    index: np.ndarray = times_us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    return index


def _month_us(months: np.ndarray) -> np.ndarray:
    """Epoch microseconds of the start of each ``datetime64[M]``."""
    start: np.ndarray = np.asarray(months).astype("datetime64[us]").astype(np.int64)
    return start


def times_us_of(ds: pd.Series) -> np.ndarray:
    """Naive (UTC) timestamps as epoch microseconds."""
    values = pd.to_datetime(ds)
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    us: np.ndarray = values.to_numpy(dtype="datetime64[us]").astype(np.int64)
    return us


def calendar_step_of(times_us: np.ndarray, months: int) -> tuple[TimeStep, int]:
    """The anchoring (month start or end) that puts most consecutive rows one step apart, and
    how many pairs it puts so."""
    best: tuple[TimeStep, int] | None = None
    for month_end in (False, True):
        step = TimeStep.monthly(months, month_end=month_end)
        hits = int(np.count_nonzero(step.shift_us(times_us[:-1], 1) == times_us[1:]))
        if best is None or hits > best[1]:
            best = step, hits
    assert best is not None
    return best


def infer_step(ds: pd.Series) -> TimeStep | None:
    """The calendar step of monthly-like timestamps, or None (a fixed step applies).

    Calendar months win when their median spacing is near a whole number of mean months and
    calendar arithmetic explains at least as many consecutive pairs as the fixed median step
    does (data exactly 30 days apart stays a fixed step).
    """
    times = times_us_of(ds)
    if len(times) < 2:
        return None
    diffs = np.diff(times)
    median = float(np.median(diffs)) / _US
    for months in CALENDAR_MONTHS:
        nominal = months * MONTH_SECONDS
        if abs(median - nominal) <= _TOLERANCE * nominal:
            step, hits = calendar_step_of(times, months)
            fixed_hits = int(np.count_nonzero(diffs == round(median) * _US))
            return step if hits and hits >= fixed_hits else None
    return None
