"""Prophet specifics: progress and in-sample loss, time zones, target timestamps."""

from __future__ import annotations

import numpy as np
from _synthetic import synthetic_problem

from flts.forecasting.base import EpochProgress
from flts.forecasting.models.prophet_model import ProphetForecaster
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


def test_prophet_forecasts_depend_only_on_the_last_seen_timestamp() -> None:
    p = synthetic_problem(horizon=4)
    model = ProphetForecaster(p.spec)
    model.fit(p.train)
    # Origin 10 of the test frame forecasts the 4 hours after ds[9]; a frame that starts at
    # ds[9] and has 1 row must give the same values from origin 1.
    one_row = p.test.iloc[9:10].reset_index(drop=True)
    np.testing.assert_array_equal(
        model.predict(one_row, np.array([1])), model.predict(p.test, np.array([10]))
    )
    assert (model.predict(p.test, np.array([10])) >= 0).all()
