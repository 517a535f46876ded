"""``flts bench holidays``: what holiday inputs (``--holidays``) do for LightGBM, and why only it.

Full run (``make bench-data`` first): three simbench 15-minute profiles over a whole year
(commercial G1-A and G0-A, household H0-A; German local time, read with ``--timezone
Europe/Berlin``), trained on everything but the last two weeks, tested on those (Christmas), at
one step and one day (96 steps) ahead; and the accuracy panel's three-week commercial slice with
Easter Monday in its test week, at 1 and 16 steps. Each case fits LightGBM and LINEAR without
and with the German calendar (``holidays="DE"``; LINEAR is given the flags through the same
design matrix to show why it does not take them) and reports MAE / persistence MAE and MAE / the
better baseline's. ``--quick``: a synthetic shop closed on weekends and holidays, one year.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, geometric_mean, make_result
from flts.bench.panel_data import SIMBENCH_FILE, _csv, _package_dir, panel
from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.forecasting.models import create_forecaster
from flts.forecasting.models.lag_regression import LinearForecaster
from flts.forecasting.prepare import PreparedData, prepare_datasets
from flts.forecasting.public_holidays import holiday_flags
from flts.stages import scoring

log = logging.getLogger(__name__)

CALENDAR = "DE"
YEAR_PROFILES = ("G1-A_pload", "G0-A_pload", "H0-A_pload")
TEST_DAYS = 14


class _LinearWithHolidays(LinearForecaster):
    """LINEAR given the holiday flags, only to measure what they would do to it."""

    with_holidays = True


Files = tuple[bytes, bytes]


def shop_load(start: str, end: str, seed: int) -> pd.DataFrame:
    """Hourly load of a shop open 8-18 on working days, closed on weekends and holidays."""
    stamps = pd.date_range(start, end, freq="h", inclusive="left")
    seconds = np.asarray((stamps - pd.Timestamp(0)) // pd.Timedelta(seconds=1), np.float64)
    closed = (stamps.dayofweek >= 5) | (holiday_flags(seconds, CALENDAR) > 0)
    open_hours = (stamps.hour >= 8) & (stamps.hour < 18)
    rng = np.random.default_rng(seed)
    load = 20.0 + 80.0 * (open_hours & ~closed) + 3.0 * rng.standard_normal(len(stamps))
    return pd.DataFrame({"time": stamps.strftime("%Y-%m-%d %H:%M"), "load": load.round(3)})


def _shop() -> Files:
    return _csv(shop_load("2017-01-02", "2017-12-01", 0)), _csv(
        shop_load("2017-12-01", "2018-01-01", 1)
    )


def _year(column: str) -> Callable[[], Files]:
    def load() -> Files:
        raw = pd.read_csv(
            _package_dir("simbench") / SIMBENCH_FILE, sep=";", usecols=["time", column]
        )
        frame = raw.rename(columns={column: "load"})
        test_rows = TEST_DAYS * 96
        return _csv(frame.iloc[:-test_rows]), _csv(frame.iloc[-test_rows:])

    return load


def _ratios(model: Any, data: PreparedData) -> dict[str, float]:
    model.fit(data.train)
    scores = scoring.score_on_test(
        model, data.test, data.spec, data.test_context_rows, data.test_unobserved
    )
    best = min(scores.baselines.values(), key=lambda b: b.mae)
    return {
        "mae_vs_persistence": scores.model.mae / scores.baselines[scoring.PERSISTENCE].mae,
        "mae_vs_best_baseline": scores.model.mae / best.mae,
    }


def _case(files: Files, horizon: int, timezone: str | None) -> dict[str, Any]:
    train, test = files
    out: dict[str, Any] = {}
    for code in (None, CALENDAR):
        config = PreprocessConfig(target="load", horizon=horizon, timezone=timezone, holidays=code)
        data = prepare_datasets(train, test, config, config_hash="0" * 16)
        threads = TrainConfig(torch_threads=2)
        key = "with" if code else "without"
        lightgbm = create_forecaster(ModelType.LIGHTGBM, data.spec, threads)
        out[f"lightgbm_{key}"] = _ratios(lightgbm, data)
        out[f"linear_{key}"] = _ratios(_LinearWithHolidays(data.spec, threads), data)
    return out


def _cases(quick: bool) -> dict[str, dict[str, Any]]:
    if quick:
        return {"shop@h12": _case(_shop(), 12, None)}
    cases = {}
    for column in YEAR_PROFILES:
        for horizon in (1, 96):
            name = f"year-{column.removesuffix('_pload')}@h{horizon}"
            cases[name] = _case(_year(column)(), horizon, "Europe/Berlin")
            log.info("holidays: %s %s", name, cases[name])
    slice_ = next(s for s in panel() if s.name == "simbench-commercial")
    for horizon in (1, slice_.long_horizon):
        cases[f"{slice_.name}@h{horizon}"] = _case(slice_.load(), horizon, None)
    return cases


def run(options: BenchOptions) -> list[BenchResult]:
    timer = Timer()
    cases = _cases(options.quick)

    def gain(model: str) -> float:
        key = "mae_vs_persistence"
        return geometric_mean(
            [c[f"{model}_with"][key] / c[f"{model}_without"][key] for c in cases.values()]
        )

    figures: dict[str, Any] = {
        **cases,
        "lightgbm_with_over_without_geomean": gain("lightgbm"),
        "linear_with_over_without_geomean": gain("linear"),
    }
    return [
        make_result(
            "holidays",
            timer,
            quick=options.quick,
            config={
                "calendar": CALENDAR,
                "cases": list(cases),
                "test": f"last {TEST_DAYS} days of 2016 for the year profiles",
            },
            figures=figures,
            target={
                "description": "with the holiday calendar LightGBM's MAE / persistence MAE is "
                "lower on the geometric mean over the cases (the linear model is reported, "
                "not judged: it does not take the flags)"
            },
            target_met=figures["lightgbm_with_over_without_geomean"] < 1.0,
            notes=["LINEAR is given the flags here only to show what they would do to it"],
        )
    ]
