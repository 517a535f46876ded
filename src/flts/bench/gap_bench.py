"""``flts bench gaps``: does learning around filled-in training values pay?

Preprocessing fills missing steps and empty cells by interpolation so models see a regular grid,
and ``Forecaster.fit`` learns no label from a filled row (``windows.judged_pairs``). This
benchmark measures what that buys. For each seed and panel series it removes one two-day outage
and three six-hour ones from the training file (never from its last fifth, the validation tail;
shorter for a file under three weeks) and empties 2 % of the remaining target cells, then fits
LINEAR and LightGBM three ways and scores them on the same test windows: on the clean file
(``clean``), on the gappy file with the filled rows flagged (``flagged``: what FLTS does) and
with the flags withheld (``withheld``: learning from the interpolations as if observed).
Ratios are model / persistence MAE.

The per-seed cases go to ``gaps-cases.jsonl`` next to the result. ``--quick``: one seed on a
slice of the bundled data, horizon 1. Needs ``make bench-data`` (the panel) unless quick.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, geometric_mean, make_result
from flts.bench.panel_data import Series, panel
from flts.bench.workload import contiguous_quick_data
from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.forecasting.models import create_forecaster
from flts.forecasting.prepare import PreparedData, prepare_datasets
from flts.stages import scoring

log = logging.getLogger(__name__)

SERIES = ("poblesec", "simbench-household", "taylor", "elecdemand")
MODELS = (ModelType.LINEAR, ModelType.LIGHTGBM)
SEEDS = (0, 1, 2, 3, 4)
CASES_FILE = "gaps-cases.jsonl"
QUICK_SERIES = Series("poblesec-quick", "down", 1, contiguous_quick_data, "bundled slice")


def gappy_training_file(train_csv: bytes, target: str, seed: int) -> bytes:
    """The training file with its outages and emptied cells (see the module docstring)."""
    rng = np.random.default_rng(seed)
    frame = pd.read_csv(io.BytesIO(train_csv))
    step = pd.to_datetime(frame.iloc[:, 0]).diff().median()
    per_day = int(pd.Timedelta(days=1) / step)
    # Outages scale down for a file shorter than three weeks (the quick slice holds four days).
    scale = min(1.0, len(frame) / (21 * per_day))
    dropped = np.zeros(len(frame), dtype=bool)
    latest = int(len(frame) * 0.8)
    for days in (2.0, 0.25, 0.25, 0.25):
        length = max(1, int(days * per_day * scale))
        start = int(rng.integers(min(8 * per_day, latest // 4), latest - length))
        dropped[start : start + length] = True
    gappy = frame[~dropped].copy()
    gappy.loc[rng.random(len(gappy)) < 0.02, target] = np.nan
    buffer = io.StringIO()
    gappy.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _mae_ratio(model_type: ModelType, prepared: PreparedData, flags: np.ndarray | None) -> float:
    model = create_forecaster(model_type, prepared.spec, TrainConfig(torch_threads=1))
    model.fit(prepared.train, unobserved=flags)
    scores = scoring.score_on_test(
        model, prepared.test, prepared.spec, prepared.test_context_rows, prepared.test_unobserved
    )
    return scores.model.mae / scores.baselines[scoring.PERSISTENCE].mae


def _cases(series: Series, seed: int, horizons: tuple[int, ...]) -> list[dict[str, Any]]:
    train_csv, test_csv = series.load()
    gappy = gappy_training_file(train_csv, series.target, seed)
    out = []
    for horizon in horizons:
        config = PreprocessConfig(target=series.target, horizon=horizon)
        clean = prepare_datasets(train_csv, test_csv, config, config_hash="0" * 16)
        holed = prepare_datasets(gappy, test_csv, config, config_hash="0" * 16)
        flags = holed.train_unobserved
        assert flags is not None  # prepare_datasets always says which rows it filled
        for model_type in MODELS:
            case = {
                "series": series.name,
                "seed": seed,
                "horizon": horizon,
                "model": model_type.value,
                "filled_training_targets": int(flags.sum()),
                "clean": _mae_ratio(model_type, clean, None),
                "flagged": _mae_ratio(model_type, holed, flags),
                "withheld": _mae_ratio(model_type, holed, None),
            }
            log.info("gaps: %s", case)
            out.append(case)
    return out


def summarise(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """How often and by how much flagging beat withholding, overall and per series/model."""
    by_case: dict[str, list[dict[str, Any]]] = {}
    for case in cases:
        by_case.setdefault(f"{case['series']}@h{case['horizon']}/{case['model']}", []).append(case)
    return {
        "cases": len(cases),
        "flagged_better": sum(c["flagged"] < c["withheld"] for c in cases),
        "flagged_over_withheld_geomean": geometric_mean(
            [c["flagged"] / c["withheld"] for c in cases]
        ),
        "off_clean_geomean": {
            kind: geometric_mean([max(c[kind] / c["clean"], c["clean"] / c[kind]) for c in cases])
            for kind in ("flagged", "withheld")
        },
        "flagged_over_withheld_by_case": {
            name: geometric_mean([c["flagged"] / c["withheld"] for c in group])
            for name, group in by_case.items()
        },
    }


def run(options: BenchOptions) -> list[BenchResult]:
    timer = Timer()
    quick = options.quick
    chosen = [QUICK_SERIES] if quick else [s for s in panel() if s.name in SERIES]
    seeds: tuple[int, ...] = SEEDS[:1] if quick else SEEDS
    long_horizon = not quick
    cases = [
        case
        for seed in seeds
        for series in chosen
        for case in _cases(series, seed, (1, series.long_horizon) if long_horizon else (1,))
    ]
    options.out_dir.mkdir(parents=True, exist_ok=True)
    (options.out_dir / CASES_FILE).write_text("".join(json.dumps(c) + "\n" for c in cases))
    figures = summarise(cases)
    met = 2 * figures["flagged_better"] > len(cases)
    met = met and figures["flagged_over_withheld_geomean"] < 1.0
    return [
        make_result(
            "gaps",
            timer,
            quick=options.quick,
            config={
                "seeds": list(seeds),
                "series": [s.name for s in chosen],
                "models": [m.value for m in MODELS],
                "outages": "one of two days and three of six hours, not in the last fifth of "
                "training; 2 % of the remaining target cells emptied",
            },
            figures=figures,
            target={
                "description": "fitting around filled-in training values (flagged) beats "
                "learning from the interpolations (withheld) in most cases and on the geometric "
                "mean of MAE / persistence MAE"
            },
            target_met=met,
            notes=[
                "ratios: model MAE / persistence MAE on the same test windows; clean: the "
                f"training file without outages; every case in {CASES_FILE}",
                "off_clean_geomean: how far (as a factor) flagged and withheld fits land from "
                "the clean fit",
            ],
        )
    ]
