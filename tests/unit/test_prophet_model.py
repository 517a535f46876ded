"""Prophet specifics: progress and in-sample loss, time zones, target timestamps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _synthetic import synthetic_problem

from flts.forecasting.base import EpochProgress
from flts.forecasting.models.prophet_model import (
    CORRECTION_LAGS,
    META_FILE,
    ProphetForecaster,
)
from flts.forecasting.spec import TIME_COLUMN


def test_prophet_reports_one_step_and_accepts_time_zones() -> None:
    p = synthetic_problem(horizon=3)
    events: list[EpochProgress] = []
    model = ProphetForecaster(p.spec)
    summary = model.fit(p.train, progress=events.append)
    assert [(e.epoch, e.epochs) for e in events] == [(1, 1)]
    assert summary.train_loss is not None
    assert 0.0 <= summary.train_loss < 1.0
    origins = np.array([24, 50, len(p.test)])
    naive = model.predict(p.test, origins)
    aware = p.test.copy()
    aware[TIME_COLUMN] = aware[TIME_COLUMN].dt.tz_localize("UTC").dt.tz_convert("Europe/Madrid")
    np.testing.assert_array_equal(model.predict(aware, origins), naive)


def test_prophet_forecasts_depend_only_on_the_last_rows_before_the_origin() -> None:
    p = synthetic_problem(horizon=4)
    model = ProphetForecaster(p.spec)
    model.fit(p.train)
    # Origin 30 of the test frame reads the `min_history` rows before it (its recent errors and
    # its error one day before each target time); a frame holding only those rows must give
    # the same values from its last origin.
    need = model.min_history
    assert need == max(CORRECTION_LAGS, p.spec.season_steps)
    tail = p.test.iloc[30 - need : 30].reset_index(drop=True)
    np.testing.assert_array_equal(
        model.predict(tail, np.array([need])), model.predict(p.test, np.array([30]))
    )
    assert (model.predict(p.test, np.array([30])) >= 0).all()


def test_prophet_uses_what_happened_just_before_the_origin() -> None:
    """A jump in the last rows moves the next forecast: Prophet alone would ignore it."""
    p = synthetic_problem(horizon=4)
    # Load that wanders away from the daily cycle (a random walk), as real load does: Prophet's
    # errors then persist, and the correction learns to carry them forward.
    walk = np.cumsum(np.random.default_rng(3).normal(0.0, 4e6, len(p.train)))
    train = p.train.assign(down=p.train["down"] + walk)
    model = ProphetForecaster(p.spec)
    model.fit(train)
    jumped = p.test.copy()
    jumped.loc[27:29, "down"] += 5e7
    before, after = model.predict(p.test, np.array([30])), model.predict(jumped, np.array([30]))
    assert after[0, 0] - before[0, 0] > 2e7
    # The correction decays with the horizon instead of persisting the jump for ever.
    assert (after - before)[0, -1] < (after - before)[0, 0]


def test_prophet_trend_stays_flat_far_past_the_training_span() -> None:
    """Two years after a few weeks of training, the forecast stays at the training level."""
    p = synthetic_problem(horizon=2)
    model = ProphetForecaster(p.spec)
    model.fit(p.train)
    far = p.test.copy()
    far[TIME_COLUMN] = far[TIME_COLUMN] + np.timedelta64(730, "D")
    level = float(p.train["down"].mean())
    forecast = model.predict(far, np.arange(model.min_history, len(far) - 1))
    assert 0.7 * level < float(forecast.mean()) < 1.3 * level


def test_with_a_weekly_period_the_mean_of_two_corrections_is_applied_and_saved(
    tmp_path: Path,
) -> None:
    p = synthetic_problem(n_rows=1100, n_train=900, horizon=3)
    spec = p.spec.model_copy(update={"seasonal_periods": (24, 168)})
    model = ProphetForecaster(spec)
    model.fit(p.train)
    daily, both = model._corrections
    assert (daily.seasons, both.seasons) == ((24,), (24, 168))
    assert model.min_history == 168
    origins = np.array([168, 170, 199])
    mean = model.predict(p.test, origins)
    alone = []
    for correction in (daily, both):
        model._corrections = (correction,)
        alone.append(model.predict(p.test, origins))
    model._corrections = (daily, both)
    np.testing.assert_allclose(mean, np.clip(np.mean(alone, axis=0), 0.0, None), rtol=1e-12)
    model.save(tmp_path / "m")
    reloaded = ProphetForecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(reloaded.predict(p.test, origins), mean)
    assert [c.seasons for c in reloaded._corrections] == [(24,), (24, 168)]


def test_a_model_saved_with_one_daily_correction_still_loads_and_predicts_the_same(
    tmp_path: Path,
) -> None:
    """The meta file of models saved before the weekly term: one "correction" with "season"."""
    p = synthetic_problem(horizon=3)
    model = ProphetForecaster(p.spec)
    model.fit(p.train)
    (daily,) = model._corrections
    origins = np.array([30, 60])
    expected = model.predict(p.test, origins)
    model.save(tmp_path / "m")
    meta_path = tmp_path / "m" / META_FILE
    meta = json.loads(meta_path.read_text())
    old = {"coef": daily.coef.tolist(), "intercept": daily.intercept.tolist(), "season": 24}
    meta.pop("corrections")
    meta["correction"] = old
    meta_path.write_text(json.dumps(meta))
    reloaded = ProphetForecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(reloaded.predict(p.test, origins), expected)
