"""Training benchmark: each model type on the full bundled data, timed, with test metrics.

The same pass yields the accuracy benchmark (every model against persistence and seasonal
naive on the same test windows), so one ``flts bench train`` writes both result files.
Training runs through the train stage with in-memory doubles: the time is fitting, scoring and
saving the model, not MLflow. Models train one after another on this machine's cores (the
``flts run`` pipeline trains them in parallel processes; see the pipeline benchmark).
"""

from __future__ import annotations

from typing import Any

import torch

from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, make_result
from flts.bench.workload import TrainedModel, Workload, workload
from flts.domain.config import TRAINABLE_MODEL_TYPES, ModelType
from flts.stages import scoring

TARGET_TOTAL_S = 180.0
RNNS = (ModelType.GRU, ModelType.LSTM)


def _train_figures(models: dict[ModelType, TrainedModel]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for mt, m in models.items():
        row: dict[str, Any] = {
            "fit_s": m.fit_s,
            "stage_s": m.stage_s,
            "epochs_run": m.epochs_run,
        }
        if mt in RNNS:
            row["s_per_epoch"] = m.fit_s / max(m.epochs_run, 1)
        row.update(
            {
                "test_rmse": m.event.test_rmse,
                "test_mae": m.event.test_mae,
                "test_mape": m.event.test_mape,
                "test_windows": m.event.test_windows,
            }
        )
        figures[mt.value] = row
    figures["total_fit_s"] = sum(m.fit_s for m in models.values())
    figures["total_stage_s"] = sum(m.stage_s for m in models.values())
    return figures


def _accuracy_figures(models: dict[ModelType, TrainedModel]) -> tuple[dict[str, Any], bool]:
    """Each model's errors and ratios to persistence; baselines once per distinct window set."""
    figures: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    any_beats = False
    for mt, m in models.items():
        ev = m.event
        if not ev.baselines:
            raise RuntimeError(f"{mt.value} training event carries no baseline scores")
        persistence = ev.baselines[scoring.PERSISTENCE]
        row = scoring.score_row(mt.value, ev.run_id, _metrics(ev), persistence)
        any_beats = any_beats or row.beats_persistence
        figures[mt.value] = {
            "mae": row.mae,
            "rmse": row.rmse,
            "mae_vs_persistence": row.mae_vs_persistence,
            "rmse_vs_persistence": row.rmse_vs_persistence,
            "beats_persistence": row.beats_persistence,
            "windows": ev.test_windows,
        }
        for name, base in ev.baselines.items():
            brow = scoring.score_row(name, None, base, persistence)
            label = (
                name
                if ev.test_windows == models[next(iter(models))].event.test_windows
                else (f"{name}@{mt.value}")
            )
            baselines[label] = {
                "mae": brow.mae,
                "rmse": brow.rmse,
                "mae_vs_persistence": brow.mae_vs_persistence,
                "rmse_vs_persistence": brow.rmse_vs_persistence,
                "windows": ev.test_windows,
            }
    figures.update(baselines)
    return figures, any_beats


def _metrics(event: Any) -> Any:
    from flts.domain.messages import BaselineScores

    return BaselineScores(
        rmse=event.test_rmse, mae=event.test_mae, mse=event.test_mse, mape=event.test_mape
    )


def _config(wl: Workload) -> dict[str, Any]:
    return {
        "data": wl.data,
        "preprocess": wl.preprocess_config.model_dump(mode="json", exclude_none=True),
        "train": wl.train_config.model_dump(mode="json", exclude_none=True),
        "torch_threads": torch.get_num_threads(),
        "tracker": "in-memory (models saved to a temp dir)",
    }


def run(options: BenchOptions) -> list[BenchResult]:
    timer = Timer()
    wl = workload(options.quick)
    models = wl.ensure(TRAINABLE_MODEL_TYPES)
    figures = _train_figures(models)
    figures["preprocess_s"] = wl.preprocess_s
    total = figures["total_stage_s"]
    train_result = make_result(
        "train",
        timer,
        quick=options.quick,
        config=_config(wl),
        figures=figures,
        target={
            "description": "GRU, LSTM and Prophet trained (fit, scored, saved) in < 3 min together",
            "max_total_s": TARGET_TOTAL_S,
        },
        target_met=total < TARGET_TOTAL_S,
        notes=[
            "models train one after another; total_stage_s is the sum of stage times",
            "s_per_epoch = fit_s / epochs_run (includes the per-epoch validation pass)",
        ],
    )
    acc_timer = Timer()
    acc_figures, any_beats = _accuracy_figures(models)
    accuracy = make_result(
        "accuracy",
        acc_timer,
        quick=options.quick,
        config=_config(wl),
        figures=acc_figures,
        target={
            "description": "at least one model beats persistence on both MAE and RMSE "
            "(so a champion can be promoted)",
        },
        target_met=any_beats,
        notes=[
            "errors in the target's original units on the test file's windows; each model's "
            "baselines are scored on exactly that model's windows",
            "from the same training pass as the train benchmark",
        ],
    )
    return [train_result, accuracy]
