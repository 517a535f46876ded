"""The live loop's pure logic: one window per identifier, forecasts, scoring, rolling metrics.

For each observation of an identifier (:meth:`LiveSeries.accept`):

* it is put on the step grid of the series (snapped to the nearest slot after the last row);
  a timestamp at or before the last row is a duplicate or out of order: dropped and counted,
  never an error;
* a gap (missing slots) is filled the way preprocessing fills it
  (``flts.forecasting.data.regularise``: linear in time between the neighbours) and the filled
  rows are flagged, so the next forecasts say ``gap_filled``; filled values are never scored;
* the forecasts made earlier for this timestamp are scored against the actual, next to the
  persistence forecast from the same origin (the last actual the forecast read), and to each
  level's band.

:meth:`LiveSeries.forecast` then forecasts the next H steps with the champion through the same
feature builder as batch inference (``feature_block`` through ``tail_features``, which equals
``features_for_spec`` on the window without its frame round trip, + ``Forecaster.predict``).
No broker, no clock: the service (``flts.services.live``) owns both.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from flts.domain.messages import ForecastStep, LiveForecast
from flts.errors import MessageError
from flts.forecasting.base import Forecaster
from flts.forecasting.features import raw_part, tail_features
from flts.forecasting.intervals import ConformalIntervals
from flts.forecasting.spec import TIME_COLUMN
from flts.forecasting.time_step import TimeStep
from flts.stages.bands import BandScale, scaled_band

_US = 1_000_000
#: Actuals and one-step forecasts kept for the live page (a day at 5-minute steps, and more).
RECENT_POINTS = 720
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Champion:
    """What the live loop needs of the model answering for an identifier."""

    forecaster: Forecaster
    run_id: str
    model_type: str
    config_hash: str
    #: The champion's test MAE from training (drift compares live MAE with it), when known.
    test_mae: float | None = None

    @property
    def rows_needed(self) -> int:
        """Raw rows one forecast reads: the model's history, plus the lags' history."""
        return self.forecaster.min_history + max(self.forecaster.spec.lags, default=0)


@dataclass(frozen=True)
class Accepted:
    """What one observation did to its series."""

    status: str  # "accepted", "duplicate" or "out_of_order"
    timestamp_us: int
    filled_steps: int = 0
    scored: int = 0


@dataclass(frozen=True)
class LiveMetrics:
    """Errors over the rolling window of scored points, and over everything scored."""

    points: int
    mae: float | None
    persistence_mae: float | None
    coverage: dict[int, float]
    total_points: int
    total_mae: float | None
    total_persistence_mae: float | None
    total_coverage: dict[int, float]


@dataclass
class _Scored:
    abs_error: float
    persistence_abs_error: float
    inside: dict[int, bool]


@dataclass
class _Pending:
    step: int
    point: float
    persistence: float
    bands: dict[int, tuple[float, float]]


@dataclass
class _Totals:
    points: int = 0
    abs_error: float = 0.0
    persistence_abs_error: float = 0.0
    inside: dict[int, int] = field(default_factory=dict)


def epoch_us(stamp: datetime) -> int:
    """Epoch microseconds of a timestamp; a naive one is read as UTC."""
    aware = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def iso_of(us: int) -> str:
    return str(np.datetime_as_string(np.datetime64(us, "us").astype("datetime64[s]"))) + "Z"


class LiveSeries:
    """The last rows of one identifier, its forecasts awaiting actuals and its live metrics."""

    def __init__(
        self,
        identifier: str,
        columns: tuple[str, ...],
        step: TimeStep,
        *,
        keep_rows: int,
        metrics_window: int,
        band_adaptation: float = 0.0,
        fences: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        if keep_rows < 2:
            raise ValueError(f"keep_rows must be at least 2, got {keep_rows}")
        self.identifier = identifier
        self.columns = columns
        self.step = step
        #: The champion's glitch fences (``ForecastSpec.outlier_fences``), by column.
        self.fences = dict(fences or {})
        self.keep_rows = keep_rows
        self._times = np.zeros(2 * keep_rows, dtype=np.int64)
        self._values = np.zeros((2 * keep_rows, len(columns)), dtype=np.float64)
        self._filled = np.zeros(2 * keep_rows, dtype=bool)
        self._n = 0
        self._pending: dict[int, list[_Pending]] = {}
        self._scored: deque[_Scored] = deque(maxlen=metrics_window)
        self._totals = _Totals()
        self.band_scale = BandScale(band_adaptation)
        self.observations = 0
        self.forecasts = 0
        self.dropped_out_of_order = 0
        self.dropped_duplicate = 0
        self.gap_filled_steps = 0
        #: (timestamp_us, actual) and (target_us, point, {level: (lower, upper)}) for the page.
        self.recent_actuals: deque[tuple[int, float]] = deque(maxlen=RECENT_POINTS)
        self.recent_forecasts: deque[tuple[int, float, dict[int, tuple[float, float]]]] = deque(
            maxlen=RECENT_POINTS
        )
        self.last_forecast: LiveForecast | None = None

    # --- the window -------------------------------------------------------------------------

    @property
    def rows(self) -> int:
        """Rows the window holds (the buffer may hold up to twice as many, already stale)."""
        return min(self._n, self.keep_rows)

    @property
    def last_us(self) -> int | None:
        return int(self._times[self._n - 1]) if self._n else None

    def row_values(self, values: dict[str, float], where: str) -> np.ndarray:
        """The observation's values in window column order; a missing column is refused."""
        missing = [c for c in self.columns if c not in values]
        if missing:
            raise MessageError(
                f"{where}: values lack {missing}; identifier {self.identifier!r} needs "
                f"{list(self.columns)}"
            )
        row = np.array([values[c] for c in self.columns], dtype=np.float64)
        for column, value in zip(self.columns, row, strict=True):
            fence = self.fences.get(column)
            if fence is not None and abs(value - fence[0]) > fence[1]:
                # Refused (dead-lettered): the slot stays empty and is filled like any gap once
                # the next reading arrives, so one glitch never enters a forecast's window.
                raise MessageError(
                    f"{where}: {column} = {value:.6g} is further than {fence[1]:.6g} from its "
                    f"training median {fence[0]:.6g}: a glitch or sentinel reading, as "
                    "preprocessing treats it"
                )
        return row

    def accept(self, timestamp_us: int, row: np.ndarray) -> Accepted:
        """Add one observation (see the module docstring); returns what happened to it."""
        last = self.last_us
        if last is None:
            self._append(timestamp_us, row, filled=False)
            self._record_actual(timestamp_us, row)
            return Accepted("accepted", timestamp_us)
        slots = int(self.step.steps_from(np.array([timestamp_us]), last)[0])
        if slots <= 0:
            # Exactly on (or snapped onto) a slot we hold: a repeat; before it: out of order.
            status = "duplicate" if self._holds(self._after(last, slots)) else "out_of_order"
            if status == "duplicate":
                self.dropped_duplicate += 1
            else:
                self.dropped_out_of_order += 1
            return Accepted(status, timestamp_us)
        snapped = self._after(last, slots)
        filled = self._fill_gap(last, slots, row)
        self._append(snapped, row, filled=False)
        scored = self._record_actual(snapped, row)
        return Accepted("accepted", snapped, filled_steps=filled, scored=scored)

    def frame(self, rows: int) -> pd.DataFrame:
        """``ds`` + raw columns of the last ``rows`` rows (fewer when the window holds fewer)."""
        start = max(0, self._n - min(rows, self.keep_rows))
        frame = pd.DataFrame(self._values[start : self._n].copy(), columns=list(self.columns))
        stamps = self._times[start : self._n].astype("datetime64[us]").astype("datetime64[ns]")
        frame.insert(0, TIME_COLUMN, stamps)
        return frame

    def _after(self, timestamp_us: int, steps: int) -> int:
        """The grid timestamp ``steps`` steps after ``timestamp_us`` (calendar months too)."""
        return int(self.step.shift_us(timestamp_us, steps))

    def _holds(self, timestamp_us: int) -> bool:
        return bool(np.any(self._times[: self._n] == timestamp_us))

    def _append(self, timestamp_us: int, row: np.ndarray, *, filled: bool) -> None:
        if self._n == len(self._times):  # keep the newest keep_rows - 1 rows, amortised O(1)
            keep = self.keep_rows - 1
            self._times[:keep] = self._times[self._n - keep : self._n]
            self._values[:keep] = self._values[self._n - keep : self._n]
            self._filled[:keep] = self._filled[self._n - keep : self._n]
            self._n = keep
        self._times[self._n] = timestamp_us
        self._values[self._n] = row
        self._filled[self._n] = filled
        self._n += 1

    def _fill_gap(self, last_us: int, slots: int, new_row: np.ndarray) -> int:
        """Insert the ``slots - 1`` missing rows before ``new_row``, linear in time between the
        last row and it (``regularise``'s interpolation); returns how many were inserted.

        Only the newest ``keep_rows`` slots are inserted: older ones would be trimmed anyway.
        """
        if slots <= 1:
            return 0
        before = self._values[self._n - 1].copy()
        first = max(1, slots - self.keep_rows)
        for k in range(first, slots):
            stamp = self._after(last_us, k)
            self._append(stamp, before + (k / slots) * (new_row - before), filled=True)
            self._pending.pop(stamp, None)  # a filled value is no actual: never scored
        self.gap_filled_steps += slots - first
        return slots - first

    def _record_actual(self, timestamp_us: int, row: np.ndarray) -> int:
        self.observations += 1
        actual = float(row[0])
        self.recent_actuals.append((timestamp_us, actual))
        return self._score(timestamp_us, actual)

    # --- forecasting and scoring ------------------------------------------------------------

    def forecast(self, champion: Champion, sent_at: str | None = None) -> LiveForecast | None:
        """The next H steps from the end of the window, or None while it is too short."""
        needed = champion.rows_needed
        if self._n < needed:
            return None
        forecaster = champion.forecaster
        spec = forecaster.spec
        start = self._n - needed
        features = tail_features(
            self._times[start : self._n],
            self._values[start : self._n],
            spec,
            forecaster.min_history,
        )
        point = np.asarray(
            forecaster.predict(features, np.array([len(features)], dtype=np.int64)),
            dtype=np.float64,
        )[0]
        if not np.isfinite(point).all():
            raise ValueError(f"{champion.model_type} produced a non-finite live forecast")
        intervals = forecaster.intervals
        bands = {} if intervals is None else self._adapted(intervals, point)
        origin = int(self._times[self._n - 1])
        persistence = float(self._values[self._n - 1, 0])
        filled = int(self._filled[self._n - needed : self._n].sum())
        steps = []
        for h in range(spec.horizon):
            target = self._after(origin, h + 1)
            step_bands = {lv: (float(lo[0, h]), float(hi[0, h])) for lv, (lo, hi) in bands.items()}
            extra = {
                f"{side}_{lv}": b[i]
                for lv, b in step_bands.items()
                for i, side in enumerate(("lower", "upper"))
            }
            steps.append(
                ForecastStep(
                    step=h + 1, target_timestamp=iso_of(target), point=float(point[h]), **extra
                )
            )
            self._pending.setdefault(target, []).append(
                _Pending(h + 1, float(point[h]), persistence, step_bands)
            )
            if h == 0:
                self.recent_forecasts.append((target, float(point[h]), step_bands))
        self._drop_stale_pending(origin)
        self.forecasts += 1
        result = LiveForecast(
            identifier=self.identifier,
            origin_timestamp=iso_of(origin),
            run_id=champion.run_id,
            model_type=champion.model_type,
            config_hash=champion.config_hash,
            horizon=spec.horizon,
            steps=steps,
            gap_filled=filled > 0,
            gap_filled_steps=filled,
            levels=sorted(bands),
            sent_at=sent_at,
        )
        self.last_forecast = result
        return result

    def _adapted(
        self, intervals: ConformalIntervals, point: np.ndarray
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The trained bands (locally scaled ones at the level of the window's last rows), each
        level's half-width times its live scale about the band's centre."""
        row = point[None, :]
        scales = intervals.scales_after(self._values[: self._n, 0])
        out = {}
        steps = range(1, row.shape[1] + 1)
        for level, (lower, upper) in intervals.bands(row, scales).items():
            scale = np.array([[self.band_scale.of(level, h) for h in steps]])
            out[level] = scaled_band(lower, upper, scale, intervals.floor)
        return out

    def _drop_stale_pending(self, origin_us: int) -> None:
        """Targets at or before the origin can no longer get an actual (their slot passed)."""
        for stamp in [t for t in self._pending if t <= origin_us]:
            del self._pending[stamp]

    def _score(self, timestamp_us: int, actual: float) -> int:
        waiting = self._pending.pop(timestamp_us, [])
        totals = self._totals
        for p in waiting:
            inside = {lv: lo <= actual <= hi for lv, (lo, hi) in p.bands.items()}
            for lv, ok in inside.items():
                self.band_scale.update(lv, p.step, ok)
            scored = _Scored(abs(actual - p.point), abs(actual - p.persistence), inside)
            self._scored.append(scored)
            totals.points += 1
            totals.abs_error += scored.abs_error
            totals.persistence_abs_error += scored.persistence_abs_error
            for lv, ok in inside.items():
                totals.inside[lv] = totals.inside.get(lv, 0) + int(ok)
        return len(waiting)

    def metrics(self) -> LiveMetrics:
        window = list(self._scored)
        n = len(window)
        levels = sorted({lv for s in window for lv in s.inside})
        coverage = {
            lv: float(np.mean([s.inside[lv] for s in window if lv in s.inside])) for lv in levels
        }
        t = self._totals
        return LiveMetrics(
            points=n,
            mae=float(np.mean([s.abs_error for s in window])) if n else None,
            persistence_mae=float(np.mean([s.persistence_abs_error for s in window]))
            if n
            else None,
            coverage=coverage,
            total_points=t.points,
            total_mae=t.abs_error / t.points if t.points else None,
            total_persistence_mae=t.persistence_abs_error / t.points if t.points else None,
            total_coverage={lv: c / t.points for lv, c in sorted(t.inside.items())}
            if t.points
            else {},
        )

    def reset_metrics(self) -> None:
        """Forget the rolling window and the band scales (after a champion swap, the old
        model's errors and misses say nothing about the new one); totals are kept for the run's
        summary."""
        self._scored.clear()
        self.band_scale.reset()


def series_for(
    identifier: str,
    champion: Champion,
    *,
    history_rows: int,
    metrics_window: int,
    band_adaptation: float = 0.0,
) -> LiveSeries:
    """A new, empty series shaped for ``champion`` (its raw columns, step and history)."""
    spec = champion.forecaster.spec
    columns = raw_part(spec.target, spec.raw_columns or (spec.target,))
    keep = max(champion.rows_needed, history_rows)
    return LiveSeries(
        identifier,
        columns,
        spec.step,
        keep_rows=keep,
        metrics_window=metrics_window,
        band_adaptation=band_adaptation,
        fences=spec.outlier_fences,
    )
