"""Why a model gains little over the free baselines: two readings a user can act on.

* **Per test day**: the model's MAE against persistence's on the same (origin, step) pairs,
  grouped by the calendar day of the forecast target. One bad day (a public holiday the model
  took for a working day, an outage, a meter fault) stands out far above the others, and says
  how the whole-period ratio would read without it.
* **How predictable the next change is**: the autocorrelation of the series' one-step changes
  in training, at lag 1 and at each seasonal period. Near zero at every lag, the next change is
  close to white noise given this history: persistence is then near the best one-step forecast
  any model can make from it, and a small gain is the honest result, not a failed fit.

Both are read-only summaries of numbers the run already has; nothing here feeds a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from flts.domain.messages import DayBreakdown, DayError

#: Fewer full days than this and a per-day breakdown says nothing a reader can use.
MIN_DAYS = 3
#: A day needs this many judged pairs to be a day of a sub-daily series (daily or coarser data
#: has one row per day: its "days" are single forecasts).
MIN_PAIRS_PER_DAY = 4
#: Changes with fewer pairs than this at a lag get no autocorrelation (too noisy to read).
MIN_ACF_PAIRS = 30
#: Every |autocorrelation| of the one-step changes below this: "close to white noise" (the
#: best single lag would explain under 4 % of the next change's variance).
WHITE_NOISE_ACF = 0.2


def errors_by_day(
    timestamps: np.ndarray,
    actual: np.ndarray,
    point: np.ndarray,
    persistence: np.ndarray,
    zone: str | None = None,
    worst: int = 3,
) -> DayBreakdown | None:
    """The model's and persistence's MAE per calendar day of the forecast targets.

    ``timestamps``: (origins, H) target times (UTC, tz-naive); ``actual``: same shape, NaN
    where a pair is not judged; ``point``/``persistence``: the two forecasts. Days are read on
    ``zone``'s clock when given. Returns the number of full days, the median day's ratio and the
    ``worst`` days by how much each adds to the model's MAE over the whole period; None when the
    pairs span fewer than :data:`MIN_DAYS` full days of a sub-daily series.
    """
    judged = ~np.isnan(actual)
    if not judged.any():
        return None
    stamps = pd.DatetimeIndex(np.asarray(timestamps)[judged].ravel())
    if zone:
        stamps = stamps.tz_localize("UTC").tz_convert(zone).tz_localize(None)
    frame = pd.DataFrame(
        {
            "day": stamps.normalize(),
            "model": np.abs(point - actual)[judged].ravel(),
            "persistence": np.abs(persistence - actual)[judged].ravel(),
        }
    )
    per_day = frame.groupby("day").agg(
        pairs=("model", "size"), model=("model", "sum"), persistence=("persistence", "sum")
    )
    # Partial days at the ends of the test period (fewer pairs than a full day) are left out.
    full = per_day[per_day["pairs"] >= max(MIN_PAIRS_PER_DAY, per_day["pairs"].max() // 2)]
    if len(full) < MIN_DAYS:
        return None
    excess = (full["model"] - full["persistence"]) / len(frame)
    scored = full[full["persistence"] > 0]
    ratios = scored["model"] / scored["persistence"]
    picked = excess.sort_values(ascending=False, kind="stable").index[:worst]
    return DayBreakdown(
        days=len(full),
        pairs=len(frame),
        median_ratio=float(np.median(ratios)) if len(ratios) else None,
        worst=tuple(
            DayError(
                date=day.strftime("%Y-%m-%d"),
                weekday=day.strftime("%a"),
                pairs=int(full.at[day, "pairs"]),
                mae=float(full.at[day, "model"] / full.at[day, "pairs"]),
                persistence_mae=float(full.at[day, "persistence"] / full.at[day, "pairs"]),
                excess_mae=float(excess.at[day]),
            )
            for day in picked
        ),
    )


def change_autocorrelation(
    target: np.ndarray, lags: Sequence[int], unobserved: np.ndarray | None = None
) -> dict[int, float]:
    """Autocorrelation of the one-step changes ``y[t] - y[t-1]`` at each lag.

    A change touching a filled-in value (``unobserved``) is left out: interpolation makes
    changes smooth and would read as predictability the data does not have. A lag with fewer
    than :data:`MIN_ACF_PAIRS` pairs, or a constant series, gets no value.
    """
    values = np.asarray(target, dtype=np.float64)
    changes = np.diff(values)
    if unobserved is not None:
        filled = np.asarray(unobserved, dtype=bool)
        changes = np.where(filled[1:] | filled[:-1], np.nan, changes)
    out: dict[int, float] = {}
    for lag in sorted({int(k) for k in lags if 0 < k < len(changes)}):
        now, before = changes[lag:], changes[:-lag]
        both = ~(np.isnan(now) | np.isnan(before))
        if both.sum() < MIN_ACF_PAIRS:
            continue
        a, b = now[both], before[both]
        if np.std(a) == 0 or np.std(b) == 0:
            continue
        out[lag] = float(np.corrcoef(a, b)[0, 1])
    return out


def close_to_white_noise(autocorrelation: dict[int, float]) -> bool:
    """Every measured lag's |autocorrelation| is below :data:`WHITE_NOISE_ACF`."""
    return bool(autocorrelation) and all(abs(v) < WHITE_NOISE_ACF for v in autocorrelation.values())


def day_ratio(day: DayError) -> float | None:
    """The day's MAE / persistence MAE; None when persistence was exact all day."""
    return day.mae / day.persistence_mae if day.persistence_mae > 0 else None


def ratio_without_day(
    model_mae: float, persistence_mae: float, breakdown: DayBreakdown, day: DayError
) -> float | None:
    """MAE / persistence MAE over the test period without ``day``'s pairs (``model_mae`` and
    ``persistence_mae`` are over all ``breakdown.pairs``); None if nothing is left to compare."""
    rest = breakdown.pairs - day.pairs
    persistence_rest = persistence_mae * breakdown.pairs - day.persistence_mae * day.pairs
    if rest <= 0 or persistence_rest <= 0:
        return None
    return (model_mae * breakdown.pairs - day.mae * day.pairs) / persistence_rest


def strongest_lag_share(autocorrelation: dict[int, float]) -> float:
    """The largest squared autocorrelation: the share of the next change's variance the best
    single lag explains linearly."""
    return max((v * v for v in autocorrelation.values()), default=0.0)
