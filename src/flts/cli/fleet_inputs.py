"""Fleet inputs: a long or wide CSV (or a directory of per-series CSVs) -> one CSV pair per series.

A long-format file has a series-id column (``--series-col``) next to the time column, the target
and the covariates; every row belongs to one series. A wide file has one column per series next
to the time column (``--series-cols A,B,...`` or ``all``, as meter exports and public load data
sets are written); the columns not named are covariates every series shares (a temperature). A
directory holds one CSV per series, the file stem being the series id, with the same file names
under ``--train`` and ``--test``.

Each series is written as its own plain CSV pair (the id column dropped) under the run directory
and checked with the preprocess stage's own code, exactly as a single-series `flts run` checks
its files, so a series of a fleet and the same series run alone get the same data and config. A
series that cannot be run (empty, constant, too short, no test rows, rejected by preprocess) is
kept with the reason and skipped; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from flts.cli.run_inputs import read_cells
from flts.domain.config import PreprocessConfig
from flts.domain.series import sanitise_all, series_identifier
from flts.errors import ConfigError, FltsError
from flts.forecasting.csv_text import numbers_of, read_csv_text
from flts.forecasting.day_rows import day_rows_layout
from flts.forecasting.file_edges import without_edge_rows
from flts.forecasting.time_columns import (
    calendar_name_columns,
    time_companions,
    with_unnamed_time_column,
)
from flts.forecasting.time_order import line_of, lines_skipped
from flts.run.fleet import FleetSeries

#: Builds the checked preprocess config of one series from its training CSV.
ConfigFor = Callable[[Path], PreprocessConfig]


def _read(
    path: Path, series_col: str, role: str = "series", notes: list[str] | None = None
) -> tuple[pd.DataFrame, str]:
    """Every cell as text (each series' file is written back as read), and the delimiter;
    ConfigError when the file has no ``series_col`` (the column of that ``role``). For the time
    column's role, rows at the ends without a timestamp (units, a footer) are left out and
    noted in ``notes``: every series' file would hold them."""
    frame, dialect = read_cells(path, series_col)
    unnamed = with_unnamed_time_column(frame, series_col) if role == "time" else None
    if unnamed is not None:  # an unnamed first column of timestamps is the time column
        frame = unnamed
    if series_col not in frame.columns:
        raise ConfigError(
            f"{path}: no {role} column {series_col!r} (columns: {', '.join(map(str, frame))})"
        )
    with lines_skipped(dialect.header.skipped):
        if role == "time":
            frame, _, edges = without_edge_rows(frame, series_col, str(path))
        else:
            frame, edges = _named_rows(frame, series_col, path)
    if notes is not None:
        notes.extend(edges)
    return frame, dialect.delimiter


def _named_rows(frame: pd.DataFrame, series_col: str, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` without the rows at its end that name no series (a total, empty spreadsheet
    rows), and a note; ConfigError naming the line of any other row without a series id."""
    named = (frame[series_col].str.strip() != "").to_numpy()
    last = int(np.flatnonzero(named)[-1]) + 1 if named.any() else 0
    unnamed = np.flatnonzero(~named[:last])
    if len(unnamed):
        raise ConfigError(
            f"{path}: line {line_of(int(unnamed[0]))} has no {series_col!r} value: every row of "
            f"a file split by --series-col names its series"
        )
    if last == len(frame):
        return frame, []
    note = (
        f"{path}: the last {len(frame) - last} row(s) from line {line_of(last)} name no series "
        f"(column {series_col!r} empty: a total or empty rows), left out"
    )
    return frame.iloc[:last], [note]


def split_long_csv(
    train_csv: Path, test_csv: Path, series_col: str, out_dir: Path
) -> tuple[dict[str, tuple[Path | None, Path | None]], dict[str, str], list[str]]:
    """Write each series' rows (in file order, without ``series_col``) to ``out_dir/<id>/``.

    Returns ``{safe id: (train csv or None, test csv or None)}``, ``{safe id: raw id}`` and the
    sanitising notices. ConfigError when two raw ids collide once sanitised.
    """
    read_notes: list[str] = []
    (train, train_sep), (test, test_sep) = (
        _read(p, series_col, "series", read_notes) for p in (train_csv, test_csv)
    )
    delimiters = {"train.csv": train_sep, "test.csv": test_sep}
    raw_ids = list(dict.fromkeys([*train[series_col], *test[series_col]]))
    mapping, notices = sanitise_all(raw_ids)
    notices.extend(read_notes)
    pairs: dict[str, tuple[Path | None, Path | None]] = {}
    for raw, safe in mapping.items():
        directory = out_dir / safe
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path | None] = []
        for name, frame in (("train.csv", train), ("test.csv", test)):
            rows = frame[frame[series_col].str.strip() == raw].drop(columns=[series_col])
            if rows.empty:
                written.append(None)
                continue
            path = directory / name
            # The source's delimiter keeps decimal commas readable in the series' own file.
            rows.to_csv(path, index=False, sep=delimiters[name])
            written.append(path)
        pairs[safe] = (written[0], written[1])
    return pairs, {safe: raw for raw, safe in mapping.items()}, notices


#: The target's name in each series' own file when the fleet came from a wide CSV.
WIDE_TARGET = "value"


def split_wide_csv(
    train_csv: Path, test_csv: Path, time_col: str, series_cols: tuple[str, ...], out_dir: Path
) -> tuple[dict[str, tuple[Path | None, Path | None]], dict[str, str], list[str]]:
    """Write each series column (``("all",)``: every column but time) with the time column and
    the shared covariates to ``out_dir/<id>/``, the series column renamed ``WIDE_TARGET``.

    Returns what :func:`split_long_csv` returns. ConfigError naming a missing column.
    """
    read_notes: list[str] = []
    (train, train_sep), (test, test_sep) = (
        _read(p, time_col, "time", read_notes) for p in (train_csv, test_csv)
    )
    # Columns that complete the time (a time of day, period numbers, a zone) belong to every
    # series' time.
    time_parts = time_companions(train, time_col)
    columns = [str(c) for c in train.columns if c != time_col]
    # Day or month names (a Weekday column) repeat the calendar: no series, and each series'
    # reading leaves them out with a note.
    named = set(calendar_name_columns(train, [c for c in columns if c not in time_parts]))
    wanted = (
        [c for c in columns if c not in time_parts | named]
        if series_cols == ("all",)
        else list(dict.fromkeys(series_cols))
    )
    for path, frame in ((train_csv, train), (test_csv, test)):
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise ConfigError(
                f"{path}: no series column(s) {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(map(str, frame))})"
            )
    if WIDE_TARGET in columns and WIDE_TARGET not in wanted:
        raise ConfigError(
            f"{train_csv}: a covariate is named {WIDE_TARGET!r}, the name each series' target "
            "gets: rename it, or name it in --series-cols"
        )
    shared = [c for c in columns if c not in wanted]
    mapping, notices = sanitise_all(wanted)
    pairs: dict[str, tuple[Path | None, Path | None]] = {}
    for raw, safe in mapping.items():
        directory = out_dir / safe
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for name, frame, sep in (("train.csv", train, train_sep), ("test.csv", test, test_sep)):
            rows = frame[[time_col, raw, *shared]].rename(columns={raw: WIDE_TARGET})
            path = directory / name
            rows.to_csv(path, index=False, sep=sep)
            written.append(path)
        pairs[safe] = (written[0], written[1])
    covariates = [c for c in shared if c not in time_parts | named]
    if covariates:
        notices.append(f"columns {covariates} are covariates of every series")
    notices.extend(f"column {c!r} is part of the time of every series" for c in sorted(time_parts))
    notices.extend(read_notes)
    return pairs, {safe: raw for raw, safe in mapping.items()}, notices


def pair_directories(
    train_dir: Path, test_dir: Path
) -> tuple[dict[str, tuple[Path | None, Path | None]], dict[str, str], list[str]]:
    """Per-series CSVs matched by file stem across ``train_dir`` and ``test_dir``."""
    if not test_dir.is_dir():
        raise ConfigError(f"--train {train_dir} is a directory, so --test must be one too")
    train = {p.stem: p for p in sorted(train_dir.glob("*.csv"))}
    test = {p.stem: p for p in sorted(test_dir.glob("*.csv"))}
    if not train:
        raise ConfigError(f"{train_dir}: no *.csv files (one per series expected)")
    mapping, notices = sanitise_all([*train, *(s for s in test if s not in train)])
    pairs = {safe: (train.get(raw), test.get(raw)) for raw, safe in mapping.items()}
    return pairs, {safe: raw for raw, safe in mapping.items()}, notices


def _unusable(train_csv: Path, target: str, time_col: str) -> str | None:
    """Why a series cannot be trained at all, before preprocess's own (longer) checks."""
    frame, dialect = read_csv_text(train_csv, header_named=time_col)
    layout = day_rows_layout(frame, time_col=time_col, target=target)
    if layout is not None:  # a day per row: the target is the times of day's cells
        frame = layout.long(frame, target=target)
    if target not in frame.columns:
        return f"no target column {target!r}"
    values = numbers_of(frame[target], dialect.delimiter)[0].dropna()
    if values.empty:
        return f"target {target!r} has no numeric value"
    if values.nunique() == 1:
        return f"target {target!r} is constant ({values.iloc[0]:g}): nothing to forecast"
    return None


def fleet_series(
    run_identifier: str,
    pairs: dict[str, tuple[Path | None, Path | None]],
    raw_ids: dict[str, str],
    target: str,
    config_for: ConfigFor,
    check: Callable[[Path, Path, PreprocessConfig], object],
    time_col: str = "time",
) -> list[FleetSeries]:
    """One FleetSeries per id: runnable (checked config) or with the reason it is skipped."""
    out = []
    for safe, (train_csv, test_csv) in sorted(pairs.items()):
        identifier = series_identifier(run_identifier, safe)
        reason: str | None = None
        config_json: str | None = None
        if train_csv is None:
            reason = "no training rows"
        elif test_csv is None:
            reason = "no test rows"
        else:
            reason = _unusable(train_csv, target, time_col)
        if reason is None and train_csv is not None and test_csv is not None:
            try:
                config = config_for(train_csv)
                check(train_csv, test_csv, config)
                config_json = config.model_dump_json()
            except FltsError as exc:
                reason = f"rejected by preprocess: {exc}"
        out.append(
            FleetSeries(
                series_id=raw_ids[safe],
                identifier=identifier,
                train_csv=train_csv,
                test_csv=test_csv,
                preprocess_config_json=config_json,
                reason=reason,
            )
        )
    return out
