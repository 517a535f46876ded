"""Rolling-origin windows. The only place that decides which rows a forecast may read."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.errors import DataValidationError
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec

#: Fewest training windows (after the validation tail and its gap) an RNN is fitted on.
MIN_FIT_WINDOWS = 16


def split_sizes(n_windows: int, horizon: int, validation_fraction: float) -> tuple[int, int]:
    """(train, validation) window counts; the ``horizon`` windows between them are dropped."""
    n_val = max(1, int(n_windows * validation_fraction))
    return n_windows - n_val - horizon, n_val


def min_fit_windows(horizon: int, validation_fraction: float) -> int:
    """Fewest windows that leave :data:`MIN_FIT_WINDOWS` for training after the split."""
    n_windows = MIN_FIT_WINDOWS + horizon + 1
    while split_sizes(n_windows, horizon, validation_fraction)[0] < MIN_FIT_WINDOWS:
        n_windows += 1
    return n_windows


def first_origin(spec: ForecastSpec, context_rows: int = 0, min_history: int = 0) -> int:
    """The first origin scored or forecast in a processed frame.

    ``context_rows`` leading rows of a processed test frame are the tail of the training file:
    history that forecasts may read, never a scored timestamp. The first origin is therefore the
    first test row, unless the context is too short for the longest history any forecaster needs
    (the lookback, one season for seasonal naive, the longest seasonal period the lag models and
    Prophet's correction read, or ``min_history``). Evaluation and batch inference both start
    here, so they forecast exactly the same origins; and every model of a run starts at the same
    one (a test file that does not follow training directly carries no context, and a model
    reading a weekly lag must not be scored on fewer origins than one reading a day).
    """
    return max(context_rows, spec.lookback, spec.season_steps, *spec.seasonal_periods, min_history)


def evaluation_origins(n_rows: int, spec: ForecastSpec, context_rows: int = 0) -> np.ndarray:
    """Origins every model and baseline is scored on: the same set for all of them.

    Every row from :func:`first_origin` on is an origin whose ``horizon`` steps all lie in the
    frame; with a long enough context that is every test timestamp.
    """
    first = first_origin(spec, context_rows)
    last = n_rows - spec.horizon
    if last < first:
        raise DataValidationError(
            f"test data has {n_rows - context_rows} rows (plus {context_rows} rows of training "
            f"context); scoring needs a history of {first} rows before the first origin and "
            f"a horizon of {spec.horizon} rows after it"
        )
    return np.arange(first, last + 1, dtype=np.int64)


def input_windows(matrix: np.ndarray, origins: np.ndarray, lookback: int) -> np.ndarray:
    """Stack ``matrix[i - lookback : i]`` for each origin: shape (n, lookback, features).

    A zero-copy strided view, so windowing the whole test file costs no memory.
    """
    if len(origins) == 0:
        return np.empty((0, lookback, matrix.shape[1]), dtype=matrix.dtype)
    if origins.min() < lookback or origins.max() > len(matrix):
        raise DataValidationError(
            f"origins must lie in [{lookback}, {len(matrix)}] for a lookback of {lookback}"
        )
    view = np.lib.stride_tricks.sliding_window_view(matrix, (lookback, matrix.shape[1]))[:, 0]
    windows: np.ndarray = view[origins - lookback]
    return windows


def actuals(target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Actual target values for each origin and step: shape (n, horizon)."""
    steps = np.arange(horizon)
    values: np.ndarray = target[origins[:, None] + steps[None, :]]
    return values


def scorable_actuals(
    target: np.ndarray, origins: np.ndarray, horizon: int, unobserved: np.ndarray | None = None
) -> np.ndarray:
    """:func:`actuals`, NaN where a forecast must not be judged on a filled-in value.

    ``unobserved`` marks rows whose target was not in the file (a missing time step or an empty
    cell, filled by interpolation in preprocessing). Such a row is never an actual: a forecast
    would be judged against a value FLTS made up. And an origin whose last input row is filled
    is not judged at all: that value was interpolated towards the next observed one, at or after
    the origin, so its forecasts read the future. Filled rows further back are harmless (their
    gap closed before the origin). Every scorer reads its actuals here, so models, baselines,
    intervals, batch inference and the challenger check skip the same pairs.
    """
    values = np.array(actuals(target, origins, horizon), dtype=np.float64)
    if unobserved is None or not unobserved.any():
        return values
    values[~judged_pairs(unobserved, origins, horizon)] = np.nan
    return values


def judged_pairs(unobserved: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(len(origins), horizon) flags: may the forecast of this (origin, step) be judged, or
    learned from? Not when its actual was filled in, nor when the origin's last input row was
    (see :func:`scorable_actuals`). Training applies the same rule to its labels."""
    mask = np.asarray(unobserved, dtype=bool)
    judged: np.ndarray = ~(actuals(mask, origins, horizon) | mask[origins - 1][:, None])
    return judged


def judged_at_step(unobserved: np.ndarray, origins: np.ndarray, step: int) -> np.ndarray:
    """Column ``step`` (0-based) of :func:`judged_pairs`, without building the others."""
    mask = np.asarray(unobserved, dtype=bool)
    judged: np.ndarray = ~(mask[origins + step] | mask[origins - 1])
    return judged


def runs_of(mask: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Half-open ``(start, stop)`` row ranges where ``mask`` is true (compact for metadata)."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return tuple((int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))


def mask_of(runs: tuple[tuple[int, int], ...] | list[tuple[int, int]], rows: int) -> np.ndarray:
    """The boolean row mask of :func:`runs_of` ranges."""
    mask = np.zeros(rows, dtype=bool)
    for start, stop in runs:
        mask[start:stop] = True
    return mask


def target_timestamps(frame: pd.DataFrame, origins: np.ndarray, spec: ForecastSpec) -> np.ndarray:
    """Timestamps forecast from each origin: after the input window, never inside it."""
    last_seen = frame[TIME_COLUMN].to_numpy()[origins - 1]
    stamps: np.ndarray = spec.step.shift(last_seen[:, None], np.arange(1, spec.horizon + 1))
    return stamps
