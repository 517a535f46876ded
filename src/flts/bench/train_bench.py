"""Training benchmark: each trainable model type on the full bundled data, timed, with test metrics.

``fit_s`` per model is the fit alone; the accuracy panel (``flts bench accuracy``) compares
the models across several series.
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
    wl = workload(options.quick, options.extra.get("preprocess_config"))
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
            "description": "every trainable model (fit, scored, saved) in < 3 min together",
            "max_total_s": TARGET_TOTAL_S,
        },
        target_met=total < TARGET_TOTAL_S,
        notes=[
            "models train one after another; total_stage_s is the sum of stage times",
            "s_per_epoch = fit_s / epochs_run (includes the per-epoch validation pass)",
        ],
    )
    return [train_result]
