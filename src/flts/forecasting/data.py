"""Raw CSV -> validated, regular, gap-free frame. Pure compute on bytes and frames.

Rules (documented here because they decide what a model sees):

* **Reading.** The delimiter, decimal commas and the timestamp format are recognised as
  ``flts.forecasting.csv_text`` describes (each with a note). Values with a UTC offset are
  converted to UTC; naive values are taken as UTC, or as clock time in ``config.timezone``. The
  result has ``ds`` (tz-naive, UTC) plus the selected raw columns as float64, target first. Empty
  cells in numeric columns are missing values (allowed); any other non-numeric text is an error
  that names the way out (leave the column out). When the inputs are not listed explicitly, a text
  column holding one value throughout (a site name) says nothing a model can use: it is ignored,
  with a note.
* **Line numbers.** Errors cite *file lines*: the header is line 1, the first data row line 2,
  so the number is the one an editor shows.
* **Order.** Timestamps must be strictly increasing as read: a duplicate or a step backwards is an
  error naming both lines (FLTS never silently re-orders or drops rows). The one exception is a
  file listed newest first (as many exports and dashboards write it): when *every* timestamp is
  earlier than the one above it, the rows are read in reverse, with a note; errors found later
  still cite the file's own lines (``frame.attrs[NEWEST_FIRST]``).
* **Regular grid.** Each timestamp is snapped to the nearest slot of the grid
  ``anchor + k * step`` (anchor: the first timestamp, or the one given). Two rows landing on the
  same slot are an error. Missing slots are inserted. Monthly, quarterly and yearly timestamps
  step by calendar months (``flts.forecasting.time_step``), not by a fixed number of seconds.
* **Filling.** Inserted rows and empty cells are filled by linear interpolation in time; leading or
  trailing gaps take the nearest observed value. Notes count what was inserted and filled.
* **Clipping** (optional): bounds are quantiles of the *training* data only, applied to both files.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.csv_text import (
    MISSING_MARKERS,
    CsvDialect,
    NumberStyle,
    numbers_of,
    read_csv_text,
    true_false_flags,
    units_of,
)
from flts.forecasting.day_rows import DayRows, day_rows_layout
from flts.forecasting.file_edges import header_notes, without_edge_rows
from flts.forecasting.read_hints import did_you_mean
from flts.forecasting.spec import TIME_COLUMN
from flts.forecasting.time_columns import (
    calendar_name_columns,
    missing_time_column_hint,
    parse_times,
    read_times,
    time_parts,
    timestamp_columns,
    with_unnamed_time_column,
)
from flts.forecasting.time_order import check_increasing, line_of, lines_skipped
from flts.forecasting.time_step import TimeStep, infer_step, times_us_of
from flts.forecasting.windows import runs_of

logger = logging.getLogger(__name__)

ClipBounds = dict[str, tuple[float, float]]
#: ``DataFrame.attrs`` keys: the lines above a read frame's first data row besides the header,
#: how many rows it had as read, and whether it was read in reverse (a newest-first file).
LINES_SKIPPED = "lines_skipped"
ROWS_READ = "rows_read"
NEWEST_FIRST = "newest_first"


def read_csv_bytes(data: bytes, *, source: str, config: PreprocessConfig) -> pd.DataFrame:
    """Parse and validate one raw CSV; return ``ds`` + raw columns (target first), float64."""
    return read_csv_with_notes(data, source=source, config=config)[0]


def read_csv_with_notes(
    data: bytes, *, source: str, config: PreprocessConfig
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """:func:`read_csv_bytes` plus notes on how the file was read (its layout, what was left
    out: lines above the header, units and footer rows, constant text columns)."""
    try:
        raw, dialect = read_csv_text(data, header_named=config.time_col)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip()
        raise DataValidationError(f"{source}: cannot be read as CSV ({reason})") from exc
    above = dialect.header.skipped
    with lines_skipped(above):
        raw, lead, edge_notes = without_edge_rows(raw, config.time_col, source)
    with lines_skipped(above + lead):
        frame, notes = _read_rows(raw, dialect, source, config)
    # For messages about its rows after reading (file_line).
    frame.attrs[LINES_SKIPPED] = above + lead
    frame.attrs[ROWS_READ] = len(frame)
    return frame, (*header_notes(dialect.header, source), *edge_notes, *notes)


def _read_rows(
    raw: pd.DataFrame, dialect: CsvDialect, source: str, config: PreprocessConfig
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """:func:`read_csv_with_notes` once the file's cells are read."""
    notes: list[str] = []
    unnamed = with_unnamed_time_column(raw, config.time_col)
    if unnamed is not None:
        raw = unnamed
        notes.append(
            f"{source}: the first column has no name and holds timestamps: read as the time "
            f"column (no column is named {config.time_col!r})"
        )
    columns = [str(c) for c in raw.columns]
    if config.time_col not in columns:
        raise DataValidationError(
            f"{source}: time column {config.time_col!r} not found; columns are {columns}"
            + missing_time_column_hint(raw, config.time_col)
        )
    if raw.empty:
        raise DataValidationError(f"{source}: has a header but no data rows")
    layout = day_rows_layout(raw, time_col=config.time_col, target=config.target)
    if layout is not None:
        raw, day_notes = _day_rows_as_series(raw, layout, source, config, dialect.delimiter)
        columns = [str(c) for c in raw.columns]
        notes.extend(day_notes)
    raw, parts, time_notes = time_parts(raw, config, source)
    columns = [str(c) for c in raw.columns]
    notes.extend(time_notes)
    selected = select_columns(columns, config, source=source)
    delimiter = dialect.delimiter
    if dialect.compression is not None:
        notes.append(f"{source}: {dialect.compression}-compressed, read decompressed")
    if dialect.encoding != "utf-8":
        notes.append(f"{source}: not UTF-8, read as {dialect.encoding}")
    if delimiter != ",":
        notes.append(f"{source}: fields delimited by {delimiter!r}")
    if config.feature_columns is None:
        constant = constant_text_columns(raw, [c for c in selected if c != config.target])
        index = written_index_columns(raw, [c for c in selected if c != config.target])
        blank = [
            c for c in selected if c.startswith("Unnamed: ") and raw[c].str.strip().eq("").all()
        ]
        # Text that says when (timestamps, day or month names), not how much.
        unread = [c for c in selected if c not in {config.target, *constant, *index, *blank}]
        stamps = timestamp_columns(raw, unread)
        named = calendar_name_columns(raw, [c for c in unread if c not in stamps])
        selected = [c for c in selected if c not in {*constant, *index, *blank, *stamps, *named}]
        notes.extend(
            f"{source}: column {c!r} ignored: text with one value throughout "
            f"({raw[c].iloc[0]!r}), nothing a model can use"
            for c in constant
        )
        notes.extend(
            f"{source}: column {c!r} ignored: an unnamed row number (a written index), not a "
            "measurement"
            for c in index
        )
        notes.extend(
            f"{source}: column {c!r} ignored: no name and no value (a delimiter at the end of "
            "every line)"
            for c in blank
        )
        notes.extend(
            f"{source}: column {c!r} ignored: timestamps ({raw[c].iloc[0].strip()!r}, ...) say "
            "when, not how much"
            for c in stamps
        )
        notes.extend(
            f"{source}: column {c!r} ignored: day or month names ({raw[c].iloc[0].strip()!r}, "
            "...) repeat the timestamps' calendar, which the models read from the time itself"
            for c in named
        )
    clock, ds, time_notes = read_times(parts, config, source)
    notes.extend(time_notes)
    others = [c for c in raw.columns if c not in (config.time_col, config.target)]
    newest_first = is_newest_first(ds)
    if not newest_first:
        check_increasing(
            ds, source=source, clock_time=clock.timezone is None, raw=raw[others], rows=raw
        )
    frame = pd.DataFrame({TIME_COLUMN: ds})
    styled: dict[str, list[str]] = {}
    flag_columns: list[str] = []
    for column in selected:
        hint = "" if column == config.target else _leave_out_hint(column, selected, config)
        flags = None if column == config.target else true_false_flags(raw[column])
        if flags is not None:  # a yes/no covariate (a holiday or an outage flag)
            frame[column] = flags
            flag_columns.append(column)
            continue
        frame[column], style, markers = _parse_numeric(
            raw[column], source=source, column=column, hint=hint, delimiter=delimiter
        )
        if style is not None:
            styled.setdefault(style, []).append(column)
        if markers:
            counts = ", ".join(f"{count} x {text!r}" for text, count in markers.items())
            notes.append(f"{source}: column {column!r}: cells written {counts} read as missing")
    notes.extend(f"{source}: {style} read in columns {cols}" for style, cols in styled.items())
    if flag_columns:
        notes.append(f"{source}: true/false read as 1/0 in columns {flag_columns}")
    if newest_first:
        frame = frame.iloc[::-1].reset_index(drop=True)
        frame.attrs[NEWEST_FIRST] = True
        notes.append(
            f"{source}: rows listed newest first ({ds.iloc[0]} on line {line_of(0)}): read in "
            "reverse"
        )
    return frame, tuple(notes)


def _day_rows_as_series(
    raw: pd.DataFrame, layout: DayRows, source: str, config: PreprocessConfig, delimiter: str
) -> tuple[pd.DataFrame, list[str]]:
    """A day-per-row file (``flts.forecasting.day_rows``) as a row per time of day, after
    checking it in its own layout so that an error names the file's line and column."""
    dates, _ = parse_times(
        raw[layout.date_column],
        source=source,
        config=config.model_copy(update={"timezone": None}),
        label=f"column {layout.date_column!r}",
    )
    newest_first = is_newest_first(dates)
    if not newest_first:
        check_increasing(dates, source=source, clock_time=False, rows=raw)
    for column, _ in layout.clocks:
        _parse_numeric(raw[column], source=source, column=column, delimiter=delimiter)
    first, last = layout.clocks[0], layout.clocks[-1]
    notes = [
        f"{source}: a day per row ({len(raw)} days, {len(layout.clocks)} times of day from "
        f"column {first[0]!r} ({first[1]}) to {last[0]!r} ({last[1]})) read as one series, "
        f"named {config.target!r}"
    ]
    if newest_first:
        raw = raw.iloc[::-1].reset_index(drop=True)
        notes.append(f"{source}: days listed newest first: read in reverse")
    if layout.others:
        notes.append(
            f"{source}: columns {list(layout.others)} left out: a value given once per day "
            "cannot be placed at a time of day without reading the rest of that day"
        )
    return layout.long(raw, target=config.target), notes


def is_newest_first(ds: pd.Series) -> bool:
    """Whether every timestamp is earlier than the one before it (at least three rows, so two
    rows out of order are an error, not a file read backwards)."""
    return len(ds) >= 3 and bool((ds.diff().iloc[1:] < pd.Timedelta(0)).all())


def file_line(frame: pd.DataFrame, row: int) -> int:
    """The file line of ``frame``'s row ``row``, for a frame as :func:`read_csv_with_notes`
    returns it (reversed when the file was newest first, after the lines it skipped), or a
    selection of its rows that kept their index (:func:`rows_with_values`)."""
    label = int(frame.index[row])
    with lines_skipped(int(frame.attrs.get(LINES_SKIPPED, 0))):
        if frame.attrs.get(NEWEST_FIRST):
            return line_of(int(frame.attrs.get(ROWS_READ, len(frame))) - 1 - label)
        return line_of(label)


def rows_with_values(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``frame`` without the rows that hold no value in any column (their index kept, so
    :func:`file_line` still names each row's line), and a note when there were such rows.

    Such a row says nothing but its time: left in, it would set the step. An export that writes a
    15-minute grid with values every half hour (as some grid operators' downloads do) is a
    30-minute series; and a sporadic empty row is a gap, which the grid puts back and fills like
    any other (:func:`regularise`).
    """
    valued = frame.drop(columns=[TIME_COLUMN]).notna().any(axis=1).to_numpy()
    if valued.all() or not valued.any():
        return frame, ()
    return frame.loc[valued], (
        f"{source}: {int((~valued).sum())} rows with no value in any column left out (the step "
        "is read from the rows that hold values)",
    )


def constant_text_columns(raw: pd.DataFrame, columns: list[str]) -> list[str]:
    """Columns whose every cell is the same non-empty, non-numeric text."""
    found = []
    for column in columns:
        text = raw[column].str.strip()
        one_value = text.nunique() == 1 and text.iloc[0] != ""
        if one_value and pd.isna(pd.to_numeric(text.iloc[:1], errors="coerce")).all():
            found.append(column)
    return found


def written_index_columns(raw: pd.DataFrame, columns: list[str]) -> list[str]:
    """Columns with no header (pandas names them ``Unnamed: N``) counting rows up by one.

    ``DataFrame.to_csv`` writes the row index that way unless told not to; as a covariate it
    would be a clock that keeps counting past anything seen in training.
    """
    found = []
    for column in columns:
        if not column.startswith("Unnamed: "):
            continue
        numbers = pd.to_numeric(raw[column].str.strip(), errors="coerce")
        steps = numbers.diff().dropna()
        if numbers.notna().all() and len(steps) and (steps == 1).all():
            found.append(column)
    return found


def _leave_out_hint(column: str, selected: list[str], config: PreprocessConfig) -> str:
    """How to run without a non-numeric input column (flts run flags, or the config field)."""
    features = ",".join(c for c in selected if c != column)
    return (
        f"; only numeric columns can be model inputs: leave it out with `--drop {column}` or "
        f"choose the inputs with `--features {features}` (config: feature_columns)"
    )


def _target_hint(others: list[str]) -> str:
    """The way out when the target is not a column: the one column there is, else ask."""
    if len(others) == 1:
        return f"; the file's one value column is {others[0]!r}: --target {others[0]!r}"
    return "; name the column to forecast with --target" if others else ""


def select_columns(columns: list[str], config: PreprocessConfig, *, source: str) -> list[str]:
    """The raw input columns, target first, then the others in file (or configured) order."""
    others = [c for c in columns if c != config.time_col]
    if config.target not in others:
        raise DataValidationError(
            f"{source}: target {config.target!r} not in columns {others}"
            + (did_you_mean(config.target, others, "--target") or _target_hint(others))
        )
    if config.feature_columns is None:
        wanted = others
    else:
        unknown = [c for c in config.feature_columns if c not in others]
        if unknown:
            raise DataValidationError(
                f"{source}: feature columns {unknown} not in columns {others}"
            )
        wanted = list(config.feature_columns)
    return [config.target, *(c for c in dict.fromkeys(wanted) if c != config.target)]


def _parse_numeric(
    values: pd.Series, *, source: str, column: str, hint: str = "", delimiter: str = ","
) -> tuple[pd.Series, NumberStyle | None, dict[str, int]]:
    """The column as float64, how it was written when not plainly, and the missing-value markers
    other than an empty cell it holds, with their counts (``csv_text.MISSING_MARKERS``)."""
    text = values.str.strip()
    empty = text.str.lower().isin(MISSING_MARKERS)
    markers = text[empty & text.ne("")].value_counts().to_dict()
    numbers, style = numbers_of(text.where(~empty), delimiter)
    bad = np.flatnonzero((numbers.isna() & ~empty).to_numpy())
    if len(bad):
        first = int(bad[0])
        units = units_of(text.where(~empty & text.ne("")))
        if len(units) > 1:
            hint = f"; its values are written in {len(units)} units ({', '.join(units)}): use one"
        raise DataValidationError(
            f"{source}: column {column!r} is not numeric "
            f"(line {line_of(first)}: {values.iloc[first]!r}; {len(bad)} such values){hint}"
        )
    infinite = np.flatnonzero(np.isinf(numbers.to_numpy()))
    if len(infinite):
        first = int(infinite[0])
        raise DataValidationError(
            f"{source}: column {column!r} holds an infinite value at line {line_of(first)}"
        )
    if numbers.isna().all():
        raise DataValidationError(f"{source}: column {column!r} has no values at all")
    return numbers.reset_index(drop=True), style, {str(k): int(v) for k, v in markers.items()}


def infer_step_seconds(ds: pd.Series) -> int:
    """The step of a series: the median spacing, rounded to whole seconds."""
    if len(ds) < 2:
        raise DataValidationError("cannot infer the step from fewer than two timestamps")
    spacing = ds.diff().dropna().dt.total_seconds().median()
    step = round(float(spacing))
    if step <= 0:
        raise DataValidationError(f"median spacing of {spacing} s is not a usable step")
    return step


def infer_grid_step(ds: pd.Series) -> TimeStep:
    """The grid step of a series: calendar months for monthly-like timestamps
    (:func:`flts.forecasting.time_step.infer_step`), else the median spacing in seconds."""
    return infer_step(ds) or TimeStep(infer_step_seconds(ds))


def _grid_slots(
    frame: pd.DataFrame, origin_us: int, step: TimeStep, source: str
) -> tuple[np.ndarray, int]:
    """Slot number of each row on the grid, and how many rows were off it (snapped)."""
    slots, snapped = step.slots(times_us_of(frame[TIME_COLUMN]), origin_us)
    clash = np.flatnonzero(np.diff(slots) == 0)
    if len(clash):
        i = int(clash[0])
        raise DataValidationError(
            f"{source}: rows at lines {file_line(frame, i)} and {file_line(frame, i + 1)} "
            f"fall on the same "
            f"{step.describe()} slot ({frame[TIME_COLUMN].iloc[i]} and "
            f"{frame[TIME_COLUMN].iloc[i + 1]}); the data is denser than the step"
        )
    return slots, snapped


def regularise(
    frame: pd.DataFrame,
    step: TimeStep,
    *,
    anchor: pd.Timestamp | None = None,
    source: str = "data",
) -> tuple[pd.DataFrame, tuple[str, ...], np.ndarray]:
    """Snap to the grid ``anchor + k * step``, insert missing slots, fill every gap.

    Returns the new frame, human notes counting what was snapped, inserted and filled, and one
    flag per new row: was its first column (the target, as read) filled in rather than read?
    """
    origin = frame[TIME_COLUMN].iloc[0] if anchor is None else pd.Timestamp(anchor)
    origin_us = int(times_us_of(pd.Series([origin]))[0])
    slots, snapped = _grid_slots(frame, origin_us, step, source)
    values = frame.drop(columns=[TIME_COLUMN]).set_axis(slots, axis=0)
    grid = np.arange(slots[0], slots[-1] + 1, dtype=np.int64)
    regular = values.reindex(grid)
    regular.index = pd.DatetimeIndex(
        step.shift_us(origin_us, grid).astype("datetime64[us]"), name=TIME_COLUMN
    ).astype("datetime64[ns]")
    inserted = len(grid) - len(slots)
    missing = regular.isna().sum()
    filled = regular.interpolate(method="time", limit_area="inside").ffill().bfill()
    notes = [f"{source}: {len(grid)} rows on a {step.describe()} grid"]
    if snapped:
        notes.append(f"{source}: {snapped} timestamps snapped to the grid")
    if inserted:
        notes.append(f"{source}: {inserted} missing time steps inserted")
    if int(missing.sum()):
        detail = ", ".join(f"{c}: {int(n)}" for c, n in missing.items() if n)
        notes.append(f"{source}: {int(missing.sum())} missing values filled ({detail})")
    out = filled.reset_index()
    target_filled = regular.iloc[:, 0].isna().to_numpy(dtype=bool)
    longest = _longest_gap(target_filled, pd.DatetimeIndex(regular.index))
    if longest is not None and longest[1] - longest[0] >= pd.Timedelta(hours=1):
        start, end = longest
        notes.append(
            f"{source}: longest gap in the target: {end - start} from {start} (filled by a "
            "straight line so the grid stays regular; filled values are neither learned from "
            "nor scored, except by MSTL, which fits an unbroken series)"
        )
    return out, tuple(notes), target_filled


def _longest_gap(
    mask: np.ndarray, stamps: pd.DatetimeIndex
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(first filled timestamp, first observed one after it) of the longest filled run."""
    runs = runs_of(mask)
    if not runs:
        return None
    start, stop = max(runs, key=lambda run: run[1] - run[0])
    step = stamps[1] - stamps[0] if len(stamps) > 1 else pd.Timedelta(0)
    return stamps[start], stamps[start] + (stop - start) * step


def fit_clip_bounds(train: pd.DataFrame, quantiles: tuple[float, float]) -> ClipBounds:
    """Per-column clip bounds from the *training* frame only (never the test data)."""
    low, high = quantiles
    columns = [c for c in train.columns if c != TIME_COLUMN]
    return {c: (float(train[c].quantile(low)), float(train[c].quantile(high))) for c in columns}


def apply_clip(frame: pd.DataFrame, bounds: ClipBounds) -> tuple[pd.DataFrame, int]:
    """Clip the bounded columns; return the new frame and how many values changed."""
    out = frame.copy()
    changed = 0
    for column, (low, high) in bounds.items():
        clipped = out[column].clip(lower=low, upper=high)
        changed += int((clipped != out[column]).sum())
        out[column] = clipped
    return out, changed
