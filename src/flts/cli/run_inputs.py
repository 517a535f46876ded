"""`flts run` inputs: the preprocess config from flags, the CSV check before any service, and
a lone file split in time into training and test periods (no --test given).

The check runs the preprocess stage's own code (``prepare_datasets``) on the user's files, named
as the user gave them, so a bad file fails in seconds with the file's own name instead of after
the stack and six services have started, naming an internal object key.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flts.domain.config import PreprocessConfig
from flts.errors import ConfigError, DataValidationError
from flts.forecasting.csv_text import CsvDialect, parse_timestamps, read_csv_text
from flts.forecasting.file_edges import header_notes, without_edge_rows
from flts.forecasting.prepare import PreparedData, prepare_datasets
from flts.forecasting.time_columns import missing_time_column_hint, with_unnamed_time_column
from flts.forecasting.time_order import line_of, lines_skipped


def column_list(text: str) -> tuple[str, ...]:
    """``a,b , c`` -> ("a", "b", "c"); an empty list is a usage error."""
    columns = tuple(part.strip() for part in text.split(",") if part.strip())
    if not columns:
        raise argparse.ArgumentTypeError("expected one or more column names, comma-separated")
    return columns


def read_cells(
    path: Path, header_named: str, nrows: int | None = None
) -> tuple[pd.DataFrame, CsvDialect]:
    """A user's file as ``read_csv_text`` reads it (every cell as text; ``header_named``: a column
    the header names, to find it below a preamble), or DataValidationError naming the file when
    it cannot be read as CSV."""
    try:
        return read_csv_text(path, nrows=nrows, header_named=header_named)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: cannot be read as CSV ({exc})") from exc


def _header(path: Path, time_col: str) -> list[str]:
    return [str(c) for c in read_cells(path, time_col, nrows=0)[0].columns]


def run_config(
    base: PreprocessConfig,
    *,
    train_csv: Path,
    horizon: int | None = None,
    features: tuple[str, ...] | None = None,
    drop: tuple[str, ...] = (),
) -> PreprocessConfig:
    """``base`` (from --config, --time-col, --target) with --horizon, --features and --drop."""
    update: dict[str, object] = {}
    if horizon is not None:
        update["horizon"] = horizon
    if features is not None:
        update["feature_columns"] = features
    if drop:
        if base.target in drop:
            raise ConfigError(f"--drop {base.target}: cannot drop the target column")
        columns = features or base.feature_columns
        if columns is None:
            columns = tuple(c for c in _header(train_csv, base.time_col) if c != base.time_col)
        unknown = [c for c in drop if c not in columns]
        if unknown:
            raise ConfigError(f"--drop {','.join(unknown)}: no such input column in {train_csv}")
        update["feature_columns"] = tuple(c for c in columns if c not in drop)
    try:
        return PreprocessConfig.model_validate({**base.model_dump(), **update})
    except ValueError as exc:
        raise ConfigError(f"invalid run configuration: {exc}") from exc


def validate_inputs(train_csv: Path, test_csv: Path, config: PreprocessConfig) -> PreparedData:
    """Everything preprocess will check, on the local files, before anything starts."""
    try:
        train_bytes, test_bytes = train_csv.read_bytes(), test_csv.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read CSV: {exc}") from exc
    return prepare_datasets(
        train_bytes,
        test_bytes,
        config,
        config_hash="pre-check",
        train_source=str(train_csv),
        test_source=str(test_csv),
    )


#: The share of a lone file's distinct timestamps held out as the test period (no --test given).
DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class _TimedRows:
    raw: pd.DataFrame  # every cell as text, the lines that are not data left out
    delimiter: str
    times: pd.Series  # as read without a zone: enough to order rows
    #: What reading left out or converted (a preamble, a footer, UTF-16: the files written
    #: from ``raw`` hold none of it), for the caller's note.
    notes: tuple[str, ...]

    def described(self, note: str) -> str:
        return note if not self.notes else f"{note}; {'; '.join(self.notes)}"


def _timed_rows(path: Path, time_col: str, why: str) -> _TimedRows:
    """The rows of ``path`` with their timestamps. DataValidationError, ending with ``why``
    (what cannot be done then), when the time column is missing or holds a value that is no
    timestamp."""
    raw, dialect = read_cells(path, time_col)
    unnamed = with_unnamed_time_column(raw, time_col)
    raw = raw if unnamed is None else unnamed
    columns = [str(c) for c in raw.columns]
    if time_col not in columns:
        raise DataValidationError(
            f"{path}: time column {time_col!r} not found, {why}; columns are {columns}"
            + missing_time_column_hint(raw, time_col)
        )
    # A units row or a footer is no row of either part (data.py notes it when reading the file).
    with lines_skipped(dialect.header.skipped):
        raw, lead, edge_notes = without_edge_rows(raw, time_col, str(path))
    times, _ = parse_timestamps(raw[time_col].str.strip())
    unparsed = np.flatnonzero(times.isna().to_numpy())
    if len(unparsed):
        with lines_skipped(dialect.header.skipped + lead):
            line = line_of(int(unparsed[0]))
        raise DataValidationError(
            f"{path}: {len(unparsed)} values of column {time_col!r} cannot be parsed as "
            f"timestamps (first at line {line}), {why}"
        )
    notes = [*header_notes(dialect.header, str(path)), *edge_notes]
    if dialect.encoding != "utf-8":
        notes.append(f"{path}: read as {dialect.encoding}, written as UTF-8")
    return _TimedRows(raw, dialect.delimiter, times, tuple(notes))


def _stem(path: Path) -> str:
    return path.name.split(".")[0] or "input"


def split_off_test(
    train_csv: Path, time_col: str, fraction: float, out_dir: Path
) -> tuple[Path, Path, str]:
    """One file as a training file and a test file, split in time: every row at or after the
    timestamp that leaves the latest ``fraction`` of the file's distinct timestamps is test,
    whatever series it belongs to (long, wide and day-per-row files alike), rows kept in file
    order and cells as written. Returns the two files' paths (in ``out_dir``) and a note.

    DataValidationError when the time column is missing or not all timestamps."""
    why = "so no test period can be split off (or give --test)"
    rows = _timed_rows(train_csv, time_col, why)
    raw, delimiter, times = rows.raw, rows.delimiter, rows.times
    distinct = np.sort(times.unique())
    if len(distinct) < 2:
        raise DataValidationError(f"{train_csv}: one timestamp only, {why}")
    cut = distinct[min(len(distinct) - 1, max(1, round(len(distinct) * (1 - fraction))))]
    is_test = (times >= cut).to_numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / f"{_stem(train_csv)}.train.csv", out_dir / f"{_stem(train_csv)}.test.csv"
    raw.loc[~is_test].to_csv(paths[0], index=False, sep=delimiter)
    raw.loc[is_test].to_csv(paths[1], index=False, sep=delimiter)
    first_test = raw[time_col].iloc[int(np.flatnonzero((times == cut).to_numpy())[0])].strip()
    stamp = pd.Timestamp(cut)
    stamp = stamp.tz_convert(None) if stamp.tzinfo is not None else stamp
    written_as = "" if first_test == str(stamp) else f" ({stamp})"
    note = (
        f"no --test given: the rows of {train_csv.name} from {first_test!r}{written_as} on "
        f"({int(is_test.sum())} of {len(raw)} rows, the latest {fraction:.0%} of its timestamps)"
        f" are the test period, the earlier ones the training period (--test-fraction; written "
        f"to {out_dir})"
    )
    return paths[0], paths[1], rows.described(note)


def sorted_by_time(csv: Path, time_col: str, out_dir: Path, role: str) -> tuple[Path, str | None]:
    """``csv`` with its rows in time order (a stable sort: rows of one time keep their order,
    as the hour repeated in autumn and several series need), written to ``out_dir`` as
    ``<stem>.<role>.sorted.csv`` with its cells as read, and a note; ``csv`` itself and None
    when its rows are in order already (oldest or newest first)."""
    rows = _timed_rows(csv, time_col, "so its rows cannot be sorted")
    raw, delimiter, times = rows.raw, rows.delimiter, rows.times
    steps = times.diff().iloc[1:]
    if (steps >= pd.Timedelta(0)).all() or (steps < pd.Timedelta(0)).all():
        return csv, None
    order = np.argsort(times.to_numpy(), kind="stable")
    moved = int((order != np.arange(len(order))).sum())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{_stem(csv)}.{role}.sorted.csv"
    raw.iloc[order].to_csv(path, index=False, sep=delimiter)
    return path, rows.described(
        f"rows of {csv.name} sorted by time ({moved} of {len(raw)} rows moved; {path})"
    )
