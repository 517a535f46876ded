"""Hedging toward persistence on and off, over simbench load profiles nobody tuned for.

Every ``*_pload`` profile of simbench (after ``make bench-data``; the fleet bench's slice: three
weeks of 15-minute training from 7 March 2016, one week of test) goes through the preprocess
and train stages in process, once as trained and once with hedging switched off, for the given
model types. Per model: how many profiles it was hedged on, how many it passes the promotion
gate on (MAE and RMSE below the better baseline, composite < 1), and the MAE / persistence of
every hedged profile, before -> after. One JSON document on stdout.

    .venv/bin/python bench/hedge_ab.py                   # LINEAR and LIGHTGBM, 96 profiles
    .venv/bin/python bench/hedge_ab.py --models LINEAR --profiles 16
"""

from __future__ import annotations

import contextlib
from typing import Any
from unittest import mock

from flts.bench.fleet_bench import SERIES_COL, profiles
from flts.bench.in_process import preprocessed, profile_ab_main
from flts.domain.config import ModelType, PreprocessConfig
from flts.domain.messages import BaselineScores
from flts.stages import scoring, train
from flts.stages.contracts import TrainStageConfig


def _train_profile(
    train_csv: bytes, test_csv: bytes, name: str, models: list[str]
) -> dict[str, Any]:
    ctx, prep = preprocessed(train_csv, test_csv, PreprocessConfig(target="load"), name)
    result: dict[str, Any] = {}
    for model in models:
        event = train.run(prep.training, TrainStageConfig(model_type=ModelType(model)), ctx)
        assert event.baselines is not None
        persistence = event.baselines[scoring.PERSISTENCE]
        scores = BaselineScores(rmse=event.test_rmse, mae=event.test_mae, mse=event.test_mse)
        naive = event.baselines[ModelType.SEASONAL_NAIVE.value]
        row = scoring.score_row(model, event.run_id, scores, persistence, naive)
        result[model] = {
            "mae_vs_persistence": row.mae_vs_persistence,
            "rmse_vs_persistence": row.rmse_vs_persistence,
            "gate": row.beats_baselines,
            "persistence_weights": event.persistence_weights,
        }
    return result


def _run(count: int, models: list[str], hedging: bool) -> dict[str, dict[str, Any]]:
    train_frame, test_frame = profiles(count)
    out = {}
    off = mock.patch(
        "flts.forecasting.point_calibration.fit_persistence_weights", return_value=None
    )
    with contextlib.nullcontext() if hedging else off:
        for name in train_frame[SERIES_COL].unique():
            pick = train_frame[SERIES_COL] == name
            train_csv = train_frame[pick].drop(columns=SERIES_COL).to_csv(index=False).encode()
            pick = test_frame[SERIES_COL] == name
            test_csv = test_frame[pick].drop(columns=SERIES_COL).to_csv(index=False).encode()
            out[str(name)] = _train_profile(train_csv, test_csv, str(name), models)
    return out


def compare(count: int, models: list[str]) -> dict[str, Any]:
    hedged, plain = _run(count, models, True), _run(count, models, False)
    summary: dict[str, Any] = {"profiles": len(hedged), "models": {}}
    for model in models:
        changed = {
            name: {
                "weights": runs[model]["persistence_weights"],
                "mae_vs_persistence": [
                    round(plain[name][model]["mae_vs_persistence"], 4),
                    round(runs[model]["mae_vs_persistence"], 4),
                ],
                "rmse_vs_persistence": [
                    round(plain[name][model]["rmse_vs_persistence"], 4),
                    round(runs[model]["rmse_vs_persistence"], 4),
                ],
            }
            for name, runs in hedged.items()
            if runs[model]["persistence_weights"]
        }
        summary["models"][model] = {
            "hedged_profiles": len(changed),
            "gate_passed_without_hedging": sum(1 for r in plain.values() if r[model]["gate"]),
            "gate_passed_with_hedging": sum(1 for r in hedged.values() if r[model]["gate"]),
            "hedged": changed,
        }
    return summary


if __name__ == "__main__":
    profile_ab_main(__doc__ or "", compare)
