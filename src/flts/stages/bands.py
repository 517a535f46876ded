"""Live bands that adapt to live misses (:class:`BandScale`), used by :mod:`flts.stages.live`,
and their replay over a scored test period (:func:`replayed_bands`), used by scoring."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from flts.forecasting.intervals import ConformalIntervals

#: Bounds of the live band scale (see :class:`BandScale`).
MIN_BAND_SCALE, MAX_BAND_SCALE = 0.2, 10.0
#: The live loop's default adaptation rate (``LIVE_BAND_ADAPTATION``; a test keeps them equal).
DEFAULT_BAND_ADAPTATION = 0.05


class BandScale:
    """Online adaptation of the conformal bands to live misses, per level and horizon step.

    Conformal bands calibrated at the end of training hold their level only while the live data
    behave like the calibration windows; a busier period (or a drift) makes them under-cover.
    Each (level, step)'s band offsets are multiplied by a scale that grows after a miss and shrinks
    after a hit, ``s <- s * exp(rate * (miss - alpha))`` with ``alpha = 1 - level/100``: in
    log space the quantile-tracking update of adaptive conformal inference (Gibbs and Candes,
    2021), whose long-run miss rate converges to ``alpha`` whatever the data do. Rate 0 keeps
    the trained bands.
    """

    def __init__(self, rate: float) -> None:
        if rate < 0:
            raise ValueError(f"band adaptation rate must be >= 0, got {rate}")
        self.rate = rate
        self.scales: dict[tuple[int, int], float] = {}

    def of(self, level: int, step: int) -> float:
        return self.scales.get((level, step), 1.0)

    def update(self, level: int, step: int, inside: bool) -> None:
        if self.rate == 0:
            return
        alpha = 1.0 - level / 100.0
        grown = self.of(level, step) * math.exp(self.rate * ((0.0 if inside else 1.0) - alpha))
        self.scales[(level, step)] = min(MAX_BAND_SCALE, max(MIN_BAND_SCALE, grown))

    def reset(self) -> None:
        self.scales.clear()


def scaled_band(
    point: np.ndarray, lower: np.ndarray, upper: np.ndarray, scale: np.ndarray, floor: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """The band's offsets from ``point`` times ``scale`` (per step), clipped at ``floor``."""
    lo, hi = point + scale * (lower - point), point + scale * (upper - point)
    if floor is not None:
        lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
    return lo, hi


def replayed_bands(
    intervals: ConformalIntervals,
    point: np.ndarray,
    actual: np.ndarray,
    rate: float = DEFAULT_BAND_ADAPTATION,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The bands the live loop would have served from consecutive origins (rows of ``point``).

    Before the band of origin ``j`` is drawn, the actual of row ``j - 1`` is revealed and
    scores every earlier forecast of that row (oldest origin first, as the live loop scores its
    pending forecasts): nothing at or after an origin is read, so this is as honest as the
    static bands, and it shows what the adaptation buys on data the calibration did not see.
    """
    band_scale = BandScale(rate)
    static = intervals.bands(point)
    n, horizon = point.shape
    out = {lv: (np.empty_like(lo), np.empty_like(hi)) for lv, (lo, hi) in static.items()}
    steps = range(1, horizon + 1)
    for j in range(n):
        for k in range(horizon - 1, -1, -1):  # forecasts of row j - 1, oldest origin first
            i = j - 1 - k
            if i < 0:
                continue
            for level, (lo, hi) in out.items():
                band_scale.update(level, k + 1, bool(lo[i, k] <= actual[i, k] <= hi[i, k]))
        for level, (lower, upper) in static.items():
            scale = np.array([band_scale.of(level, h) for h in steps])
            lo_j, hi_j = scaled_band(point[j], lower[j], upper[j], scale, intervals.floor)
            out[level][0][j], out[level][1][j] = lo_j, hi_j
    return out
