"""Columns that complete the time column, or repeat it: read with it, or left out as inputs.

Grid operators and meters often write a timestamp across two columns (the date-and-time-of-day
pair is ``csv_text.split_timestamp``). The others recognised here, each with a note:

* **Zone column** (``Time Stamp,Time Zone,...`` with ``EST``/``EDT``, as US grid operators write
  it): a column whose every value is a zone abbreviation ``csv_text`` knows is read with the
  timestamps as their UTC offsets, so the autumn's repeated hour is told apart.
* **Period numbers** (``SETTLEMENT_DATE,SETTLEMENT_PERIOD`` with 1..48, ``Date,Hour`` with 1..24
  or 0..23): when the time column holds dates only and exactly one integer column, named as a
  period (``period``, ``hour``, ``HE``, ``interval``, ``slot``, ``block``, ...), counts up within
  each date and starts again at the next, period *k* of a day of *N* is *k* x (24 h / *N*)
  after midnight. Counting from 1, that is the period's end, as hour-ending columns are read
  (``day_rows``: hour *k* is ``k:00``; the last period is the next midnight); counting from 0,
  its start. *N* is the count most days have; a day with more periods (the autumn's 50 half hours)
  or fewer is a daylight-saving change: with a zone (``--timezone``) the periods are counted in
  elapsed time from local midnight, without one that day is an error naming the zone option.
* **Another timestamp column** (``utc_timestamp,cet_cest_timestamp,load``, or a period's end next
  to its start): a text column whose every value parses as a timestamp says when, not how much;
  when the inputs are not listed, it is left out.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.csv_text import (
    DATE_ONLY,
    MISSING_MARKERS,
    ZONE_OFFSETS,
    SplitTimestamp,
    parse_timestamps,
    split_timestamp,
)
from flts.forecasting.read_hints import did_you_mean, edge_rows_hint, time_column_hint
from flts.forecasting.time_order import line_of

_DAY_SECONDS = 86_400
_OFFSET_AT_END = r"(?:Z|[+-]\d\d:?\d\d)$"
_PERIOD_NUMBER = re.compile(r"^\d{1,3}$")
#: A column name that says it numbers periods of a day (``SETTLEMENT_PERIOD``, ``Hour``, ``HE``,
#: ``Interval``, ``Time Block``; ``Stunde``, ``Heure``, ``Hora``, ``Uur``, ``Kwartier`` as
#: German, French, Spanish and Dutch operators write them): integer ids of series listed per
#: date (``store 1..48``) would otherwise read as half hours.
_PERIOD_NAME = re.compile(
    r"period|hour|interval|slot|block|settlement|quarter|stunde|heure|hora|kwartier|\buur\b"
    r"|^(?:he|hh|qh|hr)\b",
    re.IGNORECASE,
)
#: A value that may be a timestamp: digits joined by date or time separators (not a plain number).
_TIMESTAMP_LIKE = re.compile(r"^\d[\d\s./:T+-]*[./:T-][\d\s./:T+Z-]*$")


def _text(raw: pd.DataFrame, column: str) -> pd.Series:
    text: pd.Series = raw[column].str.strip()
    return text


#: The name pandas gives a first column whose header cell is empty (R's and pandas' row labels).
UNNAMED_FIRST = "Unnamed: 0"


def with_unnamed_time_column(raw: pd.DataFrame, time_col: str) -> pd.DataFrame | None:
    """``raw`` with its first column named ``time_col``, when there is no column of that name,
    the first column's header is empty and its every value is a timestamp (as ``write.csv`` and
    data sets written from a time index put it: ``"";"MT_001";...``); else None."""
    if time_col in raw.columns or raw.empty or str(raw.columns[0]) != UNNAMED_FIRST:
        return None
    if not _all_timestamps(_text(raw, UNNAMED_FIRST)):
        return None
    return raw.rename(columns={UNNAMED_FIRST: time_col})


def zone_column(raw: pd.DataFrame, times: pd.Series, exclude: set[str]) -> str | None:
    """The one column of ``raw`` (none in ``exclude``) whose every value is a known zone
    abbreviation (``EST``/``EDT``), when the timestamps ``times`` carry no zone of their own."""
    last_word = times.str.strip().str.extract(r"([A-Za-z]+)\)?$")[0].str.upper()
    if (
        times.empty
        or times.str.contains(_OFFSET_AT_END).any()
        or last_word.isin(ZONE_OFFSETS).any()
    ):
        return None
    found = [
        str(c)
        for c in raw.columns
        if c not in exclude and _text(raw, str(c)).str.upper().isin(ZONE_OFFSETS.keys()).all()
    ]
    return found[0] if len(found) == 1 else None


def with_zone(times: pd.Series, zones: pd.Series) -> pd.Series:
    """``<timestamp> <zone>`` per row, for ``parse_timestamps`` (which reads the zone)."""
    joined: pd.Series = times.str.strip() + " " + zones.str.strip().str.upper()
    return joined


@dataclass(frozen=True)
class PeriodNumbers:
    """A date column and a column numbering the periods of each day."""

    date_column: str
    period_column: str
    first: int  # 0 or 1: the number of a day's first period
    per_day: int  # periods in most days

    @property
    def step_seconds(self) -> int:
        return _DAY_SECONDS // self.per_day

    def describe(self) -> str:
        at = "end" if self.first == 1 else "start"
        return (
            f"column {self.period_column!r} numbering {self.per_day} periods a day from "
            f"{self.first} (period k read at k x {self.step_seconds // 60} min after midnight"
            f"{', the next midnight for the last' if self.first == 1 else ''}: the period's "
            f"{at})"
        )

    def timestamps(
        self, numbers: pd.Series, dates: pd.Series, timezone: str | None, source: str
    ) -> pd.Series:
        """Naive UTC timestamps from ``dates`` (naive calendar dates of the date column) and the
        period ``numbers``; in ``timezone``, counted in elapsed time from local midnight."""
        numbers = numbers.astype("int64").reset_index(drop=True)
        offset = pd.to_timedelta(numbers * self.step_seconds, unit="s")  # an end, or a start
        dates = dates.reset_index(drop=True)
        if timezone is None:
            self._check_periods(
                numbers, dates, pd.Series(self.per_day, numbers.index), None, source
            )
            naive: pd.Series = dates + offset
            return naive
        midnight = dates.dt.tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)
        day_end = (dates + pd.Timedelta(days=1)).dt.tz_localize(
            timezone, nonexistent="shift_forward", ambiguous=True
        )
        periods_in_day = (day_end - midnight).dt.total_seconds() // self.step_seconds
        self._check_periods(numbers, dates, periods_in_day.astype("int64"), timezone, source)
        utc: pd.Series = (midnight + offset).dt.tz_convert("UTC").dt.tz_localize(None)
        return utc

    def _check_periods(
        self,
        numbers: pd.Series,
        dates: pd.Series,
        periods_in_day: pd.Series,
        timezone: str | None,
        source: str,
    ) -> None:
        """Every period within its day. Without a zone, a day numbering more periods than most
        (the autumn's repeated hour) cannot be placed: say which and how to name the zone."""
        over = np.flatnonzero((numbers - self.first + 1 > periods_in_day).to_numpy())
        if not len(over):
            return
        i = int(over[0])
        where = (
            f"{source}: line {line_of(i)}: period {numbers.iloc[i]} of {dates.iloc[i].date()} "
            f"in column {self.period_column!r}"
        )
        if timezone is None:
            raise DataValidationError(
                f"{where}, where most days have {self.per_day}: periods counted through a "
                "daylight-saving change; name the zone of the clock (`flts run --timezone "
                "Europe/London`, config field timezone)"
            )
        raise DataValidationError(
            f"{where} is after the end of that day in {timezone} ({periods_in_day.iloc[i]} "
            f"periods of {self.step_seconds // 60} min)"
        )


def period_numbers(raw: pd.DataFrame, time_col: str, exclude: set[str]) -> PeriodNumbers | None:
    """The period-number layout (module docstring), when ``time_col`` holds dates only, some
    date appears on more than one row, and exactly one other column numbers each date's rows."""
    dates = _text(raw, time_col)
    if dates.empty or not dates.str.fullmatch(DATE_ONLY).all() or not dates.duplicated().any():
        return None
    day = (dates != dates.shift()).cumsum()
    found: list[PeriodNumbers] = []
    for column in raw.columns:
        name = str(column)
        if name == time_col or name in exclude:
            continue
        text = _text(raw, name)
        if not _PERIOD_NAME.search(name) or not text.str.fullmatch(_PERIOD_NUMBER).all():
            continue
        layout = _numbering(text.astype("int64"), day, time_col, name)
        if layout is not None:
            found.append(layout)
    return found[0] if len(found) == 1 else None


def _numbering(
    numbers: pd.Series, day: pd.Series, date_col: str, column: str
) -> PeriodNumbers | None:
    """A numbering that increases within every day and starts again on the next one."""
    same_day = (day == day.shift()).to_numpy()[1:]
    rising = numbers.diff().to_numpy()[1:] > 0
    if not (rising == same_day).all():  # rises exactly within days, falls or restarts between
        return None
    first = int(numbers.min())
    if first not in (0, 1):
        return None
    largest = numbers.groupby(day.to_numpy()).max() + (1 - first)
    if len(largest) > 1:
        largest = largest.iloc[:-1]  # a file's last day may end early; the others run to midnight
    # Days of a whole number of minutes per period: not a daylight-saving day's 46 or 50.
    regular = largest[(largest >= 2) & (_DAY_SECONDS % (60 * largest) == 0)]
    if regular.empty:
        return None
    per_day = int(regular.mode().min())
    return PeriodNumbers(date_col, column, first, per_day)


def timestamp_columns(raw: pd.DataFrame, columns: list[str]) -> list[str]:
    """Those of ``columns`` whose every value (missing markers aside) is a timestamp: text that
    says when, not how much (a second time column)."""
    found = []
    for column in columns:
        text = _text(raw, column)
        if _all_timestamps(text[~text.str.lower().isin(MISSING_MARKERS)]):
            found.append(column)
    return found


def missing_time_column_hint(raw: pd.DataFrame, time_col: str) -> str:
    """For an error saying ``time_col`` is not a column of ``raw``: the column the user
    probably meant (another case, a typo), else the column(s) that hold timestamps."""
    columns = [str(c) for c in raw.columns]
    return did_you_mean(time_col, columns, "--time-col") or time_column_hint(
        timestamp_columns(raw, columns)
    )


#: Day and month names as spreadsheets write them beside a date (``Friday``, ``Fri``, ``March``).
_CALENDAR_NAMES = frozenset(
    name.lower()
    for name in (*calendar.day_name, *calendar.day_abbr, *calendar.month_name, *calendar.month_abbr)
    if name
)


def calendar_name_columns(raw: pd.DataFrame, columns: list[str]) -> list[str]:
    """Those of ``columns`` whose every value is a day or month name (a ``Weekday`` column): the
    calendar of the timestamps again, which every model reads from the time itself."""
    found = []
    for column in columns:
        text = _text(raw, column).str.lower().str.rstrip(".")
        if not text.empty and text.isin(_CALENDAR_NAMES).all():
            found.append(column)
    return found


def _all_timestamps(text: pd.Series) -> bool:
    """Whether every value of ``text`` (stripped, at least one) is a timestamp and none a plain
    number (epoch seconds, decimals: a measurement as far as anyone can tell)."""
    if text.empty or not text.str.match(_TIMESTAMP_LIKE).all():
        return False
    if pd.to_numeric(text, errors="coerce").notna().any():
        return False
    try:
        parsed, _ = parse_timestamps(text)
    except ValueError:
        return False
    return bool(parsed.notna().all())


#: A standard/summer pair of zone abbreviations in a time column's name (``Time (CET/CEST)``, as
#: ENTSO-E names it) and the IANA zone whose clock that is. Only pairs: a name with one
#: abbreviation (``EST``) may mean that offset all year round.
_NAMED_CLOCKS = {
    "WET/WEST": "WET",
    "GMT/BST": "Europe/London",
    "CET/CEST": "CET",
    "MEZ/MESZ": "CET",
    "EET/EEST": "EET",
    "EST/EDT": "America/New_York",
    "CST/CDT": "America/Chicago",
    "MST/MDT": "America/Denver",
    "PST/PDT": "America/Los_Angeles",
}


def zone_named_by(column: str) -> str | None:
    """The clock-time zone a time column's name gives (``Time (CET/CEST)``), else None."""
    compact = re.sub(r"\s+", "", column.upper())
    for pair, zone in _NAMED_CLOCKS.items():
        if re.search(rf"(?<![A-Z]){re.escape(pair)}(?![A-Z])", compact):
            return zone
    return None


def parse_times(
    values: pd.Series, *, source: str, config: PreprocessConfig, label: str
) -> tuple[pd.Series, str]:
    """Naive UTC timestamps and how they were read (see ``csv_text.parse_timestamps``);
    ``label`` names the column(s) they come from in messages ("column 'time'")."""
    try:
        parsed, how = parse_timestamps(values.str.strip(), config.timezone)
    except ValueError as exc:
        raise DataValidationError(f"{source}: {label}: {exc}") from exc
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        first = int(bad[0])
        raise DataValidationError(
            f"{source}: {len(bad)} of {len(values)} values in {label} cannot be parsed "
            f"as timestamps (first at line {line_of(first)}: {values.iloc[first]!r})"
            + (
                edge_rows_hint(bad, len(values))
                or "; write them as ISO 8601 (2024-01-31 13:45, with +01:00 or Z for the zone), "
                "day-first or month-first dates, or Unix epoch seconds"
            )
        )
    naive = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.astype("datetime64[ns]").reset_index(drop=True), how


@dataclass(frozen=True)
class _Completing:
    """The columns found to complete a time column (at most one of ``split`` and ``periods``)."""

    split: SplitTimestamp | None
    periods: PeriodNumbers | None
    zone: str | None

    def names(self, time_col: str) -> set[str]:
        names = set() if self.zone is None else {self.zone}
        if self.split is not None:
            names |= self.split.columns - {time_col}
        if self.periods is not None:
            names.add(self.periods.period_column)
        return names


def _completing(raw: pd.DataFrame, time_col: str, target: str | None) -> _Completing:
    """The other half of a date and time-of-day pair, or else period numbers, and a zone column
    (none of them the ``target``: a target that could be a time of day is the target)."""
    split, periods = split_timestamp(raw, time_col), None
    if split is None:
        periods = period_numbers(raw, time_col, set() if target is None else {target})
    elif target in split.columns - {time_col}:
        split = None
    found = _Completing(split, periods, None)
    times = raw[time_col] if split is None else split.joined(raw)
    exclude = {time_col, *found.names(time_col), *([] if target is None else [target])}
    return replace(found, zone=zone_column(raw, times, exclude))


def time_companions(raw: pd.DataFrame, time_col: str) -> set[str]:
    """The columns that complete ``time_col`` (the other half of a date and time-of-day pair,
    period numbers, a zone): in a wide file, part of every series' time, not a series."""
    return _completing(raw, time_col, None).names(time_col)


@dataclass(frozen=True)
class TimeParts:
    """Where a file's timestamps come from: the text to parse, the columns it names in messages,
    and the period numbering when the time column holds dates only."""

    times: pd.Series
    label: str
    periods: PeriodNumbers | None = None
    numbers: pd.Series | None = None  # the period numbers, as integers


def time_parts(
    raw: pd.DataFrame, config: PreprocessConfig, source: str
) -> tuple[pd.DataFrame, TimeParts, list[str]]:
    """``raw`` without the columns that complete the time column (a time of day, period numbers,
    a zone), where the timestamps come from, and a note for each column read with them."""
    time_col, notes = config.time_col, []
    found = _completing(raw, time_col, config.target)
    parts = TimeParts(raw[time_col], f"column {time_col!r}")
    split, periods = found.split, found.periods
    if split is not None:
        parts = TimeParts(
            split.joined(raw), f"columns {split.date_column!r} + {split.clock_column!r}"
        )
        notes.append(
            f"{source}: columns {split.date_column!r} (date) and {split.clock_column!r} "
            "(time of day) read together as the timestamp"
            + (
                ""
                if split.end_column is None
                else f", each row at its period's start ({split.end_column!r}, the end, left out)"
            )
        )
    elif periods is not None:
        numbers = _text(raw, periods.period_column).astype("int64")
        parts = TimeParts(parts.times, f"column {time_col!r}", periods, numbers)
        notes.append(f"{source}: dates in column {time_col!r} with {periods.describe()}")
    zone = found.zone
    if zone is not None:
        zones = sorted(set(_text(raw, zone).str.upper()))
        parts = TimeParts(
            with_zone(parts.times, raw[zone]),
            f"{parts.label} + {zone!r}",
            parts.periods,
            parts.numbers,
        )
        notes.append(
            f"{source}: column {zone!r} ({'/'.join(zones)}) read with the timestamps as their "
            "UTC offsets"
        )
    return raw.drop(columns=sorted(found.names(time_col))), parts, notes


def read_times(
    parts: TimeParts, config: PreprocessConfig, source: str
) -> tuple[PreprocessConfig, pd.Series, list[str]]:
    """The config with the clock zone the time column's name gives (when none is configured),
    the naive UTC timestamps, and a note on how they were read when not plainly ISO 8601."""
    clock = config
    named_zone = zone_named_by(config.time_col) if config.timezone is None else None
    if named_zone is not None:
        clock = config.model_copy(update={"timezone": named_zone})
    named = ""
    if parts.periods is not None and parts.numbers is not None:
        dates, how = parse_times(
            parts.times,
            source=source,
            config=config.model_copy(update={"timezone": None}),
            label=parts.label,
        )
        ds = parts.periods.timestamps(parts.numbers, dates, clock.timezone, source)
        counted = "UTC" if clock.timezone is None else f"{clock.timezone} clock"
        return (
            clock,
            ds,
            [f"{source}: {parts.label} read as {how}, periods counted from midnight ({counted})"],
        )
    ds, how = parse_times(parts.times, source=source, config=clock, label=parts.label)
    if how == "ISO 8601":
        return clock, ds, []
    if named_zone is not None and f"{named_zone} clock time" in how:
        named = " (the zone named by the column; --timezone overrides)"
    return clock, ds, [f"{source}: {parts.label} read as {how}{named}"]
