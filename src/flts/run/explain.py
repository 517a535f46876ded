"""When the champion gains little over the free baselines (or nothing is promoted), say why.

A user whose model only ties persistence wants to know whether to tune, add data, or accept it.
Three readings answer most cases (``flts.forecasting.diagnosis``): whether the series' next
change is predictable from its own past at all, whether the gain is only in the large errors
(RMSE) and not the typical one (MAE), and whether one test day (a holiday, an outage) carries the
loss. ``flts run`` prints them under the score table (:func:`explanation`) and keeps them in the
summary JSON; a fleet run puts the short form in each series' row (:func:`brief_explanation`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flts.domain.calendars import holidays_on
from flts.domain.config import ModelType
from flts.domain.messages import DayBreakdown, DayError
from flts.forecasting.diagnosis import (
    WHITE_NOISE_ACF,
    close_to_white_noise,
    day_ratio,
    ratio_without_day,
    strongest_lag_share,
)
from flts.run.report import champion_or_best_row

#: The champion's MAE / the better baseline's above this is a "small gain" worth explaining.
SMALL_GAIN = 0.95
#: A worst day whose ratio is this many times the median day's stands out.
STANDOUT_DAY = 1.5
#: RMSE's ratio this much below MAE's: the gain is in the large errors.
METRIC_GAP = 0.02
#: Country codes shown for a standout day that is a public holiday somewhere.
EXAMPLE_COUNTRIES = 8
HOLIDAY_HINT = "`--holidays <country code>` gives LightGBM the calendar"


@dataclass(frozen=True)
class Findings:
    """What explains a small gain of ``model`` (the champion, else the best learned model)."""

    model: str
    #: MAE / the better baseline's MAE.
    gain: float
    #: Whether ``model`` is the run's champion (False: nothing was promoted).
    promoted: bool = True
    #: Training's one-step changes: lag (steps) -> autocorrelation; empty beyond horizon 1.
    autocorrelation: dict[int, float] = field(default_factory=dict)
    #: (RMSE, MAE) ratios to the better baseline when RMSE's is clearly the lower.
    large_errors: tuple[float, float] | None = None
    days: DayBreakdown | None = None
    #: The costliest days that cost the model anything, worst first.
    costliest: tuple[DayError, ...] = ()
    #: The first of them when it stands out, and the period's ratio without it.
    standout: DayError | None = None
    without_standout: float | None = None
    holidays_named: bool = False
    #: Country code -> holiday name where the standout day is a public holiday (looked up only
    #: when the run names no calendar; empty: a holiday nowhere).
    standout_holidays: dict[str, str] = field(default_factory=dict)

    @property
    def standout_holiday(self) -> str | None:
        """The standout day's most common holiday name across those countries; None: none."""
        names = Counter(self.standout_holidays.values()).most_common(1)
        return names[0][0] if names else None


def findings(summary: dict[str, Any]) -> Findings | None:
    """The readings of a run summary, or None when its champion clearly beats the baselines
    (or nothing was learned)."""
    subject = champion_or_best_row(summary)
    if subject is None:
        return None
    champion = (summary.get("champion") or {}).get("model_type")
    gain = float(subject.get("mae_vs_best_baseline", 1.0))
    if champion is not None and gain <= SMALL_GAIN:
        return None
    one_step = int(summary.get("horizon") or 1) == 1
    acf = (summary.get("diagnosis") or {}).get("change_autocorrelation") or {}
    rmse = subject.get("rmse_vs_best_baseline")
    days = DayBreakdown.model_validate(subject["days"]) if subject.get("days") else None
    costliest = (
        ()
        if days is None or days.median_ratio is None
        else tuple(d for d in days.worst if d.excess_mae > 0 and day_ratio(d) is not None)
    )
    standout = _standout(days, costliest)
    named = bool((summary.get("configuration") or {}).get("holidays"))
    return Findings(
        model=str(subject["model_type"]),
        gain=gain,
        promoted=champion is not None,
        autocorrelation={int(k): float(v) for k, v in acf.items()} if one_step else {},
        large_errors=(
            (float(rmse), gain) if rmse is not None and rmse <= gain - METRIC_GAP else None
        ),
        days=days,
        costliest=costliest,
        standout=standout,
        without_standout=(
            None if standout is None or days is None else _without(subject, summary, days, standout)
        ),
        holidays_named=named,
        standout_holidays=(
            {} if standout is None or named else holidays_on(date.fromisoformat(standout.date))
        ),
    )


def _standout(days: DayBreakdown | None, costliest: tuple[DayError, ...]) -> DayError | None:
    """The costliest day when its ratio is at least :data:`STANDOUT_DAY` times the median
    day's (and above 1: it lost to persistence that day)."""
    if days is None or days.median_ratio is None or not costliest:
        return None
    ratio = day_ratio(costliest[0]) or 0.0
    return costliest[0] if ratio >= max(STANDOUT_DAY * days.median_ratio, 1.0) else None


def _without(
    row: dict[str, Any], summary: dict[str, Any], days: DayBreakdown, day: DayError
) -> float | None:
    persistence = next(
        (r for r in summary.get("scores", []) if r["model_type"] == ModelType.PERSISTENCE.value),
        None,
    )
    if persistence is None:
        return None
    return ratio_without_day(float(row["mae"]), float(persistence["mae"]), days, day)


def explanation(summary: dict[str, Any]) -> list[str]:
    """Lines explaining a small gain, or [] when the champion clearly beats the baselines."""
    found = findings(summary)
    if found is None:
        return []
    lines = []
    if found.autocorrelation:
        lines.append(_acf_line(found.autocorrelation))
    if found.large_errors is not None:
        rmse, mae = found.large_errors
        lines.append(
            f"  RMSE {rmse:.3f}x against MAE {mae:.3f}x the better baseline: the model gains on "
            "the large changes (a season's ramps, say) more than on the typical small one (RMSE "
            "weighs large errors, MAE every error alike)"
        )
    if found.costliest and found.days is not None and found.days.median_ratio is not None:
        listed = ", ".join(f"{d.date} ({d.weekday}) {day_ratio(d):.2f}x" for d in found.costliest)
        lines.append(
            f"  {found.model} per test day (MAE / persistence MAE): median day "
            f"{found.days.median_ratio:.2f}x over {found.days.days} days; costliest {listed}"
        )
    if found.standout is not None:
        without = found.without_standout
        lines.append(
            f"  {found.standout.date} stands out"
            + (f" (the whole period without it: {without:.3f}x persistence)" if without else "")
            + _standout_reading(found)
        )
    if not lines:
        return []
    heading = (
        f"why no model beat the baselines (closest: {found.model}, MAE {found.gain:.3f}x the "
        "better baseline):"
        if found.promoted is False
        else f"why the gain is small ({found.model}: MAE {found.gain:.3f}x the better baseline):"
    )
    return [heading, *lines]


def _standout_reading(found: Findings) -> str:
    """What the standout day may have been: a holiday somewhere (named, with where), else an
    outage or a data fault."""
    if found.holidays_named:
        return ": a holiday the calendar does not name, an outage or a data fault?"
    countries = found.standout_holidays
    if not countries:
        return (
            ": a public holiday in none of the holidays package's countries; an outage, a "
            "local event or a data fault?"
        )
    name = found.standout_holiday
    shown = ", ".join(sorted(countries)[:EXAMPLE_COUNTRIES])
    more = ", ..." if len(countries) > EXAMPLE_COUNTRIES else ""
    return (
        f": {name}, a public holiday in {len(countries)} countries ({shown}{more}). If it is "
        f"one where the load is, {HOLIDAY_HINT}"
    )


def brief_explanation(summary: dict[str, Any]) -> str | None:
    """The same in a few words, for one row of a fleet table; None when there is nothing."""
    found = findings(summary)
    if found is None:
        return None
    parts = []
    if found.standout is not None:
        ratio = day_ratio(found.standout) or 0.0
        without = found.without_standout
        holiday = found.standout_holiday
        parts.append(
            f"{found.standout.date} {ratio:.2f}x"
            + (f" ({without:.3f}x without)" if without is not None else "")
            + (f", {holiday} in {len(found.standout_holidays)} countries" if holiday else "")
        )
    if found.autocorrelation and close_to_white_noise(found.autocorrelation):
        parts.append("next change ~white noise")
    if found.large_errors is not None:
        parts.append(f"gain in large errors (RMSE {found.large_errors[0]:.3f}x)")
    return "small gain: " + "; ".join(parts) if parts else None


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
