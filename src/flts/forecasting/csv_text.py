"""How a user's CSV writes its data: the delimiter, decimal commas, and the timestamps.

Load data comes from meters, SCADA exports and spreadsheets, not only from pandas. Each reading
rule here accepts one common way of writing the same data, and says what it did in a note, so a
file is never read differently without the run's notes saying so:

* **Compression.** A gzip, bzip2, xz or single-file zip archive is read decompressed
  (``compressed``; recognised by its first bytes).
* **Encoding.** UTF-8 (with or without a byte-order mark), UTF-16 or UTF-32 with one (Excel's
  "Unicode Text"), else Windows-1252, else Latin-1.
  Column names lose surrounding spaces (``time ; load`` names ``time`` and ``load``).
* **Delimiter.** Comma, semicolon, tab or pipe, sniffed from the first lines (Python's
  ``csv.Sniffer``); a comma when the sniff is unsure, or named by Excel's ``sep=;`` line.
* **Lines that are not data** above the header or at the ends of the data: ``file_edges``.
* **Decimal comma.** In a file not delimited by commas, a numeric column written ``12,5`` is read
  as 12.5 when *every* value parses that way, dots grouping thousands included (``1.234,5``, as
  spreadsheets write large values; every dot followed by three digits). In a comma-delimited
  file ``"1,234"`` would be a thousands separator as often as a decimal one, so it stays an
  error there, as does a column mixing other uses of dots and commas (``1.5`` next to ``2,5``).
* **Commas grouping thousands** (``"1,234.5"``, as English-locale spreadsheets write large
  values): read when every value is a plain number or comma-grouped, and the column shows the
  commas cannot be decimal ones (a grouped value with a decimal point or two commas, a decimal
  point elsewhere in the column, or, in a comma-delimited file, integers under a thousand written
  without a comma beside grouped ones, none of them ``0,...``).
* **Spaces or apostrophes grouping thousands** (``1 234,5`` with a plain, no-break or narrow
  no-break space, as French, Nordic, Polish or Czech spreadsheets write it; ``1'234.5``, Swiss):
  read when some value is grouped so and every other one is a plain number; a comma is then the
  decimal mark, whatever the delimiter. A minus sign written as U+2212 is a minus.
* **A unit after every value** (``12.5 kW``, ``3,2 kWh``): read as the number when every value
  of the column carries the same unit (two units would be two scales: an error).
* **Missing values** may be written as an empty cell or as a marker: pandas' defaults (``NA``,
  ``n/a``, ``#N/A``, ``null``, ``NaN``, ...), a dash (``-``, ``--``, as reports and grid
  operators' exports write a reading not available), a question mark (``?``, as the UCI
  repository's data sets write it), ``ND`` / ``n/d`` (no data) and ENTSO-E's ``n/e``. Markers
  other than empty cells are counted in a note, since a dash means zero in some accounting formats.
* **Timestamps.** ISO 8601 (with or without a UTC offset) first. Otherwise the candidates are
  Unix epoch numbers (seconds, milliseconds, microseconds or nanoseconds, told apart by size;
  only values after 1973, so a row counter is never taken for time), the format pandas infers
  month first, and the same day first, and spreadsheet serial dates (Excel's and LibreOffice's
  day numbers, ``44927.5`` for 2023-01-01 12:00, as a sheet saved as CSV without a date format
  writes them; only values from 1954 to 2119, where no epoch unit lands, and read as clock time
  like a written date), and period labels (quarters ``2016 Q1``, ISO weeks ``2019-W02``, at
  the period's first day: ``period_labels``). The candidate that parses the most values wins, and
  among those the one whose spacing is most regular: ``01.02.2016`` to ``12.02.2016`` parse both
  ways, but only day first gives a regular hourly series.
* **Intervals** (``01.01.2021 00:00 - 01.01.2021 00:15``, as grid operators' and ENTSO-E's
  exports label a period): when every value is two timestamps joined by a spaced dash and each
  ends after it starts, the row is read at its interval's start, like the other rows of a file
  that names periods by their first instant.
* **Zone abbreviations** after the time (``2021-10-31 02:00 CEST``, ``... 02:00 CET``; the
  common European, North American and Asia-Pacific ones, ``ZONE_OFFSETS``) are their UTC
  offsets, so they also tell the two autumn hours apart.
* **24:00** (``2021-01-01 24:00``, as ISO 8601 allows and hour-ending exports write the day's
  last hour) is midnight of the next day.
* **True/False** input columns (pandas writes booleans so) are read as 1/0
  (:func:`true_false_flags`); a target must be a quantity.
* **Date and time of day in two columns** (``Datum;Uhrzeit;Wert``, ``date,time,load``): when
  the time column holds only dates and exactly one other column holds only times of day (or the
  other way round), the two are read together as one timestamp, and that column is no input.
* **Clock time zone** (``PreprocessConfig.timezone``): naive timestamps are local clock times in
  that zone and are converted to UTC; the hour repeated when daylight-saving time ends is told
  apart by its order (pandas ``ambiguous="infer"``), or, written only once, is read as the first
  of the two (the second is then a missing step, filled like any gap); a time in the hour skipped
  in spring is an error. Without a zone, naive timestamps are taken as UTC. Dates without a
  time of day (daily, monthly data) are calendar days: a zone does not move them.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from flts.forecasting.compressed import decompressed
from flts.forecasting.file_edges import DELIMITERS, HeaderPlace, after_lines, header_place
from flts.forecasting.period_labels import parse_period_labels

#: Bytes of the file the delimiter is sniffed from.
SNIFF_BYTES = 64 * 1024
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$")
#: A decimal comma with dots grouping the thousands (``1.234,5``, ``12.345.678``).
_GROUPED_DECIMAL_COMMA = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?$")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?$")
#: Commas grouping thousands, with an optional decimal point (``1,234.5``, ``12,345,678``).
_GROUPED_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
#: Cell texts (lower case, stripped) that mean "no value": pandas' default NA strings and dashes.
MISSING_MARKERS = frozenset(
    {
        "",
        "#n/a",
        "#n/a n/a",
        "#na",
        "-1.#ind",
        "-1.#qnan",
        "-nan",
        "1.#ind",
        "1.#qnan",
        "<na>",
        "n/a",
        "na",
        "null",
        "nan",
        "none",
        "-",
        "--",
        "n/e",  # ENTSO-E's "not expected": no value published for that period
        "?",  # as the UCI repository's data sets (household power consumption) write it
        "nd",  # "non disponible" / "no data", as French and Spanish grid operators write it
        "n/d",
    }
)
#: How a numeric column was written, when not plainly (:func:`numbers_of`): "decimal commas",
#: "commas grouping thousands", or "a unit after every value ('kW')" (one of those may precede).
NumberStyle = str
#: A number followed by a unit (``12.5 kW``, ``3,2kWh``, ``45 %``, ``21.5 °C``).
_WITH_UNIT = re.compile(r"^([+-]?[\d.,]*\d)\s*([A-Za-z%°µ][A-Za-z0-9%°µ/²³.]*)$")
#: A UTC offset or ``Z`` at the end of a timestamp.
_OFFSET = r"(?:Z|[+-]\d\d:?\d\d)$"
#: Epoch values below this many seconds (3 March 1973) are not taken for Unix time.
_EPOCH_MIN_SECONDS = 1e8
EpochUnit = Literal["s", "ms", "us", "ns"]
#: Spreadsheet day numbers taken for dates: 1954-09-03 to 2119-01-10 (epoch seconds there would
#: be the first day of 1970, so the two never meet), counted from ``_SERIAL_ORIGIN``.
_SERIAL_DAYS = (20_000.0, 80_000.0)
_SERIAL_ORIGIN = pd.Timestamp("1899-12-30")
_DAY_SECONDS = 86_400
#: Upper bounds of the magnitude of the median value for each epoch unit (else nanoseconds).
_EPOCH_UNITS: tuple[tuple[float, EpochUnit, str], ...] = (
    (1e11, "s", "seconds"),
    (1e14, "ms", "milliseconds"),
    (1e17, "us", "microseconds"),
)


def sniff_delimiter(data: bytes) -> str:
    """The file's field delimiter, sniffed from its first lines; a comma when unsure."""
    sample = data[:SNIFF_BYTES].decode("utf-8", errors="replace")
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may cut the last line short
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=DELIMITERS)
    except csv.Error:
        return ","
    return str(dialect.delimiter)


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    #: "utf-8" (a byte-order mark is dropped), "utf-16" / "utf-32" (read from a byte-order
    #: mark), else the legacy Windows code page the file is in.
    encoding: str
    #: "gzip", "bzip2", "xz" or "zip" when the file was compressed (``compressed``), else None.
    compression: str | None = None
    #: The lines above the header (``header_place``).
    header: HeaderPlace = field(default_factory=HeaderPlace)


#: Byte-order marks of the Unicode encodings other than UTF-8 (longest first: UTF-32 LE starts
#: with UTF-16 LE's), as Excel's "Unicode Text" export (UTF-16, tab-delimited) begins.
_UNICODE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def as_utf8(data: bytes) -> tuple[bytes, str | None]:
    """``data`` re-encoded as UTF-8 when it starts with a UTF-16 or UTF-32 byte-order mark, and
    that encoding's name; else ``data`` unchanged and None."""
    for bom, encoding in _UNICODE_BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding).encode("utf-8"), encoding
            except UnicodeDecodeError:
                return data, None  # not that encoding after all: read as bytes like any file
    return data, None


def _head(data: bytes, encoding: str) -> str:
    return data[:SNIFF_BYTES].decode("utf-8" if encoding.startswith("utf") else encoding, "replace")


def text_encoding(data: bytes) -> str:
    """UTF-8 when the bytes decode as such; else Windows-1252 (what spreadsheets on Windows
    write), or Latin-1, which decodes any byte."""
    for encoding in ("utf-8", "cp1252"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"


def read_csv_text(
    source: bytes | Path, nrows: int | None = None, header_named: str | None = None
) -> tuple[pd.DataFrame, CsvDialect]:
    """Every cell as text (nothing turned into NaN), and how the file was written;
    ``header_named``: a column the header names, to find a header below a preamble.

    Raises what ``pandas.read_csv`` raises on unreadable input (and ``OSError`` for a path).
    """
    data, compression = decompressed(source.read_bytes() if isinstance(source, Path) else source)
    data, unicode = as_utf8(data)
    encoding = unicode or text_encoding(data)
    place = header_place(_head(data, encoding), header_named)
    data = after_lines(data, place.skipped)
    delimiter = place.delimiter or sniff_delimiter(data)
    dialect = CsvDialect(delimiter, encoding, compression, place)
    read = _CellReader(data, dialect, "utf-8" if unicode else dialect.encoding, nrows)
    frame = read()
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas makes the first fields an index when the data rows have more fields than the
        # header names, silently shifting every column: only empty extras are harmless.
        frame = _without_empty_extra_fields(frame, read)
    names = [str(c).strip() for c in frame.columns]
    if len(set(names)) == len(names):  # "load " is "load", unless that makes two of one name
        frame.columns = pd.Index(names)
    return frame, dialect


@dataclass(frozen=True)
class _CellReader:
    """The file's data lines read as text cells (``index_col=False``: never a row index)."""

    data: bytes
    dialect: CsvDialect
    encoding: str
    nrows: int | None

    def __call__(self, index_col: Literal[False] | None = None) -> pd.DataFrame:
        return pd.read_csv(
            io.BytesIO(self.data),
            sep=self.dialect.delimiter,
            encoding=self.encoding,
            dtype=str,
            keep_default_na=False,
            nrows=self.nrows,
            index_col=index_col,
        )


def _without_empty_extra_fields(frame: pd.DataFrame, read: _CellReader) -> pd.DataFrame:
    """The rows read without the fields past the header's last column when every one is empty
    (a delimiter at the end of each data line), else a ``ParserError`` naming the first line
    with a value there: an unquoted delimiter in a value, or a column the header does not name.
    """
    whole_rows = frame.reset_index().to_numpy(dtype=str)  # the index is the rows' first fields
    if not np.char.strip(whole_rows[:, -frame.index.nlevels :]).any():
        with warnings.catch_warnings():  # the "loss of data" it warns of: empty fields only
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            return read(index_col=False)
    dialect = read.dialect
    reader = csv.reader(io.StringIO(read.data.decode(read.encoding)), delimiter=dialect.delimiter)
    header = next(reader)
    for fields in reader:
        if len(fields) > len(header) and any(f.strip() for f in fields[len(header) :]):
            break
    else:  # pandas and the csv module disagree on the fields: say what pandas saw
        raise pd.errors.ParserError(
            f"data lines have more fields than the header names ({len(header)} columns)"
        )
    line = reader.line_num + dialect.header.skipped
    shown = ", ".join(repr(f) for f in fields[:8]) + (", ..." if len(fields) > 8 else "")
    raise pd.errors.ParserError(
        f"line {line} has {len(fields)} fields ({shown}) where the header names {len(header)} "
        f"columns ({', '.join(repr(h) for h in header)}): quote each value that holds the "
        f"delimiter {dialect.delimiter!r}, or name every column in the header"
    )


#: A date without a time (``31.01.2016``, ``2016-01-31``, ``1/31/2016``, ``01-JAN-2023``).
DATE_ONLY = r"(?:\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}[ ./-][A-Za-z]{3,9}\.?[ ./-]\d{2,4})"
#: A time of day without a date (``13:45``, ``13:45:00``, ``1:45 PM``).
_TIME_OF_DAY = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?"


@dataclass(frozen=True)
class SplitTimestamp:
    """A timestamp written as a date column and a time-of-day column (and, where the file gives
    each row's period as a start and an end time of day, the end's column, not read)."""

    date_column: str
    clock_column: str
    end_column: str | None = None

    @property
    def columns(self) -> set[str]:
        return {self.date_column, self.clock_column} | (
            set() if self.end_column is None else {self.end_column}
        )

    def joined(self, raw: pd.DataFrame) -> pd.Series:
        """``<date> <time>`` per row, for :func:`parse_timestamps`."""
        joined: pd.Series = (
            raw[self.date_column].str.strip() + " " + raw[self.clock_column].str.strip()
        )
        return joined


def split_timestamp(raw: pd.DataFrame, time_column: str) -> SplitTimestamp | None:
    """The date and time-of-day columns, when ``time_column`` is one half of a timestamp written
    in two columns and exactly one other column is the other half; else None."""

    def only(column: str, pattern: str) -> bool:
        text = raw[column].str.strip()
        return bool(len(text)) and bool(text.str.fullmatch(pattern).all())

    if only(time_column, DATE_ONLY):
        wanted, time_is_date = _TIME_OF_DAY, True
    elif only(time_column, _TIME_OF_DAY):
        wanted, time_is_date = DATE_ONLY, False
    else:
        return None
    others = [str(c) for c in raw.columns if c != time_column and only(str(c), wanted)]
    if time_is_date and len(others) == 2:  # ``Datum;Anfang;Ende``: a period's start and end
        period = _start_and_end(raw[others[0]], raw[others[1]])
        if period is not None:
            start, end = (others[i] for i in period)
            return SplitTimestamp(time_column, start, end)
    if len(others) != 1:  # none, or no telling which
        return None
    other = others[0]
    return (
        SplitTimestamp(time_column, other) if time_is_date else SplitTimestamp(other, time_column)
    )


#: Half a day in minutes: a row's period is shorter (else the two columns are no start and end).
_HALF_DAY_MINUTES = 720


def _start_and_end(first: pd.Series, second: pd.Series) -> tuple[int, int] | None:
    """Which of two 24-hour time-of-day columns is each row's start (0 or 1) and which its end,
    when the end is the same minutes after the start in every row (SMARD's ``Anfang;Ende``,
    ``00:00;00:15``); else None."""
    minutes = []
    for column in (first, second):
        parts = column.str.strip().str.extract(r"^(\d{1,2}):(\d{2})(?::\d{2})?$")
        if parts.isna().any().any():
            return None
        minutes.append(parts[0].astype("int64") * 60 + parts[1].astype("int64"))
    length = (minutes[1] - minutes[0]) % (2 * _HALF_DAY_MINUTES)
    if length.nunique() != 1:
        return None
    span = int(length.iloc[0])
    if 0 < span < _HALF_DAY_MINUTES:
        return 0, 1
    if span > _HALF_DAY_MINUTES:  # the end written before the start
        return 1, 0
    return None


def numbers_of(text: pd.Series, delimiter: str) -> tuple[pd.Series, NumberStyle | None]:
    """A text column (empty cells may be NA) as float64, NaN where not numeric, and how it was
    written when not plainly: decimal commas or commas grouping thousands (read as the module
    docstring says)."""
    stripped = text.str.strip().str.replace(_UNICODE_MINUS, "-", regex=False)
    numbers = pd.to_numeric(stripped, errors="coerce").astype("float64")
    if numbers.isna().any():
        present = stripped.where(stripped != "")
        decimal = decimal_comma_numbers(present, delimiter)
        if decimal is not None:
            return decimal.astype("float64"), "decimal commas"
        grouped = thousands_comma_numbers(present, delimiter)
        if grouped is not None:
            return grouped.astype("float64"), "commas grouping thousands"
        ungrouped = _without_space_groups(present)
        if ungrouped is not None:
            # Where spaces group thousands a comma is the decimal mark, whatever the delimiter.
            values, style = numbers_of(ungrouped, ";")
            written = "spaces or apostrophes grouping thousands"
            return values, written if style is None else f"{style} and {written}"
        # Last: a value with a unit is no plain number in any of the styles above.
        unit = _one_unit(present)
        if unit is not None:
            values, style = numbers_of(present.str.extract(_WITH_UNIT)[0], delimiter)
            written = f"a unit after every value ({unit!r})"
            return values, written if style is None else f"{style} and {written}"
    return numbers, None


#: The minus sign a typesetting export may write (U+2212), read as a hyphen-minus.
_UNICODE_MINUS = "\u2212"
#: Thousands grouped by a space (French, Nordic, Polish, Czech locales: spreadsheets write a
#: no-break or narrow no-break one) or an apostrophe (Swiss locale), either decimal mark after.
_SPACE_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:[ \u00a0\u202f'\u2019]\d{3})+(?:[.,]\d*)?$")
_SPACE_GROUP_MARKS = re.compile(r"(?<=\d)[ \u00a0\u202f'\u2019](?=\d{3})")
_PLAIN_OR_DECIMAL_COMMA = re.compile(r"^[+-]?\d+(?:[.,]\d*)?$")


def _without_space_groups(present: pd.Series) -> pd.Series | None:
    """``present`` (stripped, empty cells as NA) without the marks grouping thousands, when some
    value is grouped by spaces or apostrophes and every other one is a plain number (a space
    is never a decimal mark, so the grouping is not ambiguous); else None."""
    known = present.dropna()
    grouped = known.str.match(_SPACE_GROUPED)
    if known.empty or not grouped.any():
        return None
    if not (grouped | known.str.match(_PLAIN_OR_DECIMAL_COMMA)).all():
        return None
    return present.str.replace(_SPACE_GROUP_MARKS, "", regex=True)


def units_of(present: pd.Series) -> list[str]:
    """The units the values of ``present`` (stripped, empty cells as NA) are written with, in
    order of appearance, when every value is ``<number> <unit>`` (``12.5 kW``), else []."""
    parts = present.dropna().str.extract(_WITH_UNIT)
    if parts.empty or parts.isna().any().any():
        return []
    return [str(unit) for unit in parts[1].unique()]


def _one_unit(present: pd.Series) -> str | None:
    """The unit every value is written with, when it is one (two units, ``kW`` and ``MW``,
    would be two scales, not one to leave out)."""
    units = units_of(present)
    return units[0] if len(units) == 1 else None


def thousands_comma_numbers(text: pd.Series, delimiter: str = ",") -> pd.Series | None:
    """``text`` (stripped, empty cells as NA) with commas grouping thousands, or None when the
    column is not written so or does not show that its commas cannot be decimal ones."""
    present = text.dropna()
    if present.empty or not present.str.contains(",", regex=False).any():
        return None
    grouped = present.map(lambda value: bool(_GROUPED_THOUSANDS.match(value)))
    plain = present.map(lambda value: bool(_PLAIN_NUMBER.match(value)))
    if not (grouped | plain).all():
        return None
    dotted = present.str.contains(".", regex=False)
    if not (
        dotted.any()
        or present[grouped].str.count(",").ge(2).any()
        or _integers_grouped_from_a_thousand(present, grouped, delimiter)
    ):
        return None  # "1,234" alone: a thousand and more, or one and a quarter
    return pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")


def _integers_grouped_from_a_thousand(
    present: pd.Series, grouped: pd.Series, delimiter: str
) -> bool:
    """Whether a comma-delimited file's column writes integers under a thousand plainly and
    those above with commas (``"987"``, ``"1,234"``), never a group after a zero (``0,987``): a
    writer of decimal commas would put its comma in the small values too, and would not have
    quoted them in a file delimited by commas."""
    if delimiter != ",":
        return False
    small_integers = present[~grouped].str.fullmatch(r"[+-]?\d{1,3}")
    leading_zero = present[grouped].str.match(r"[+-]?0,")
    return bool(small_integers.any()) and not bool(leading_zero.any())


#: Words a yes/no column is written with (pandas writes booleans as True/False).
_TRUE_FALSE = {"true": 1.0, "false": 0.0}


def true_false_flags(values: pd.Series) -> pd.Series | None:
    """A column of True/False (any case; empty cells missing) as 1.0/0.0, else None."""
    text = values.str.strip().str.lower()
    present = text[text != ""]
    if present.empty or not present.isin(_TRUE_FALSE.keys()).all():
        return None
    flags: pd.Series = text.map(_TRUE_FALSE).astype("float64").reset_index(drop=True)
    return flags


def decimal_comma_numbers(text: pd.Series, delimiter: str) -> pd.Series | None:
    """``text`` (stripped, empty cells as NA) read with decimal commas, or None when it isn't."""
    if delimiter == ",":
        return None
    present = text.dropna()
    if present.empty or not present.str.contains(",", regex=False).any():
        return None
    plain = present.map(lambda value: bool(_DECIMAL_COMMA.match(value)))
    if plain.all():
        return pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    grouped = present.map(lambda value: bool(_GROUPED_DECIMAL_COMMA.match(value)))
    if not (grouped | plain).all():
        return None
    # Dots grouping thousands as well (a spreadsheet's 1.234,5): only in a column that also has
    # decimal commas and whose every dot is followed by exactly three digits.
    ungrouped = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(ungrouped, errors="coerce")


#: Zone abbreviations load exports write after a clock time, with their UTC offsets. "CST" is
#: North American Central Standard Time. Ambiguous ones (IST: India, Ireland or Israel) are left
#: out: such values stay unparsed and the error names them.
ZONE_OFFSETS = {
    "UTC": "+00:00",
    "GMT": "+00:00",
    "WET": "+00:00",
    "WEST": "+01:00",
    "BST": "+01:00",
    "CET": "+01:00",
    "CEST": "+02:00",
    "MEZ": "+01:00",
    "MESZ": "+02:00",
    "EET": "+02:00",
    "EEST": "+03:00",
    "MSK": "+03:00",
    "JST": "+09:00",
    "KST": "+09:00",
    "AEST": "+10:00",
    "AEDT": "+11:00",
    "NZST": "+12:00",
    "NZDT": "+13:00",
    "HST": "-10:00",
    "AKST": "-09:00",
    "AKDT": "-08:00",
    "PST": "-08:00",
    "PDT": "-07:00",
    "MST": "-07:00",
    "MDT": "-06:00",
    "CST": "-06:00",
    "CDT": "-05:00",
    "EST": "-05:00",
    "EDT": "-04:00",
}
#: A clock time followed by a zone abbreviation, possibly in brackets (``02:00 CEST``).
#: The time before it ends in a digit or in am/pm (``1/1/2023 1 a.m. EST``, as EIA writes hours).
_ZONED = re.compile(r"^(.*(?:\d|[AaPp]\.?[Mm]\.?))\s*\(?([A-Za-z]{2,5})\)?$")


def _zone_abbreviations_as_offsets(text: pd.Series) -> tuple[pd.Series, bool]:
    """``text`` with a trailing zone abbreviation replaced by its UTC offset, when every value
    ends with one this module knows (``ZONE_OFFSETS``); else ``text`` unchanged. Such values say
    which of the two autumn hours they are, like an offset does."""
    parts = text.str.extract(_ZONED)
    zones = parts[1].str.upper()
    if text.empty or parts.isna().any().any() or not zones.isin(ZONE_OFFSETS.keys()).all():
        return text, False
    return parts[0] + zones.map(ZONE_OFFSETS), True


#: The end of a day written as 24:00, as ISO 8601 allows and hour-ending exports write it.
_END_OF_DAY = re.compile(r"^(.*\d)([ T])24:00(?::00)?$")
#: Two timestamps joined by a dash with spaces around it (a hyphen or an en dash).
_INTERVAL = re.compile(r"^(.+?)\s+[-\u2013]\s+(.+)$")


def _interval_halves(text: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """The starts and ends of values written as intervals (``A - B``), or None unless every
    value is one whose two halves parse, with the end after the start."""
    if text.empty:
        return None
    halves = text.str.extract(_INTERVAL)
    if halves.isna().any().any():
        return None
    starts, ends = halves[0].str.strip(), halves[1].str.strip()
    first, _ = parse_timestamps(starts)
    last, _ = parse_timestamps(ends)
    if first.isna().any() or last.isna().any():
        return None
    # In clock time the period that ends when daylight-saving time does ends before it starts
    # (02:45 - 02:00): up to an hour back is allowed, as long as most periods run forward.
    length = last - first
    if not (
        (length > -pd.Timedelta(hours=1)).all()
        and 2 * int((length > pd.Timedelta(0)).sum()) > len(length)
    ):
        return None
    return starts, ends


def _epoch(text: pd.Series) -> tuple[pd.Series, str] | None:
    if not text.map(lambda value: bool(_PLAIN_NUMBER.match(value))).all():
        return None
    numbers = pd.to_numeric(text, errors="coerce")
    magnitude = float(np.nanmedian(np.abs(numbers.to_numpy(dtype=np.float64))))
    if magnitude < _EPOCH_MIN_SECONDS:
        return None
    unit: EpochUnit = "ns"
    name = "nanoseconds"
    for bound, candidate, label in _EPOCH_UNITS:
        if magnitude < bound:
            unit, name = candidate, label
            break
    parsed = pd.to_datetime(numbers, errors="coerce", utc=True, unit=unit)
    return parsed, f"Unix epoch {name}"


def _spreadsheet_days(text: pd.Series) -> tuple[pd.Series, str] | None:
    """Spreadsheet serial dates: days (and fractions of a day) since 1899-12-30, the origin
    Excel's and LibreOffice's dates count from, rounded to the second (a sheet writes 15 minutes
    as 0.0104166667). Every value between ``_SERIAL_DAYS`` (1954 to 2119), so a row counter or a
    year column is never taken for one."""
    if not text.map(lambda value: bool(_PLAIN_NUMBER.match(value))).all():
        return None
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    low, high = _SERIAL_DAYS
    if not ((numbers >= low) & (numbers < high)).all():
        return None
    seconds = np.rint(numbers * _DAY_SECONDS).astype(np.int64)
    parsed = pd.Series(_SERIAL_ORIGIN + pd.to_timedelta(seconds, unit="s"), index=text.index)
    return parsed.dt.tz_localize("UTC"), "spreadsheet serial dates (days since 1899-12-30)"


def _inferred(text: pd.Series, dayfirst: bool) -> tuple[pd.Series, str]:
    with warnings.catch_warnings():
        # pandas warns when it falls back to parsing value by value; the choice below judges.
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(text, errors="coerce", utc=True, dayfirst=dayfirst)
    return parsed, "day-first dates" if dayfirst else "dates in an inferred format"


#: Values looked at to tell day-first from month-first writing.
_FORMAT_PROBES = 500


def _written_day_first(text: pd.Series) -> bool:
    """Whether the dates are written day first, judged by the first value whose format pandas
    guesses the same way whichever it is told to prefer (``31.10.2016``, not ``01.02.2016``)."""
    for value in text.dropna().unique()[:_FORMAT_PROBES]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            month_first = guess_datetime_format(str(value), dayfirst=False)
            day_first = guess_datetime_format(str(value), dayfirst=True)
        if month_first is None or month_first != day_first or "%d" not in month_first:
            continue
        # A month written as a name (``01-Jan-2023``, ``Jan 1, 2023``) is neither.
        return "%m" in month_first and month_first.index("%d") < month_first.index("%m")
    return False


def _regularity(parsed: pd.Series) -> float:
    """Share of consecutive spacings equal to the median one (1.0: a perfectly regular grid)."""
    spacing = parsed.dropna().diff().dropna()
    if spacing.empty:
        return 1.0
    return float((spacing == spacing.median()).mean())


def parse_timestamps(text: pd.Series, timezone: str | None = None) -> tuple[pd.Series, str]:
    """UTC timestamps (NaT where a value cannot be parsed) and how they were read.

    ``text`` holds stripped strings. See the module docstring for the candidates and the choice.
    Raises ``ValueError`` when ``timezone`` is given and a clock time cannot be placed in it.
    """
    interval = _interval_halves(text)
    if interval is not None:
        starts, how = parse_timestamps(interval[0], timezone)
        return starts, f"{how}, the start of each interval"
    text, zoned = _zone_abbreviations_as_offsets(text)
    end_of_day = text.str.match(_END_OF_DAY)
    if end_of_day.any():
        text = text.str.replace(_END_OF_DAY, r"\g<1>\g<2>00:00", regex=True)
    next_day = pd.to_timedelta(end_of_day.astype("int64"), unit="D")

    def shifted(candidate: tuple[pd.Series, str]) -> tuple[pd.Series, str]:
        return candidate[0] + next_day, candidate[1]

    parsed, how = shifted(
        (pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601"), "ISO 8601")
    )
    if parsed.isna().any():  # else the common case: nothing else to try or rank
        candidates = [(parsed, how)]
        epoch = _epoch(text)
        if epoch is not None:
            candidates.append(epoch)
        serial = _spreadsheet_days(text)
        if serial is not None:
            candidates.append(serial)
        labels = parse_period_labels(text)
        if labels is not None:
            candidates.append(labels)
        candidates.extend(shifted(_inferred(text, dayfirst)) for dayfirst in (False, True))
        # ``min`` keeps the earliest of equals, so ISO 8601 wins every tie.
        parsed, how = min(candidates, key=lambda c: (int(c[0].isna().sum()), -_regularity(c[0])))
        # Both readings may agree (pandas reads a date that cannot be day first month first, and
        # the other way round): say which the values are, from one that tells.
        both = how == "dates in an inferred format" and parsed.equals(candidates[-1][0])
        if both and _written_day_first(text):
            how = candidates[-1][1]
    if end_of_day.any():
        how += ", 24:00 as midnight of the next day"
    if zoned:
        how += ", zone abbreviations as their UTC offsets"
    if timezone is None or how.startswith("Unix") or text.str.contains(_OFFSET).any():
        return parsed, how  # UTC already: epoch numbers, or values that carry their offset
    if is_dates(parsed):
        return parsed, f"{how}, calendar dates (the time zone does not move them)"
    return _from_clock_time(parsed, timezone), f"{how}, {timezone} clock time"


def is_dates(parsed: pd.Series) -> bool:
    """Whether every timestamp is a midnight: a date, not a clock time (daily or monthly data).

    Dates stay as written with a time zone: converted, local midnight would become 13:00 or
    14:00 UTC by the season and snap an hour onto the grid, and the public-holiday flags would
    read a winter day as the day before.
    """
    known = parsed.dropna()
    if known.empty:
        return False
    return bool((known == known.dt.normalize()).all())


def _from_clock_time(parsed: pd.Series, timezone: str) -> pd.Series:
    """Naive clock times (parsed as if UTC) placed in ``timezone`` and converted to UTC."""
    clock = parsed.dt.tz_localize(None)
    try:
        try:
            local = clock.dt.tz_localize(timezone, ambiguous="infer", nonexistent="raise")
        except ValueError as exc:
            if "no repeated times" not in str(exc):
                raise
            # The repeated hour appears once (a logger that skipped it): read it as the first,
            # daylight-saving one; the second becomes a missing step, filled like any gap.
            dst = np.ones(len(clock), dtype=bool)
            local = clock.dt.tz_localize(timezone, ambiguous=dst, nonexistent="raise")
    except ValueError as exc:
        raise ValueError(
            f"clock times cannot be placed in time zone {timezone}: {exc} (in spring the hour "
            "skipped by daylight-saving time does not exist; in autumn the repeated hour must "
            "appear twice, in order)"
        ) from exc
    utc: pd.Series = local.dt.tz_convert("UTC")
    return utc
