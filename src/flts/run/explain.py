"""When the champion gains little over the free baselines (or nothing is promoted), say why.

A user whose model only ties persistence wants to know whether to tune, add data, or accept it.
Two readings answer most cases (``flts.forecasting.diagnosis``): whether the series' next change
is predictable from its own past at all, and whether one test day (a holiday, an outage) carries
the loss. Both are printed by ``flts run`` under the score table and kept in the summary JSON.
"""

from __future__ import annotations

from typing import Any

from flts.domain.messages import DayBreakdown
from flts.forecasting.diagnosis import (
    WHITE_NOISE_ACF,
    close_to_white_noise,
    day_ratio,
    ratio_without_day,
    strongest_lag_share,
)

#: The champion's MAE / the better baseline's above this is a "small gain" worth explaining.
SMALL_GAIN = 0.95
#: A worst day whose ratio is this many times the median day's stands out.
STANDOUT_DAY = 1.5
#: RMSE's ratio this much below MAE's: the gain is in the large errors.
METRIC_GAP = 0.02
HOLIDAY_HINT = "`--holidays <country code>` gives LightGBM the calendar"


def explanation(summary: dict[str, Any]) -> list[str]:
    """Lines explaining a small gain, or [] when the champion clearly beats the baselines."""
    rows = [r for r in summary.get("scores", []) if not r.get("is_baseline")]
    if not rows:
        return []
    champion = (summary.get("champion") or {}).get("model_type")
    subject = next((r for r in rows if r["model_type"] == champion), None) or min(
        rows, key=lambda r: (r.get("composite_score", float("inf")), r["model_type"])
    )
    if champion is not None and float(subject.get("mae_vs_best_baseline", 1.0)) <= SMALL_GAIN:
        return []
    lines = []
    acf = {int(k): v for k, v in _autocorrelation(summary).items()}
    if acf and int(summary.get("horizon") or 1) == 1:
        lines.append(_acf_line(acf))
    lines.extend(_metric_line(subject))
    lines.extend(_day_lines(subject, summary))
    if not lines:
        return []
    gain = float(subject.get("mae_vs_best_baseline", float("nan")))
    return [
        f"why the gain is small ({subject['model_type']}: MAE {gain:.3f}x the better baseline):",
        *lines,
    ]


def _autocorrelation(summary: dict[str, Any]) -> dict[str, float]:
    return dict((summary.get("diagnosis") or {}).get("change_autocorrelation") or {})


def _acf_line(acf: dict[int, float]) -> str:
    values = ", ".join(f"{lag} step{'s' if lag != 1 else ''} {v:+.2f}" for lag, v in acf.items())
    line = f"  training's one-step changes, autocorrelation at lag {values}"
    if close_to_white_noise(acf):
        return line + (
            f" (all within +-{WHITE_NOISE_ACF}): the next change is close to white noise "
            "given this history, so persistence is near the best one-step forecast any model "
            "can make from it"
        )
    share = strongest_lag_share(acf)
    return line + f": the best single lag explains {100 * share:.0f}% of the next change's variance"


def _metric_line(row: dict[str, Any]) -> list[str]:
    """The model gains on large errors (RMSE) clearly more than on the typical one (MAE)."""
    mae, rmse = row.get("mae_vs_best_baseline"), row.get("rmse_vs_best_baseline")
    if mae is None or rmse is None or rmse > mae - METRIC_GAP:
        return []
    return [
        f"  RMSE {rmse:.3f}x against MAE {mae:.3f}x the better baseline: the model gains on the "
        "large changes (a season's ramps, say) more than on the typical small one (RMSE weighs "
        "large errors, MAE every error alike)"
    ]


def _day_lines(row: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    if not row.get("days"):
        return []
    days = DayBreakdown.model_validate(row["days"])
    worst = [d for d in days.worst if d.excess_mae > 0 and day_ratio(d) is not None]
    if not worst or days.median_ratio is None:
        return []
    listed = ", ".join(f"{d.date} ({d.weekday}) {day_ratio(d):.2f}x" for d in worst)
    lines = [
        f"  {row['model_type']} per test day (MAE / persistence MAE): median day "
        f"{days.median_ratio:.2f}x over {days.days} days; costliest {listed}"
    ]
    first = worst[0]
    if (day_ratio(first) or 0.0) < max(STANDOUT_DAY * days.median_ratio, 1.0):
        return lines
    persistence = next(
        (r for r in summary.get("scores", []) if r["model_type"] == "PERSISTENCE"), None
    )
    without = (
        None
        if persistence is None
        else ratio_without_day(float(row["mae"]), float(persistence["mae"]), days, first)
    )
    holidays = (summary.get("configuration") or {}).get("holidays")
    lines.append(
        f"  {first.date} stands out"
        + (f" (the whole period without it: {without:.3f}x persistence)" if without else "")
        + ": a public holiday, an outage or a data fault?"
        + ("" if holidays else f" If a holiday, {HOLIDAY_HINT}")
    )
    return lines
