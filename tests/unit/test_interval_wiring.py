"""Prediction intervals through the product: train stage, test scores, evaluation rows, batch
JSONL, run report and configuration (the core maths is in test_intervals.py)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from _stage_data import Setup
from flts.cli.run_cmd import _levels
from flts.domain.config import ModelType, TrainConfig
from flts.domain.messages import IntervalScore
from flts.errors import ConfigError
from flts.forecasting.intervals import ConformalIntervals, interval_metrics
from flts.forecasting.models import create_forecaster
from flts.run.report import _plot_bands, interval_table, plot_forecast
from flts.settings import TrainSettings, load_settings
from flts.stages import evaluate, infer, scoring, train
from flts.stages.bands import replayed_bands
from flts.stages.contracts import (
    EvaluateRequest,
    InferRequest,
    InferStageConfig,
    TrainStageConfig,
)
from flts.stages.ports import BUCKET_INFERENCE_LOGS


def _bands(horizon: int, levels: tuple[int, ...] = (80, 95)) -> ConformalIntervals:
    """Known offsets: level L's band is [-L, +2L] around the point at every step."""
    return ConformalIntervals(
        levels=levels,
        lower_offsets=tuple(tuple(-float(lv) for _ in range(horizon)) for lv in levels),
        upper_offsets=tuple(tuple(2.0 * lv for _ in range(horizon)) for lv in levels),
        calibration_windows=50,
    )


# -- train stage ---------------------------------------------------------------------------------
def test_train_calibrates_scores_logs_and_saves_intervals() -> None:
    s = Setup()
    result = train.run(s.claim, TrainStageConfig(model_type=ModelType.PERSISTENCE), s.ctx)

    assert result.test_intervals is not None
    assert [i.level for i in result.test_intervals] == [80, 95]
    cov80, cov95 = (i.coverage for i in result.test_intervals)
    assert 0.0 < cov80 <= cov95 <= 1.0
    assert result.test_intervals[0].mean_width < result.test_intervals[1].mean_width
    run = s.tracker.runs[result.run_id]
    for level, score in zip((80, 95), result.test_intervals, strict=True):
        assert run.metrics[f"coverage_{level}"] == pytest.approx(score.coverage)
        assert run.metrics[f"interval_width_{level}"] == pytest.approx(score.mean_width)
        assert run.metrics[f"winkler_{level}"] == pytest.approx(score.winkler)
    report = json.loads(run.artifacts[train.SCORE_REPORT])
    assert [i["level"] for i in report["scores"]["intervals"]] == [80, 95]
    assert report["intervals"]["levels"] == [80, 95]
    # The logged model carries the same bands (intervals.json next to the model).
    reloaded = s.tracker.load_forecaster(result.model_uri or "")
    assert reloaded.intervals is not None
    assert reloaded.intervals.model_dump(mode="json") == report["intervals"]
    # The test scores are those of the saved bands around the saved model's forecasts.
    origins = scoring.scoring_origins(len(s.test), s.spec, [reloaded])
    point = reloaded.predict(s.test, origins)
    actual = np.stack([s.test["down"].to_numpy()[o : o + s.spec.horizon] for o in origins])
    # A load (never below 0): the bands are in units of each origin's recent level.
    assert reloaded.intervals.scale_window is not None
    scales = reloaded.intervals.scales_at(s.test["down"].to_numpy(), origins)
    lower, upper = reloaded.intervals.bands(point, scales)[80]
    assert interval_metrics(actual, lower, upper, 80).coverage == pytest.approx(cov80)
    with pytest.raises(ValueError, match="level"):
        reloaded.intervals.bands(point)


def test_replayed_claim_rebuilds_the_interval_scores_from_the_run() -> None:
    s = Setup()
    config = TrainStageConfig(model_type=ModelType.PERSISTENCE)
    first = train.run(s.claim, config, s.ctx)
    second = train.run(s.claim, config, s.ctx)
    assert second.test_intervals == first.test_intervals


def test_configured_levels_are_calibrated() -> None:
    s = Setup()
    config = TrainStageConfig(
        model_type=ModelType.SEASONAL_NAIVE, train=TrainConfig(interval_levels=(90, 50))
    )
    result = train.run(s.claim, config, s.ctx)
    assert result.test_intervals is not None
    assert [i.level for i in result.test_intervals] == [50, 90]
    assert "coverage_80" not in s.tracker.runs[result.run_id].metrics


def test_too_little_training_data_trains_without_intervals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup(train_rows=18)  # 16 calibration origins: fewer than the 20 intervals need
    with caplog.at_level(logging.WARNING, logger="flts.stages"):
        result = train.run(s.claim, TrainStageConfig(model_type=ModelType.PERSISTENCE), s.ctx)
    assert result.status == "SUCCESS"
    assert result.test_intervals is None
    assert "test_intervals" not in result.to_wire()
    assert "no prediction intervals" in caplog.text
    assert s.tracker.load_forecaster(result.model_uri or "").intervals is None
    assert not any(k.startswith("coverage_") for k in s.tracker.runs[result.run_id].metrics)


# -- scoring and evaluation ----------------------------------------------------------------------
def test_test_scores_use_the_bands_around_the_scored_forecasts() -> None:
    s = Setup(horizon=2)
    model = create_forecaster(ModelType.PERSISTENCE, s.spec)
    assert scoring.score_on_test(model, s.test, s.spec).intervals == ()
    model.intervals = _bands(2)
    scores = scoring.score_on_test(model, s.test, s.spec)
    origins = scoring.scoring_origins(len(s.test), s.spec, [model])
    y = s.test["down"].to_numpy()
    actual = np.stack([y[o : o + 2] for o in origins])
    point = np.repeat(y[origins - 1][:, None], 2, axis=1)  # persistence: the last value
    inside = (actual >= point - 80) & (actual <= point + 160)
    got = scores.intervals[0]
    assert got.level == 80
    assert got.coverage == pytest.approx(inside.mean())
    assert got.mean_width == pytest.approx(240.0)
    assert scores.intervals[1].mean_width == pytest.approx(3 * 95.0)


def test_interval_metrics_round_trip_through_tracker_names() -> None:
    scores = [
        IntervalScore(level=80, coverage=0.81, mean_width=10.0, winkler=14.0),
        IntervalScore(level=95, coverage=0.94, mean_width=20.0, winkler=25.0),
    ]
    metrics = scoring.interval_metric_values(scores)
    assert metrics["coverage_80"] == 0.81
    assert metrics["winkler_95"] == 25.0
    assert scoring.intervals_from_metrics({**metrics, "test_rmse": 1.0}) == scores
    assert scoring.intervals_from_metrics({"test_rmse": 1.0}) is None


def test_evaluation_rows_carry_each_models_interval_scores() -> None:
    s = Setup()
    trained = train.run(s.claim, TrainStageConfig(model_type=ModelType.SEASONAL_NAIVE), s.ctx)
    gru = trained.model_copy(update={"model_type": "GRU"})
    bare = gru.model_copy(update={"model_type": "LSTM", "run_id": "r2", "test_intervals": None})
    request = EvaluateRequest(identifier="i", config_hash=gru.config_hash, results=(gru, bare))
    rows = {
        r.model_type: r for r in evaluate.build_report(request, {"GRU": gru, "LSTM": bare}).rows
    }
    assert gru.test_intervals
    assert rows["GRU"].intervals == tuple(gru.test_intervals)
    assert rows["LSTM"].intervals == ()
    assert rows["PERSISTENCE"].intervals == ()


def test_evaluation_rows_carry_the_weights_of_a_hedged_model() -> None:
    s = Setup()
    trained = train.run(s.claim, TrainStageConfig(model_type=ModelType.SEASONAL_NAIVE), s.ctx)
    gru = trained.model_copy(update={"model_type": "GRU", "persistence_weights": [0.3]})
    lstm = gru.model_copy(
        update={"model_type": "LSTM", "run_id": "r2", "persistence_weights": None}
    )
    request = EvaluateRequest(identifier="i", config_hash=gru.config_hash, results=(gru, lstm))
    report = evaluate.build_report(request, {"GRU": gru, "LSTM": lstm})
    rows = {r.model_type: r for r in report.rows}
    assert rows["GRU"].persistence_weights == (0.3,)
    assert rows["LSTM"].persistence_weights == ()
    assert "persistence_weights" not in lstm.to_wire()


# -- batch JSONL ---------------------------------------------------------------------------------
def _jsonl(
    model_intervals: ConformalIntervals | None, band_adaptation: float = 0.0
) -> list[dict[str, object]]:
    s = Setup(test_rows=60, horizon=2)
    model = create_forecaster(ModelType.SEASONAL_NAIVE, s.spec)
    model.intervals = model_intervals
    config = InferStageConfig(
        model_uri="memory://none/model",
        model_type="SN",
        run_id="r1",
        band_adaptation=band_adaptation,
    )
    out = infer.run(InferRequest(claim=s.inference_claim), config, s.ctx, model=model)
    body = s.store.get_bytes(BUCKET_INFERENCE_LOGS, out.output_object)
    return [orjson.loads(line) for line in body.splitlines()]


def test_jsonl_lines_carry_bands_when_the_model_has_intervals() -> None:
    lines = _jsonl(_bands(2))
    for line in lines:
        p = line["prediction"]
        assert isinstance(p, float)
        assert line["lower_80"] == pytest.approx(p - 80)
        assert line["upper_80"] == pytest.approx(p + 160)
        assert line["lower_95"] == pytest.approx(p - 95)
        assert line["upper_95"] == pytest.approx(p + 190)
    assert list(lines[0])[:9] == [
        "target_ts",
        "origin_ts",
        "horizon_step",
        "prediction",
        "actual",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
    ]


def test_jsonl_bands_adapt_by_default_to_the_misses_revealed_before_each_origin() -> None:
    """Bands calibrated much too narrow: the served ones widen origin after origin, as the live
    loop's would, and cover more; the first origin has seen nothing and serves the static band;
    each band depends only on actuals before its origin."""
    assert InferStageConfig(model_uri="m", model_type="SN", run_id="r").band_adaptation > 0
    narrow = ConformalIntervals(
        levels=(80,),
        lower_offsets=((-0.5, -0.5),),  # the errors' median is about 4
        upper_offsets=((0.5, 0.5),),
        calibration_windows=50,
    )
    static, adapted = _jsonl(narrow), _jsonl(narrow, band_adaptation=0.05)
    width = [float(ln["upper_80"]) - float(ln["lower_80"]) for ln in adapted]  # type: ignore[arg-type]
    assert width[0] == pytest.approx(1.0)
    assert width[-1] > 3 * width[0]  # every revealed actual missed: the scale grew

    def covered(lines: list[dict[str, object]]) -> int:
        return sum(
            ln["actual"] is not None and ln["lower_80"] <= ln["actual"] <= ln["upper_80"]  # type: ignore[operator]
            for ln in lines
        )

    assert covered(adapted) > covered(static)
    expected = replayed_bands(
        narrow,
        np.array([ln["prediction"] for ln in adapted], dtype=float).reshape(-1, 2),
        np.array(
            [np.nan if ln["actual"] is None else ln["actual"] for ln in adapted], dtype=float
        ).reshape(-1, 2),
        0.05,
    )
    # Consecutive origins except the last (the future forecast), so the replay above matches
    # every line but the last pair.
    np.testing.assert_allclose(
        [ln["upper_80"] for ln in adapted[:-2]], expected[80][1][:-1].ravel()
    )


def test_jsonl_lines_are_unchanged_without_intervals() -> None:
    lines = _jsonl(None)
    assert not any(k.startswith(("lower_", "upper_")) for k in lines[0])


# -- run report ----------------------------------------------------------------------------------
def _rows(n: int, bands: bool) -> list[dict[str, object]]:
    start = dt.datetime(2018, 3, 1)
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {
            "target_ts": (start + dt.timedelta(minutes=2 * i)).isoformat() + "Z",
            "horizon_step": 1,
            "prediction": 1e8 + 1e6 * np.sin(i / 50),
            "actual": 1e8,
        }
        if bands:
            row.update({"lower_80": 0.99e8, "upper_80": 1.01e8})
            row.update({"lower_95": 0.98e8, "upper_95": 1.02e8})
        rows.append(row)
    return rows


def test_plot_shades_the_bands_of_the_log(tmp_path: Path) -> None:
    banded = _rows(600, bands=True)
    assert sorted(_plot_bands(banded)) == [80, 95]
    assert _plot_bands(_rows(10, bands=False)) == {}
    with_bands = plot_forecast(banded, "down", "run", tmp_path / "bands.png")
    without = plot_forecast(_rows(600, bands=False), "down", "run", tmp_path / "plain.png")
    assert with_bands.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert with_bands.read_bytes() != without.read_bytes()


def test_interval_table_lists_each_level_of_each_model() -> None:
    rows: list[dict[str, Any]] = [
        {"model_type": "PERSISTENCE", "is_baseline": True},
        {
            "model_type": "GRU",
            "intervals": [
                {
                    "level": 80,
                    "coverage": 0.812,
                    "mean_width": 2.5e7,
                    "winkler": 3.1e7,
                    "adaptive_coverage": 0.799,
                    "adaptive_mean_width": 2.9e7,
                },
                {"level": 95, "coverage": 0.951, "mean_width": 4e7, "winkler": 4.4e7},
            ],
        },
    ]
    table = interval_table(rows).splitlines()
    assert table[0].split() == [
        "intervals",
        "level",
        "static",
        "coverage",
        "%",
        "mean",
        "width",
        "Winkler",
        "adapted",
        "coverage",
        "%",
        "adapted",
        "width",
    ]
    assert table[2].split()[:3] == ["GRU", "80%", "81.2"]
    assert table[2].split()[-2:] == ["79.9", "2.9000e+07"]
    assert table[3].split()[:3] == ["GRU", "95%", "95.1"]
    assert table[3].split()[-2:] == ["-", "-"]  # scored before the adapted figures existed
    assert "PERSISTENCE" not in interval_table(rows)
    assert interval_table(rows[:1]) == ""


# -- configuration -------------------------------------------------------------------------------
def test_levels_are_validated_everywhere() -> None:
    assert TrainConfig().interval_levels == (80, 95)
    assert TrainConfig(interval_levels=(95, 80, 95)).interval_levels == (80, 95)
    with pytest.raises(ValueError, match="strictly between 0 and 100"):
        TrainConfig(interval_levels=(80, 100))
    with pytest.raises(ValueError, match="strictly between 0 and 100"):
        TrainConfig(interval_levels=())
    assert _levels("95, 50") == (50, 95)
    with pytest.raises(argparse.ArgumentTypeError, match="between 1 and 99"):
        _levels("0,80")
    with pytest.raises(argparse.ArgumentTypeError, match="percentages"):
        _levels("80%")


def test_interval_levels_env_reaches_train_config(monkeypatch: pytest.MonkeyPatch) -> None:
    required = {"CONSUMER_GROUP_ID": "g", "MODEL_TYPE": "GRU"}
    monkeypatch.setenv("INTERVAL_LEVELS", "90,50")
    assert load_settings(TrainSettings, **required).train_config().interval_levels == (50, 90)
    monkeypatch.setenv("INTERVAL_LEVELS", "90,x")
    with pytest.raises(ConfigError, match="INTERVAL_LEVELS is invalid"):
        load_settings(TrainSettings, **required)
    monkeypatch.setenv("INTERVAL_LEVELS", "90,100")
    with pytest.raises(ConfigError, match="interval_levels must be percentages"):
        load_settings(TrainSettings, **required).train_config()
    monkeypatch.delenv("INTERVAL_LEVELS")
    assert load_settings(TrainSettings, **required).train_config().interval_levels == (80, 95)


# -- accuracy bench ------------------------------------------------------------------------------
def test_coverage_summary_names_the_worst_case_and_the_target() -> None:
    from flts.bench.accuracy_bench import coverage_summary

    def model(c80: float, c95: float) -> dict[str, Any]:
        return {
            "intervals": {
                "80": {"coverage": c80, "mean_width": 1.0, "winkler": 2.0},
                "95": {"coverage": c95, "mean_width": 2.0, "winkler": 3.0},
            }
        }

    results: dict[str, Any] = {
        "a@h1": {"models": {"GRU": model(0.82, 0.94), "MSTL": {"error": "boom"}}},
        "a@h30": {"models": {"GRU": model(0.71, 0.96)}},
    }
    summary = coverage_summary(results)
    level80 = summary["levels"]["80"]
    assert level80["worst"]["case"] == "a@h30/GRU"
    assert level80["worst"]["gap"] == pytest.approx(-0.09)
    assert (level80["within_tolerance"], level80["cases"]) == (1, 2)
    assert summary["levels"]["95"]["within_tolerance"] == 2
    assert summary["target_met"] is False
    results["a@h30"]["models"]["GRU"] = model(0.78, 0.96)
    assert coverage_summary(results)["target_met"] is True
    assert coverage_summary({})["target_met"] is False


def test_accuracy_bench_series_and_models_are_checked() -> None:
    from flts.bench import BenchOptions
    from flts.bench.accuracy_bench import _chosen_models, _chosen_series

    options = BenchOptions(extra={"series": "taylor", "models": "linear,mstl"})
    assert [s.name for s in _chosen_series(options)] == ["taylor"]
    assert _chosen_models(options) == (ModelType.LINEAR, ModelType.MSTL)
    with pytest.raises(ConfigError, match="nope"):
        _chosen_series(BenchOptions(extra={"series": "nope"}))
    with pytest.raises(ConfigError, match="not trainable"):
        _chosen_models(BenchOptions(extra={"models": "PERSISTENCE"}))


def test_flts_run_passes_interval_levels_to_every_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flts.run.pipeline import PipelineRunner, RunOptions

    spawned: dict[str, dict[str, str]] = {}

    def record(self: PipelineRunner, spec: str, log: str, *args: str, **env: str) -> None:
        spawned[log] = env

    monkeypatch.setattr(PipelineRunner, "_spawn", record)
    monkeypatch.setattr(PipelineRunner, "_skip_earlier_runs", lambda self: None)  # no broker
    models = (ModelType.GRU, ModelType.MSTL)
    options = RunOptions("id", tmp_path, tmp_path, tmp_path, tmp_path, models=models)
    PipelineRunner(options, {}, None).start_services()  # type: ignore[arg-type]
    assert "INTERVAL_LEVELS" not in spawned["train-gru"]  # the trainer's default, 80 and 95
    options.interval_levels = (50, 90)
    PipelineRunner(options, {}, None).start_services()  # type: ignore[arg-type]
    assert spawned["train-gru"]["INTERVAL_LEVELS"] == "50,90"
    assert spawned["train-mstl"]["INTERVAL_LEVELS"] == "50,90"
    assert "INTERVAL_LEVELS" not in spawned["inference"]


def test_a_local_run_skips_earlier_records_for_the_groups_of_its_own_trainers(
    tmp_path: Path,
) -> None:
    from flts.run.pipeline import PipelineRunner, RunOptions

    models = (ModelType.GRU, ModelType.MSTL)
    options = RunOptions("id", tmp_path, tmp_path, tmp_path, tmp_path, models=models)
    runner = PipelineRunner(options, {}, None)  # type: ignore[arg-type]
    assert runner._trainer_subscriptions() == [
        ("train-gru", "training-data"),
        ("nonml-mstl", "training-data"),
    ]
    options.global_model = True
    assert runner._trainer_subscriptions()[-1] == ("train-global", "global-training-requests")
    options.service_env = {"CONSUMER_TOPIC": "training-data-eu"}  # as the services read it
    assert [topic for _, topic in runner._trainer_subscriptions()] == ["training-data-eu"] * 3
