"""Batch inference benchmark: windows/s through the infer stage against a bare model forward.

The stage run is the real ``flts.stages.infer.run`` over the whole processed test file (read
the Parquet claim, order features, scale, window, forecast, write the JSONL log) with an
in-memory object store. The bare forward is the same model's torch module on the same windows,
pre-built and pre-scaled as one float32 tensor, in chunks of the size ``predict`` uses. Both
run alternately in one process; figures are medians.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, make_result, median
from flts.bench.workload import workload
from flts.domain.config import ModelType
from flts.forecasting.dataset import read_processed
from flts.forecasting.models import load_forecaster
from flts.forecasting.models._common import feature_matrix
from flts.forecasting.models.rnn import PREDICT_BATCH, RecurrentForecaster
from flts.forecasting.windows import input_windows
from flts.stages import infer
from flts.stages.contracts import InferRequest, InferStageConfig

TARGET_RATIO = 0.8


def bare_windows(model: RecurrentForecaster, test_bytes: bytes) -> torch.Tensor:
    """Exactly the windows the stage forecasts, scaled, as one contiguous float32 tensor."""
    raw, meta = read_processed(test_bytes)
    frame = infer.ordered_features(raw, model.spec, "test")
    # The leading context rows (training's tail) are history, never origins: as in the stage.
    origins, _scored = infer.inference_origins(len(frame), model, meta.context_rows)
    scaled = model.spec.scaler.transform(feature_matrix(frame, model.spec)).astype(np.float32)
    windows = input_windows(scaled, origins, model.spec.lookback)
    return torch.from_numpy(np.ascontiguousarray(windows))


def bare_forward(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Seconds for the forward over every window (chunked like ``predict``)."""
    net.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(x), PREDICT_BATCH):
            net(x[start : start + PREDICT_BATCH])
    return time.perf_counter() - started


def run(options: BenchOptions) -> list[BenchResult]:
    timer = Timer()
    wl = workload(options.quick, options.extra.get("preprocess_config"))
    trained = wl.ensure((ModelType.GRU,))[ModelType.GRU]
    model = load_forecaster(trained.model_dir)
    if not isinstance(model, RecurrentForecaster):
        raise TypeError(f"expected a recurrent forecaster, got {type(model).__name__}")
    claim = wl.prep.inference
    test_bytes = wl.ctx.store.get_bytes(claim.bucket, claim.object)
    x = bare_windows(model, test_bytes)
    net = model._net  # the bare torch module under the forecaster
    assert net is not None
    request = InferRequest(claim=claim)
    config = InferStageConfig(
        model_uri="memory://bench/model", model_type="GRU", run_id=trained.event.run_id
    )
    repeats = 2 if options.quick else 7
    stage_s: list[float] = []
    predict_s: list[float] = []
    bare_s: list[float] = []
    windows = 0
    bare_forward(net, x)  # warm-up: first call allocates
    for _ in range(repeats):
        started = time.perf_counter()
        result = infer.run(request, config, wl.ctx, model=model)
        stage_s.append(time.perf_counter() - started)
        predict_s.append(result.latency_ms / 1000.0)
        windows = result.windows
        bare_s.append(bare_forward(net, x))
    if windows != len(x):
        raise RuntimeError(f"stage forecast {windows} windows, bare tensor has {len(x)}")
    figures: dict[str, Any] = {
        "windows": windows,
        "stage_windows_per_s": windows / median(stage_s),
        "predict_windows_per_s": windows / median(predict_s),
        "bare_forward_windows_per_s": windows / median(bare_s),
        "ratio_stage_vs_bare": median(bare_s) / median(stage_s),
        "ratio_predict_vs_bare": median(bare_s) / median(predict_s),
        "stage_s_median": median(stage_s),
        "predict_s_median": median(predict_s),
        "bare_forward_s_median": median(bare_s),
    }
    ms = {
        k: 1000 * median(v)
        for k, v in (("stage", stage_s), ("predict", predict_s), ("bare", bare_s))
    }
    figures["time_split_ms"] = {
        "bare_forward": ms["bare"],
        "predict_overhead_scale_window_inverse": ms["predict"] - ms["bare"],
        "stage_io_parquet_jsonl": ms["stage"] - ms["predict"],
    }
    return [
        make_result(
            "batch",
            timer,
            quick=options.quick,
            config={
                "model": "GRU",
                "lookback": model.spec.lookback,
                "horizon": model.spec.horizon,
                "features": len(model.spec.feature_order),
                "chunk": PREDICT_BATCH,
                "repeats": repeats,
                "torch_threads": torch.get_num_threads(),
                "data": wl.data,
            },
            figures=figures,
            target={
                "description": "infer stage reaches >= 80% of the bare forward's windows/s",
                "min_ratio": TARGET_RATIO,
            },
            target_met=figures["ratio_stage_vs_bare"] >= TARGET_RATIO,
            notes=[
                "stage = read Parquet claim + scale + window + forward + JSONL log to the "
                "in-memory store; predict = the forecaster's predict() inside it",
                "time_split_ms: where the stage's median time goes (differences of medians)",
            ],
        )
    ]
