"""Why a gain is small: errors per test day and the predictability of the next change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _stage_data import make_spec, synthetic_frame
from flts.forecasting import diagnosis
from flts.forecasting.models import create_forecaster
from flts.stages import scoring


def _hourly(days: int, start: str = "2024-03-04 00:00") -> np.ndarray:
    return pd.date_range(start, periods=24 * days, freq="h").to_numpy()[:, None]


def test_the_day_that_costs_the_model_most_comes_first_and_is_left_out_of_the_rest() -> None:
    stamps = _hourly(5)
    actual = np.full((len(stamps), 1), 10.0)
    persistence = actual + 1.0  # persistence is off by 1 every hour
    point = actual + 0.5  # the model by 0.5 ...
    point[48:72] = actual[48:72] + 4.0  # ... except on the third day, by 4
    breakdown = diagnosis.errors_by_day(stamps, actual, point, persistence)
    assert breakdown is not None
    assert (breakdown.days, breakdown.pairs) == (5, 120)
    assert breakdown.median_ratio == pytest.approx(0.5)
    worst = breakdown.worst[0]
    assert (worst.date, worst.weekday, worst.pairs) == ("2024-03-06", "Wed", 24)
    assert (worst.mae, worst.persistence_mae) == (pytest.approx(4.0), pytest.approx(1.0))
    assert worst.excess_mae == pytest.approx(24 * 3.0 / 120)
    assert [d.excess_mae for d in breakdown.worst[1:]] == [pytest.approx(-0.1)] * 2
    model_mae = float(np.abs(point - actual).mean())
    assert diagnosis.ratio_without_day(model_mae, 1.0, breakdown, worst) == pytest.approx(0.5)
    assert diagnosis.day_ratio(worst) == pytest.approx(4.0)


def test_partial_days_at_the_ends_and_unjudged_pairs_are_not_days() -> None:
    stamps = _hourly(5, start="2024-03-04 20:00")  # 4 hours of the first day, 20 of the last
    actual = np.full((len(stamps), 1), 3.0)
    actual[30:40] = np.nan  # filled-in targets are never judged
    breakdown = diagnosis.errors_by_day(stamps, actual, actual + 1.0, actual + 2.0)
    assert breakdown is not None
    # 4 hours of 03-04 are left out; 03-05 .. 03-08, and the 20 hours of 03-09 (at least half
    # a full day) count, 03-06 too with its 14 judged hours.
    assert breakdown.days == 5
    assert breakdown.pairs == 110
    assert all(d.date != "2024-03-04" for d in breakdown.worst)


def test_no_breakdown_for_daily_data_or_too_few_days() -> None:
    daily = pd.date_range("2024-01-01", periods=60, freq="D").to_numpy()[:, None]
    actual = np.ones((60, 1))
    assert diagnosis.errors_by_day(daily, actual, actual, actual + 1) is None
    two_days = _hourly(2)
    actual = np.ones((48, 1))
    assert diagnosis.errors_by_day(two_days, actual, actual, actual + 1) is None


def test_days_are_read_on_the_data_clock_when_it_has_a_zone() -> None:
    # 23:00 UTC is midnight in Berlin (winter): the bad hour moves to the next day there.
    stamps = _hourly(4)
    actual = np.zeros((len(stamps), 1))
    point = actual.copy()
    point[23] = 50.0
    utc = diagnosis.errors_by_day(stamps, actual, point, actual + 1.0)
    berlin = diagnosis.errors_by_day(stamps, actual, point, actual + 1.0, zone="Europe/Berlin")
    assert utc is not None
    assert berlin is not None
    assert (utc.worst[0].date, berlin.worst[0].date) == ("2024-03-04", "2024-03-05")


def test_autocorrelation_of_changes_finds_momentum_and_white_noise() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(size=5000)
    random_walk = np.cumsum(noise)
    acf = diagnosis.change_autocorrelation(random_walk, [1, 24, 168])
    assert set(acf) == {1, 24, 168}
    assert diagnosis.close_to_white_noise(acf)
    changes = np.zeros(5000)
    for t in range(1, 5000):  # AR(1) changes: 0.6 of the last change carries over
        changes[t] = 0.6 * changes[t - 1] + noise[t]
    momentum = diagnosis.change_autocorrelation(np.cumsum(changes), [1, 24])
    assert momentum[1] == pytest.approx(0.6, abs=0.05)
    assert not diagnosis.close_to_white_noise(momentum)
    assert diagnosis.strongest_lag_share(momentum) == pytest.approx(momentum[1] ** 2)


def test_changes_across_filled_in_values_are_left_out() -> None:
    rng = np.random.default_rng(5)
    series = np.cumsum(rng.normal(size=2000))
    filled = np.zeros(2000, dtype=bool)
    for start in range(50, 1950, 100):  # a level shift bridged by a straight-line fill
        series[start + 30 :] += 40.0
        filled[start : start + 30] = True
        series[start : start + 30] = np.linspace(series[start - 1], series[start + 30], 32)[1:-1]
    assert diagnosis.change_autocorrelation(series, [1])[1] > 0.3
    assert abs(diagnosis.change_autocorrelation(series, [1], filled)[1]) < 0.1


def test_constant_or_short_series_get_no_autocorrelation() -> None:
    assert diagnosis.change_autocorrelation(np.ones(500), [1, 24]) == {}
    assert diagnosis.change_autocorrelation(np.arange(20.0), [1]) == {}
    assert not diagnosis.close_to_white_noise({})


def test_score_on_test_reports_the_model_days_against_persistence() -> None:
    frame = synthetic_frame(4 * 720)  # four days of 2-minute rows
    spec = make_spec(frame, horizon=2)
    scores = scoring.score_on_test(create_forecaster("SEASONAL_NAIVE", spec), frame, spec)
    assert scores.days is not None
    assert scores.days.pairs == scores.model.n
    assert scores.days.days == 4
    excess = [d.excess_mae for d in scores.days.worst]
    assert excess == sorted(excess, reverse=True)
    # A homogeneous synthetic series: each day reads like the whole period.
    overall = scores.model.mae / scores.baselines["PERSISTENCE"].mae
    for day in scores.days.worst:
        assert diagnosis.day_ratio(day) == pytest.approx(overall, rel=0.1)


def test_test_days_follow_the_run_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    zones: list[str | None] = []
    real = diagnosis.errors_by_day

    def spy(*args: object, zone: str | None = None, **kwargs: object) -> object:
        zones.append(zone)
        return real(*args, zone=zone, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(diagnosis, "errors_by_day", spy)
    frame = synthetic_frame(4 * 720)
    spec = make_spec(frame, horizon=1)
    model = create_forecaster("SEASONAL_NAIVE", spec)
    for update in ({}, {"clock_zone": "Europe/Berlin"}, {"timezone": "Asia/Tokyo"}):
        scoring.score_on_test(model, frame, spec.model_copy(update=update))
    assert zones == [None, "Europe/Berlin", "Asia/Tokyo"]
