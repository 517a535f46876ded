"""Live bands that adapt to live misses (:class:`BandScale`), used by :mod:`flts.stages.live`."""

from __future__ import annotations

import math

#: Bounds of the live band scale (see :class:`BandScale`).
MIN_BAND_SCALE, MAX_BAND_SCALE = 0.2, 10.0


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
