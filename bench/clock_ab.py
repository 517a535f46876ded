"""Seasonal lags on the local clock against lags in UTC steps, on real load across a DST change.

simbench's 2016 profiles (after ``make bench-data``) are German clock time: the spring hour is
missing and the autumn hour written twice. Each ``*_pload`` profile is converted to UTC and cut
into four weeks of 15-minute training (2 to 30 October, UTC) and the week after the autumn change
on 30 October as test (from 31 October, UTC). Every profile then goes
through the preprocess and train stages in process twice, with the same UTC file: once as by
default (lags in UTC steps) and once with ``local_clock_lags`` in Europe/Berlin, which changes
only the seasonal lags (the timestamps carry their offset). Per model: the geometric mean of MAE
(local) / MAE (UTC), and on how many profiles the local lags win. One JSON document on stdout.

    .venv/bin/python bench/clock_ab.py                     # LINEAR and LIGHTGBM, 96 profiles
    .venv/bin/python bench/clock_ab.py --models LINEAR --profiles 16
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from flts.bench.in_process import preprocessed, profile_ab_main
from flts.bench.panel_data import SIMBENCH_FILE, _package_dir
from flts.domain.config import ModelType, PreprocessConfig
from flts.stages import train
from flts.stages.contracts import TrainStageConfig

ZONE = "Europe/Berlin"
TRAIN_FROM, TEST_FROM, TEST_TO = "2016-10-02", "2016-10-31", "2016-11-07"


def utc_profiles(count: int) -> pd.DataFrame:
    """``time`` (UTC) and the first ``count`` ``*_pload`` columns, October-November 2016."""
    raw = pd.read_csv(_package_dir("simbench") / SIMBENCH_FILE, sep=";")
    local = pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M")
    utc = local.dt.tz_localize(ZONE, ambiguous="infer").dt.tz_convert("UTC").dt.tz_localize(None)
    columns = [c for c in raw.columns if c.endswith("_pload")][:count]
    frame = raw[columns].assign(time=utc)
    return frame[(frame["time"] >= TRAIN_FROM) & (frame["time"] < TEST_TO)]


def _mae(
    train_csv: bytes, test_csv: bytes, zone: str | None, models: list[str]
) -> dict[str, float] | None:
    """MAE / persistence MAE per model; None when persistence is exact (a load that stays 0)."""
    config = PreprocessConfig(target="load", timezone=zone, local_clock_lags=zone is not None)
    ctx, prep = preprocessed(train_csv, test_csv, config, "clock")
    out = {}
    for model in models:
        event = train.run(prep.training, TrainStageConfig(model_type=ModelType(model)), ctx)
        assert event.baselines is not None
        persistence = event.baselines["PERSISTENCE"].mae
        if persistence == 0:
            return None
        out[model] = event.test_mae / persistence
    return out


def compare(count: int, models: list[str]) -> dict[str, Any]:
    frame = utc_profiles(count)
    stamps = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    per_profile: dict[str, Any] = {}
    skipped = []
    for column in [c for c in frame.columns if c != "time"]:
        series = pd.DataFrame({"time": stamps, "load": frame[column]})
        test = frame["time"] >= TEST_FROM
        train_csv = series[~test].to_csv(index=False).encode()
        test_csv = series[test].to_csv(index=False).encode()
        utc_steps = _mae(train_csv, test_csv, None, models)
        local = _mae(train_csv, test_csv, ZONE, models)
        if utc_steps is None or local is None:
            skipped.append(column)  # constant over the test week: nothing to compare
            continue
        per_profile[column] = {m: [round(utc_steps[m], 4), round(local[m], 4)] for m in models}
    summary: dict[str, Any] = {
        "profiles": len(per_profile),
        "skipped_constant": skipped,
        "train": f"{TRAIN_FROM} to {TEST_FROM} (UTC)",
        "test": f"{TEST_FROM} to {TEST_TO} (UTC), the week after the autumn change",
        "models": {},
        "mae_vs_persistence_utc_then_local": per_profile,
    }
    for model in models:
        ratios = [local / utc for utc, local in (r[model] for r in per_profile.values())]
        summary["models"][model] = {
            "geometric_mean_mae_local_over_utc": round(
                math.exp(sum(math.log(r) for r in ratios) / len(ratios)), 4
            ),
            "local_better": sum(1 for r in ratios if r < 1),
            "utc_better": sum(1 for r in ratios if r > 1),
        }
    return summary


if __name__ == "__main__":
    profile_ab_main(__doc__ or "", compare)
