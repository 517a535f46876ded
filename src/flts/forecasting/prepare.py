"""Raw training + test CSV bytes -> processed frames and the ForecastSpec. Pure compute.

Honesty rules enforced here:

* The step, the clip bounds and the scaler come from the *training* file only; the test file is
  put on the same grid (anchored at the first training timestamp) and transformed with them.
* Every test timestamp must be strictly after the last training timestamp.
* When the test file follows the training file directly, the processed test frame starts with
  ``context_rows`` rows from the end of the training file (the past): the history of the first
  test origins (lookback, lags, one season for seasonal
  naive, the longest detected period). So every test timestamp is an origin, and scoring and
  batch inference read the same object with the same origins. Test lags may read the training
  data, never the other way round.
* Seasons and default lags come from the training timestamps (``flts.forecasting.defaults``).
* Size rule: training needs ``lookback + horizon - 1 + MIN_TRAIN_WINDOWS`` rows (at least
  ``MIN_TRAIN_WINDOWS`` windows, so a 10 % time-ordered validation split still has 10) after lag
  history is dropped; the test file needs ``horizon`` rows, one origin's actuals. Steps of a day
  or longer (daily, weekly, monthly data) need ``MIN_TRAIN_WINDOWS_LONG_STEP`` windows: a
  hundred would ask for nine years of monthly data. Either is raised to what GRU/LSTM need for
  their validation split at a long horizon (a day ahead at five minutes: 337 windows). At long
  steps, when the default lookback (30 steps) leaves too few windows, it is shortened to fit
  (with a note); an explicit lookback is kept and the error says which one would fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from flts.domain.config import PreprocessConfig, TrainConfig, canonical_json, sha256_hex
from flts.errors import ConfigError, DataValidationError
from flts.forecasting.csv_text import is_dates, read_csv_text
from flts.forecasting.data import (
    apply_clip,
    fit_clip_bounds,
    infer_grid_step,
    read_csv_with_notes,
    regularise,
    rows_with_values,
)
from flts.forecasting.defaults import ResolvedDefaults, resolve_defaults
from flts.forecasting.features import build_features, feature_order_for, utc_offsets
from flts.forecasting.outliers import Fences, blank_outliers, fit_fences
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec, ScalerParams
from flts.forecasting.time_columns import zone_named_by
from flts.forecasting.time_step import TimeStep, calendar_step_of, times_us_of
from flts.forecasting.windows import evaluation_origins, min_fit_windows

#: Fewest training windows preprocess accepts (see the module docstring).
MIN_TRAIN_WINDOWS = 100
#: Fewest training windows when a step is a day or longer (two years of monthly data).
MIN_TRAIN_WINDOWS_LONG_STEP = 24
_DAY_SECONDS = 86_400


@dataclass(frozen=True)
class PreparedData:
    train: pd.DataFrame
    test: pd.DataFrame
    spec: ForecastSpec
    train_notes: tuple[str, ...]
    test_notes: tuple[str, ...]
    #: Leading rows of ``test`` that come from the end of the training file (history only).
    test_context_rows: int = 0
    #: The config with data-driven defaults filled in (season_steps, lags): what was run.
    resolved_config: PreprocessConfig | None = None
    #: Rows of ``test`` whose target was filled in, not read from a file (missing steps, empty
    #: cells): never scored (``windows.scorable_actuals``). None: nothing known to be filled.
    test_unobserved: np.ndarray | None = None
    #: Rows of ``train`` whose target was filled in: not learned from (``Forecaster.fit``).
    train_unobserved: np.ndarray | None = None


def data_fingerprint(train_bytes: bytes, test_bytes: bytes) -> str:
    """What data a run read: sha256 of the canonical JSON of both files' sha256."""
    return sha256_hex(
        canonical_json({"train": sha256_hex(train_bytes), "test": sha256_hex(test_bytes)})
    )


def min_train_windows(config: PreprocessConfig) -> int:
    """Training windows preprocessing asks for at the config's (resolved) step, and at least
    what GRU/LSTM need after their validation split at this horizon (at the default split), so
    data preprocessing accepts never fails a trainer for its size."""
    long_step = bool(config.step_months) or (config.step_seconds or 0) >= _DAY_SECONDS
    floor = MIN_TRAIN_WINDOWS_LONG_STEP if long_step else MIN_TRAIN_WINDOWS
    fraction = TrainConfig.model_fields["validation_fraction"].default
    return max(floor, min_fit_windows(config.horizon, fraction))


def min_train_rows(config: PreprocessConfig) -> int:
    return config.lookback + config.horizon - 1 + min_train_windows(config)


def _fitting_lookback(
    config: PreprocessConfig, train_rows: int, source: str
) -> tuple[PreprocessConfig, tuple[str, ...]]:
    """The config with the default lookback shortened to fit a short file of long steps."""
    default = PreprocessConfig.model_fields["lookback"].default
    if config.lookback != default or min_train_windows(config) == MIN_TRAIN_WINDOWS:
        return config, ()
    room = train_rows - (config.horizon - 1) - min_train_windows(config)
    lookback = min(config.lookback, max(room, 1))
    if lookback == config.lookback:
        return config, ()
    note = (
        f"{source}: lookback shortened from {config.lookback} to {lookback} steps so that "
        f"{train_rows} training rows leave {min_train_windows(config)} windows"
    )
    return config.model_copy(update={"lookback": lookback}), (note,)


def min_test_rows(config: PreprocessConfig) -> int:
    """The test file's own rows: one horizon of actuals (history comes from training)."""
    return config.horizon


def context_rows_for(spec: ForecastSpec) -> int:
    """Training-tail rows the test object carries: the longest history any forecaster reads."""
    return max(spec.lookback, spec.season_steps, *spec.seasonal_periods)


def _require_rows(source: str, have: int, need: int, why: str) -> None:
    if have < need:
        raise DataValidationError(
            f"{source}: too few rows for the configured windows: has {have} rows, "
            f"needs {need} ({why})"
        )


def _resolve_step(config: PreprocessConfig, ds: pd.Series) -> tuple[TimeStep, str]:
    """The grid step (configured, else from the training timestamps) and how it was chosen."""
    if config.step_months:
        step, _ = calendar_step_of(times_us_of(ds), config.step_months)
        return step, "configured"
    if config.step_seconds:
        return TimeStep(config.step_seconds), "configured"
    step = infer_grid_step(ds)
    return step, "calendar months" if step.calendar else "median spacing"


def _check_step(frame: pd.DataFrame, step: TimeStep, source: str) -> None:
    if len(frame) < 2:
        return
    found = infer_grid_step(frame[TIME_COLUMN])
    if found.months != step.months or (not step.calendar and found.seconds != step.seconds):
        what = "step_months" if step.calendar else "step_seconds"
        raise DataValidationError(
            f"{source}: rows are {found.describe()} apart (median) but the step is "
            f"{step.describe()}; resample the file or set {what} to match"
        )


def _check_test_inputs(
    test_bytes: bytes,
    raw_columns: tuple[str, ...],
    config: PreprocessConfig,
    names: tuple[str, str],
) -> None:
    """The test file holds every input column training read, else an error with the way out:
    a model reads its inputs at every origin, so it cannot forecast the test period without
    them."""
    try:
        header = {
            str(c)
            for c in read_csv_text(test_bytes, nrows=0, header_named=config.time_col)[0].columns
        }
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return  # the full read below names what is wrong with the file
    missing = [c for c in raw_columns if c != config.target and c not in header]
    if config.target in header and missing:
        listed = ",".join(missing)
        raise DataValidationError(
            f"{names[1]}: no column {', '.join(map(repr, missing))}, an input the models read "
            f"in {names[0]}: every origin's forecast needs it, so the test file must hold it "
            f"too; or leave it out of both with `--drop {listed}` (config: feature_columns)"
        )


def _check_no_overlap(train: pd.DataFrame, test: pd.DataFrame, names: tuple[str, str]) -> None:
    train_end = train[TIME_COLUMN].iloc[-1]
    train_start = train[TIME_COLUMN].iloc[0]
    if test[TIME_COLUMN].iloc[-1] < train_start:
        raise DataValidationError(
            f"test data precedes training data: {names[1]} ends at {test[TIME_COLUMN].iloc[-1]}, "
            f"before {names[0]} starts at {train_start}; the test file must follow the "
            "training file in time (are the two files swapped?)"
        )
    early = int((test[TIME_COLUMN] <= train_end).sum())
    if early:
        raise DataValidationError(
            f"test data overlaps training data: {names[1]} starts at "
            f"{test[TIME_COLUMN].iloc[0]} but {names[0]} ends at {train_end} "
            f"({early} test rows at or before the end of training)"
        )


def prepare_datasets(
    train_bytes: bytes,
    test_bytes: bytes,
    config: PreprocessConfig,
    *,
    config_hash: str,
    train_source: str = "train.csv",
    test_source: str = "test.csv",
) -> PreparedData:
    """Validate, regularise, fill, clip and featurise both files; fit the scaler on training."""
    train_raw, ignored = read_csv_with_notes(train_bytes, source=train_source, config=config)
    raw_columns = tuple(c for c in train_raw.columns if c != TIME_COLUMN)
    # The test file must offer the training columns; extra ones are ignored.
    test_config = config.model_copy(update={"feature_columns": raw_columns})
    _check_test_inputs(test_bytes, raw_columns, config, (train_source, test_source))
    test_raw, test_read = read_csv_with_notes(test_bytes, source=test_source, config=test_config)
    train_raw, train_empty = rows_with_values(train_raw, train_source)
    test_raw, test_empty = rows_with_values(test_raw, test_source)
    ignored, test_read = (*ignored, *train_empty), (*test_read, *test_empty)
    if len(train_raw) < 2:
        _require_rows(train_source, len(train_raw), min_train_rows(config), "windows and a step")
    step, how = _resolve_step(config, train_raw[TIME_COLUMN])
    _check_step(train_raw, step, train_source)
    _check_step(test_raw, step, test_source)
    _check_no_overlap(train_raw, test_raw, (train_source, test_source))
    train_notes: tuple[str, ...] = (f"{train_source}: step {step.describe()} ({how})", *ignored)
    time_features = config.time_features and not step.calendar
    if config.time_features and not time_features:
        train_notes += (
            f"{train_source}: no time-of-day and day-of-week inputs (the step is a calendar "
            "month or longer)",
        )
    test_notes: tuple[str, ...] = test_read  # how the file was read: markers, order, format

    # Glitches become missing values before the grid is filled, like empty cells.
    fences = fit_fences(train_raw, config.outlier_factor)
    train_raw, removed = blank_outliers(train_raw, fences, train_source, config.outlier_factor)
    train_notes += removed
    test_raw, removed = blank_outliers(test_raw, fences, test_source, config.outlier_factor)
    test_notes += removed
    anchor = train_raw[TIME_COLUMN].iloc[0]  # one grid for both files
    train_reg, notes, train_filled = regularise(train_raw, step, anchor=anchor, source=train_source)
    train_notes += notes
    test_reg, notes, test_filled = regularise(test_raw, step, anchor=anchor, source=test_source)
    test_notes += notes
    filled_stamps = pd.concat(
        [train_reg[TIME_COLUMN][train_filled], test_reg[TIME_COLUMN][test_filled]]
    )
    if config.clip_quantiles is not None:
        bounds = fit_clip_bounds(train_reg, config.clip_quantiles)
        train_reg, n_train = apply_clip(train_reg, bounds)
        test_reg, n_test = apply_clip(test_reg, bounds)
        train_notes += (f"{train_source}: {n_train} values clipped to training quantiles",)
        test_notes += (f"{test_source}: {n_test} values clipped to training quantiles",)
    found = resolve_defaults(config, train_reg[TIME_COLUMN], step, source=train_source)
    resolved = config.model_copy(
        update={
            "season_steps": found.season_steps,
            "lags": found.lags,
            "step_seconds": step.seconds,
            "step_months": step.months or None,
            "time_features": time_features,
        }
    )
    train_notes += found.notes
    zone = clock_zone_of(config, train_raw, step)
    if zone is not None and found.seasonal_periods:
        train_notes += (
            f"{train_source}: seasonal lags read at the same {zone} clock time one season "
            "earlier (across a daylight-saving change too)",
        )
    elif found.seasonal_periods:
        train_notes += _clock_lags_hint(config, train_raw, test_raw, step, train_source)
    covariates = [c for c in raw_columns if c != config.target]
    train_notes += (f"{train_source}: past covariates {covariates or 'none'}",)
    train_notes += cumulative_note(train_raw[config.target], train_source, config.target)

    featurise = partial(
        build_features,
        target=config.target,
        raw_columns=raw_columns,
        time_features=time_features,
        lags=found.lags,
        step=step,
        clock_zone=zone,
    )
    train = featurise(train_reg)
    if found.lags:
        train_notes += (
            f"{train_source}: {len(train_reg) - len(train)} rows dropped (lag history)",
        )
    resolved, shortened = _fitting_lookback(resolved, len(train), train_source)
    train_notes += shortened
    _check_sizes(resolved, (len(train), len(test_reg)), (train_source, test_source))
    spec = _spec(resolved, config_hash, found, raw_columns, train, step, fences, zone)
    context, gap, note = _context(train_reg, test_reg, context_rows_for(spec), step, test_source)
    filled_stamps = pd.concat([filled_stamps, gap])
    test = featurise(pd.concat([context, test_reg], ignore_index=True), context=train_reg)
    context_rows = int((test[TIME_COLUMN] < test_reg[TIME_COLUMN].iloc[0]).sum())
    if len(test) - context_rows < len(test_reg):
        lost = len(test_reg) - (len(test) - context_rows)
        test_notes += (f"{test_source}: {lost} rows dropped (lag history)",)
    test_notes += (note,)
    _check_origins(test, spec, context_rows, test_source)
    # Context rows are never actuals, but a filled last one still keeps the first origin out.
    unobserved = test[TIME_COLUMN].isin(filled_stamps).to_numpy()
    if unobserved[context_rows:].any():
        test_notes += (
            f"{test_source}: {int(unobserved[context_rows:].sum())} filled-in target values are "
            "never scored, nor forecasts from just after one (they read an interpolation "
            "towards a later value)",
        )
    train_unobserved = train[TIME_COLUMN].isin(filled_stamps).to_numpy()
    if train_unobserved.any():
        train_notes += (
            f"{train_source}: {int(train_unobserved.sum())} filled-in target values are not "
            "learned from, nor the step after each (models fit around them; MSTL, which "
            "needs an unbroken series, fits them too)",
        )
    return PreparedData(
        train,
        test,
        spec,
        train_notes,
        test_notes,
        context_rows,
        resolved,
        unobserved,
        train_unobserved,
    )


#: Fewest rows before a target that never decreases is called a meter register.
CUMULATIVE_MIN_ROWS = 100


def cumulative_note(target: pd.Series, source: str, name: str) -> tuple[str, ...]:
    """A note when the target reads like a meter's register (kWh so far), not a load.

    Such a series never decreases and rises at most steps; FLTS forecasts it as given (its
    models predict the change from the last value, so they do well), but a user who wants the
    consumption per step should forecast its differences, and persistence is a weak baseline.
    """
    values = target.dropna().to_numpy(dtype=np.float64)
    if len(values) < CUMULATIVE_MIN_ROWS:
        return ()
    steps = np.diff(values)
    if (steps < 0).any() or np.mean(steps > 0) < 0.5:
        return ()
    return (
        f"{source}: target {name!r} never decreases over {len(values)} rows and rises at "
        f"{100 * np.mean(steps > 0):.0f} % of them: it looks like a meter's running total "
        "(a register) rather than a load; it is forecast as given, but to forecast the "
        "consumption per step, write the differences between rows as the target",
    )


def _context(
    train: pd.DataFrame, test: pd.DataFrame, rows: int, step: TimeStep, test_source: str
) -> tuple[pd.DataFrame, pd.Series, str]:
    """The history the test object starts with: the training tail, and when the test file starts
    a few steps after training ends (a weekend, a lost day: fewer than ``rows``), the missing
    steps between them filled like any missing step (a straight line in time, flagged so
    nothing is judged on them or on the forecast from just after one, as for gaps inside a file).
    Returns the context rows, the timestamps filled in, and a note.

    After a longer gap the tail is no history of the first test rows worth carrying, so no
    context is carried and the first origins need history from the test file itself.
    """
    last_us = int(times_us_of(train[TIME_COLUMN].tail(1))[0])
    gap = int(step.steps_from(times_us_of(test[TIME_COLUMN].head(1)), last_us)[0]) - 1
    no_gap = pd.Series([], dtype="datetime64[ns]")
    if gap == 0:
        return (
            train.tail(rows),
            no_gap,
            (
                f"{test_source}: {min(rows, len(train))} rows of training context precede the "
                "test rows (history only, never scored)"
            ),
        )
    if gap >= rows:
        return (
            train.iloc[:0],
            no_gap,
            (
                f"{test_source}: starts {gap} steps after the end of training, so no training "
                f"context is carried; the first {rows} test rows only serve as history"
            ),
        )
    stamps = pd.Series(
        step.shift_us(last_us, np.arange(1, gap + 1)).astype("datetime64[us]")
    ).astype("datetime64[ns]")
    bridge = pd.concat(
        [train.tail(1), pd.DataFrame({TIME_COLUMN: stamps}), test.head(1)], ignore_index=True
    )
    filled = bridge.set_index(TIME_COLUMN).interpolate(method="time").reset_index()
    context = pd.concat([train.tail(rows), filled.iloc[1:-1]], ignore_index=True)
    return (
        context,
        stamps,
        (
            f"{test_source}: starts {gap} steps after the end of training: those steps are filled "
            f"like any missing step (never judged, nor the forecast just after them) and "
            f"{min(rows, len(train))} rows of training context precede them"
        ),
    )


def _check_origins(test: pd.DataFrame, spec: ForecastSpec, context_rows: int, source: str) -> None:
    """Fail here, before any model trains, when no test origin can be scored (a test file
    after a gap must hold the longest history a model reads, then a horizon)."""
    try:
        evaluation_origins(len(test), spec, context_rows)
    except DataValidationError as exc:
        hint = (
            "; start the test file right after the training file (its tail is then the history)"
            if context_rows == 0
            else ""
        )
        raise DataValidationError(f"{source}: {exc}{hint}") from exc


def _check_sizes(config: PreprocessConfig, rows: tuple[int, int], names: tuple[str, str]) -> None:
    room = rows[0] - (config.horizon - 1) - min_train_windows(config)
    way_out = (
        f"; a lookback of {room} would fit (--config '{{\"lookback\": {room}}}')"
        if 1 <= room < config.lookback
        else ""
    )
    _require_rows(
        names[0],
        rows[0],
        min_train_rows(config),
        f"lookback {config.lookback} + horizon {config.horizon} - 1 "
        f"+ {min_train_windows(config)} training windows"
        + (f", after {max(config.lags or (0,))} rows of lag history" if config.lags else "")
        + way_out,
    )
    _require_rows(
        names[1],
        rows[1],
        min_test_rows(config),
        f"a horizon of {config.horizon} for one scoring window",
    )


def clock_zone_of(config: PreprocessConfig, train: pd.DataFrame, step: TimeStep) -> str | None:
    """The zone whose clock the seasonal lags follow (``PreprocessConfig.local_clock_lags``):
    the configured or column-named zone, for clock times at a step under a day (dates and
    calendar steps have no clock to shift); None: UTC steps."""
    if not config.local_clock_lags:
        return None
    zone = config.timezone or zone_named_by(config.time_col)
    if zone is None:
        raise ConfigError(
            "local_clock_lags needs the zone of the load's clock: name it with --timezone "
            "(config timezone), or write the timestamps in a column named with it, e.g. "
            "'Time (CET/CEST)'"
        )
    if step.calendar or step.seconds >= 86_400 or is_dates(train[TIME_COLUMN]):
        return None
    return zone


def _clock_lags_hint(
    config: PreprocessConfig,
    train: pd.DataFrame,
    test: pd.DataFrame,
    step: TimeStep,
    source: str,
) -> tuple[str, ...]:
    """A note offering ``local_clock_lags`` when the load's zone is known and the data crosses
    a daylight-saving change, where UTC and local seasonal lags part."""
    zone = config.timezone or zone_named_by(config.time_col)
    if zone is None or step.calendar or step.seconds >= 86_400:
        return ()
    stamps = pd.concat([train[TIME_COLUMN], test[TIME_COLUMN]]).dropna()
    if is_dates(stamps):
        return ()
    seconds = stamps.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(np.float64)
    if len(np.unique(utc_offsets(seconds, zone))) < 2:
        return ()
    return (
        f"{source}: the data crosses a daylight-saving change in {zone}; seasonal lags count "
        "UTC steps. If the load follows people's clocks (shops, offices, a country's demand), "
        "--local-clock-lags (config local_clock_lags) reads them at the same local time (not "
        "for timers or the sun: storage heating, heat pumps, PV)",
    )


def _spec(
    config: PreprocessConfig,
    config_hash: str,
    found: ResolvedDefaults,
    raw_columns: tuple[str, ...],
    train: pd.DataFrame,
    step: TimeStep,
    fences: Fences,
    clock_zone: str | None,
) -> ForecastSpec:
    """The spec every model trained on this data carries; the scaler sees training rows only.
    ``clock_zone``: :func:`clock_zone_of` this data, found once by the caller."""
    order = feature_order_for(
        target=config.target,
        raw_columns=raw_columns,
        time_features=config.time_features,
        lags=found.lags,
    )
    return ForecastSpec(
        target=config.target,
        feature_order=order,
        lookback=config.lookback,
        horizon=config.horizon,
        step_seconds=step.seconds,
        step_months=step.months,
        month_end=step.month_end,
        season_steps=found.season_steps,
        seasonal_periods=found.seasonal_periods,
        scaler=ScalerParams.fit(order, train[list(order)].to_numpy(dtype="float64")),
        config_hash=config_hash,
        raw_columns=raw_columns,
        time_features=config.time_features,
        lags=found.lags,
        holidays=config.holidays,
        clock_zone=clock_zone,
        # Dates (every row a midnight) are their own days: a zone would shift western ones.
        timezone=(
            config.timezone or zone_named_by(config.time_col)
            if config.holidays and not is_dates(train[TIME_COLUMN])
            else None
        ),
        outlier_fences=fences,
    )
