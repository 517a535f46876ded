"""Gross outliers: readings so far outside the training data that they are glitches, not load.

One corrupt reading (a meter's 999999 sentinel, a unit slip, a register read as a rate) is
enough to ruin most models: a single 1e9 among values near 2 in three weeks of 15-minute
training data left LINEAR and LightGBM almost untouched (0.74x persistence MAE) but made GRU
5e5x, Prophet 5e6x and MSTL 7e6x worse than persistence, because the scaler, the trend and the
decomposition all stretch to reach it.

A value of a numeric column is such an outlier when it lies further from the column's training
median than ``factor`` times the 99th percentile of the column's non-zero training magnitudes
(factor 10 by default, config ``outlier_factor``; None turns this off). The 99th percentile
keeps the fence where it is when up to 1 % of the rows are glitches, and skipping zeros keeps it
meaningful for a heat pump that is off 96 % of the time. The fences come from the *training*
file only and apply to both files. An outlier is removed before the grid is filled, so it is
treated exactly like an empty cell: interpolated, and for the target flagged as filled in, so
it is neither learned from nor scored (``DatasetMeta.unobserved_target_rows``). Each removal is
named in the preprocessing notes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flts.forecasting.spec import TIME_COLUMN

#: Removals named per column in a note.
EXAMPLES = 3

#: Column -> (median, largest distance from it that is kept).
Fences = dict[str, tuple[float, float]]


def fit_fences(train: pd.DataFrame, factor: float | None) -> Fences:
    """Each numeric column's fence from the training frame (none for a column of zeros)."""
    if factor is None:
        return {}
    fences: Fences = {}
    for column in train.columns:
        if column == TIME_COLUMN:
            continue
        values = pd.to_numeric(train[column], errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        magnitudes = np.abs(values[values != 0.0])
        if magnitudes.size == 0:
            continue
        reach = factor * float(np.quantile(magnitudes, 0.99))
        fences[column] = (float(np.median(values)), reach)
    return fences


def blank_outliers(
    frame: pd.DataFrame, fences: Fences, source: str, factor: float | None
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``frame`` with every value beyond its column's fence made missing, and a note per
    column naming what was removed (the first few values and where)."""
    if not fences:
        return frame, ()
    out = frame.copy()
    notes: list[str] = []
    for column, (median, reach) in fences.items():
        if column not in out.columns:
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        far = (values - median).abs() > reach
        count = int(far.sum())
        if not count:
            continue
        where = out.loc[far, TIME_COLUMN].head(EXAMPLES).tolist()
        shown = ", ".join(
            f"{value:.6g} at {stamp}"
            for value, stamp in zip(values[far].head(EXAMPLES), where, strict=True)
        )
        more = f" and {count - EXAMPLES} more" if count > EXAMPLES else ""
        notes.append(
            f"{source}: {count} value(s) of {column!r} treated as missing, further than "
            f"{factor:g}x the training data's 99th-percentile magnitude from its median "
            f"({median:.6g}): {shown}{more} (a glitch or sentinel reading; config "
            '"outlier_factor": null keeps them)'
        )
        out[column] = values.mask(far)
    return out, tuple(notes)
