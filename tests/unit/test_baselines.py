"""Persistence and seasonal naive: exact values, horizons longer than a season, no peeking."""

from __future__ import annotations

import numpy as np
from _synthetic import bundled_problem, synthetic_problem

from flts.domain.config import ModelType
from flts.forecasting.models import create_forecaster
from flts.forecasting.windows import evaluation_origins


def test_persistence_repeats_the_last_observed_value() -> None:
    p = synthetic_problem(horizon=3)
    model = create_forecaster(ModelType.PERSISTENCE, p.spec)
    assert model.fit(p.train).seconds == 0.0
    assert model.min_history == 1
    down = p.test["down"].to_numpy()
    pred = model.predict(p.test, np.array([1, 10, len(down)]))
    np.testing.assert_array_equal(pred[:, 0], down[[0, 9, len(down) - 1]])
    assert (pred == pred[:, :1]).all()


def test_seasonal_naive_reads_one_season_before_each_target() -> None:
    p = synthetic_problem(horizon=5)
    season = p.spec.season_steps
    model = create_forecaster(ModelType.SEASONAL_NAIVE, p.spec)
    assert model.fit(p.train).seconds == 0.0
    assert model.min_history == season
    down = p.test["down"].to_numpy()
    origins = np.array([season, season + 7, len(down)])
    pred = model.predict(p.test, origins)
    for row, origin in enumerate(origins):
        np.testing.assert_array_equal(pred[row], down[origin - season : origin - season + 5])


def test_seasonal_naive_longer_than_a_season_repeats_the_last_season_before_the_origin() -> None:
    p = synthetic_problem(n_rows=600, horizon=50)
    season = p.spec.season_steps  # 24 < 50
    model = create_forecaster(ModelType.SEASONAL_NAIVE, p.spec)
    down = p.test["down"].to_numpy()
    origins = np.array([season, season + 11, len(down)])
    pred = model.predict(p.test, origins)
    for row, origin in enumerate(origins):
        for k in range(50):  # k whole seasons back: the latest same-phase value before origin
            back = origin + k - season * (k // season + 1)
            assert back < origin
            assert pred[row, k] == down[back]


def test_seasonal_naive_never_reads_at_or_after_the_origin() -> None:
    p = synthetic_problem(n_rows=600, horizon=60)
    model = create_forecaster(ModelType.SEASONAL_NAIVE, p.spec)
    origin = 100
    before = model.predict(p.test, np.array([origin]))
    changed = p.test.copy()
    changed.loc[origin:, "down"] = -1.0  # poison the origin row and everything after it
    np.testing.assert_array_equal(model.predict(changed, np.array([origin])), before)


def test_baselines_on_bundled_data() -> None:
    """The scores the trained models must beat; persistence is the stronger one at one step."""
    p = bundled_problem()
    origins = evaluation_origins(len(p.test), p.spec)
    down = p.test["down"].to_numpy()
    rmse = {}
    for model_type in (ModelType.PERSISTENCE, ModelType.SEASONAL_NAIVE):
        model = create_forecaster(model_type, p.spec)
        model.fit(p.train)
        pred = model.predict(p.test, origins)[:, 0]
        rmse[model_type] = float(np.sqrt(np.mean((pred - down[origins]) ** 2)))
    assert 5e7 < rmse[ModelType.PERSISTENCE] < rmse[ModelType.SEASONAL_NAIVE]
