"""The lines of a file around its data that are not data, as exports write them.

* **Above the header**: Excel's delimiter line (``sep=;`` as the first line, which Excel reads
  and hides) names the delimiter; lines of preamble (a meter id, units, an export date, as SCADA
  and portal exports write them) are skipped when the reader knows a column the header names
  (the time column): the first of the first ``PREAMBLE_LINES`` lines that holds that name as a
  field is the header.
* **At the ends of the data**: rows of empty cells (a spreadsheet's touched rows, ``;;;``) and up
  to ``EDGE_ROWS`` rows at either end whose time cell holds no digit (a units row under the
  header, a total as a footer) are no data: they are dropped.

Each is named in a note, and the reading runs within ``time_order.lines_skipped`` so that every
message still names the file's own line numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from flts.forecasting.time_order import line_of

#: Field delimiters a file may use (sniffed by ``csv_text``).
DELIMITERS = ",;\t|"

#: How far down a file a header below a preamble is looked for.
PREAMBLE_LINES = 30
#: Excel's delimiter line (``sep=;``; a spreadsheet saving it may add delimiters after it).
_SEPARATOR_LINE = re.compile(r'^"?sep=([,;\t|])"?[,;\t|]*$', re.IGNORECASE)


@dataclass(frozen=True)
class HeaderPlace:
    """Where a file's header is: after ``skipped`` lines, of which the first may be Excel's
    delimiter line (then ``delimiter`` is the one it names)."""

    skipped: int = 0
    delimiter: str | None = None
    preamble: tuple[str, ...] = ()  # the skipped lines other than a delimiter line, as text


def header_place(text: str, header_named: str | None) -> HeaderPlace:
    """Where the header is in a file beginning with ``text`` (see the module docstring);
    ``header_named``: a column the header names (None: the first line, or the one after Excel's
    delimiter line, is the header)."""
    lines = text.lstrip("\ufeff").splitlines()
    delimiter = None
    first = 0
    if lines and (found := _SEPARATOR_LINE.match(lines[0].strip())):
        delimiter, first = found.group(1), 1
    if header_named is None:
        return HeaderPlace(first, delimiter)
    for number in range(first, min(len(lines), PREAMBLE_LINES)):
        fields = re.split(f"[{re.escape(DELIMITERS)}]", lines[number])
        if header_named in (field.strip().strip('"').strip() for field in fields):
            return HeaderPlace(number, delimiter, tuple(lines[first:number]))
    return HeaderPlace(first, delimiter)


def header_notes(place: HeaderPlace, source: str) -> list[str]:
    """What reading skipped above the header, for the run's notes."""
    notes = []
    if place.delimiter is not None:
        notes.append(
            f"{source}: line 1 ('sep={place.delimiter}', Excel's delimiter line) read as the "
            "delimiter"
        )
    if place.preamble:
        shown = ", ".join(repr(line.strip()) for line in place.preamble[:2])
        more = ", ..." if len(place.preamble) > 2 else ""
        notes.append(
            f"{source}: header on line {place.skipped + 1}; the {len(place.preamble)} line(s) "
            f"above it skipped ({shown}{more})"
        )
    return notes


def after_lines(data: bytes, count: int) -> bytes:
    """``data`` from its line ``count`` (0-based) on."""
    return data.split(b"\n", count)[-1] if count else data


#: Most rows at either end of the data taken for a units row or a footer when their time cell
#: holds no digit (rows of empty cells are dropped however many there are at the end).
EDGE_ROWS = 3


def without_edge_rows(
    raw: pd.DataFrame, time_col: str, source: str
) -> tuple[pd.DataFrame, int, list[str]]:
    """``raw`` without the rows at its ends that are no data (module docstring), how many were
    dropped at the start (later rows' lines count them), and a note for each end. ``raw``
    unchanged when it has no ``time_col`` or when no row would be left."""
    if time_col not in raw.columns or raw.empty:
        return raw, 0, []
    empty = _EmptyRows(raw)
    times = raw[time_col]
    lead = _edge(empty, times, range(len(raw)), limit_empty=EDGE_ROWS)
    trail = _edge(empty, times, range(len(raw) - 1, lead - 1, -1), limit_empty=None)
    if lead + trail == 0 or lead + trail >= len(raw):
        return raw, 0, []
    notes = []
    if lead:
        notes.append(
            f"{source}: {_lines(0, lead)} under the header skipped: no timestamp "
            f"({_shown(raw, time_col, empty, range(lead))}: units or a description, not data)"
        )
    if trail:
        rows = range(len(raw) - trail, len(raw))
        notes.append(
            f"{source}: the last {_lines(rows.start, rows.stop)} skipped: no timestamp "
            f"({_shown(raw, time_col, empty, rows)}: a footer or empty rows, not data)"
        )
    kept = raw.iloc[lead : len(raw) - trail].reset_index(drop=True)
    return kept, lead, notes


class _EmptyRows:
    """Whether a row's cells are all blank, looked at only for the rows asked about (a wide file
    has millions of cells, and only the rows at its ends matter)."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self._raw = raw

    def __getitem__(self, i: int) -> bool:
        return not any(str(cell).strip() for cell in self._raw.iloc[i])


def _edge(empty: _EmptyRows, times: pd.Series, order: range, limit_empty: int | None) -> int:
    """How many rows, taken in ``order`` from one end, are no data: rows of empty cells (at most
    ``limit_empty``; None: any number) and at most ``EDGE_ROWS`` whose time cell has no digit."""
    count = labelled = blank = 0
    for i in order:
        if empty[i]:
            blank += 1
            if limit_empty is not None and blank > limit_empty:
                break
        elif re.search(r"\d", str(times.iat[i])) is None and labelled < EDGE_ROWS:
            labelled += 1
        else:
            break
        count += 1
    return count


def _lines(start: int, stop: int) -> str:
    first, last = line_of(start), line_of(stop - 1)
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _shown(raw: pd.DataFrame, time_col: str, empty: _EmptyRows, rows: range) -> str:
    """What ``rows`` hold (their time cell, else their other cells), or that they are empty."""
    said: list[str] = []
    for i in rows:
        if empty[i]:
            continue
        cells = [str(cell).strip() for cell in raw.iloc[i]]
        time_cell = str(raw[time_col].iat[i]).strip()
        said.append(time_cell or " ".join(cell for cell in cells if cell)[:40])
    shown = list(dict.fromkeys(said))[:2]
    return ", ".join(map(repr, shown)) if shown else "empty cells"
