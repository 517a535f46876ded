"""The end of `flts run`: table, timings split, plot, and which events belong to a run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flts.domain.config import PreprocessConfig
from flts.forecasting.spec import ForecastSpec, ScalerParams
from flts.run.flow import phase_timings
from flts.run.monitor import _identifier_of
from flts.run.pipeline import RunOutcome
from flts.run.report import plot_forecast, score_table, timings_table

DAY = "2026-01-01T"


def _row(model: str, mae: float, score: float, baseline: bool = False) -> dict:
    return {
        "model_type": model,
        "mae": mae,
        "rmse": mae * 2,
        "mape": 10.0,
        "mae_vs_persistence": score,
        "rmse_vs_persistence": score,
        "composite_score": score,
        "is_baseline": baseline,
    }


def test_score_table_orders_by_score_and_marks_champion_and_baselines() -> None:
    rows = [
        _row("PERSISTENCE", 4.7e7, 1.0, True),
        _row("GRU", 4.2e7, 0.88),
        _row("LSTM", 4.3e7, 0.9),
    ]
    lines = score_table(rows, "GRU").splitlines()
    assert lines[0].split()[:3] == ["model", "MAE", "RMSE"]
    assert [line.split()[0] for line in lines[2:]] == ["GRU", "LSTM", "PERSISTENCE"]
    assert lines[2].endswith("champion")
    assert lines[4].endswith("baseline")
    assert "4.2000e+07" in lines[2]  # original units, not scaled


def test_phase_timings_split_stage_work_from_overhead() -> None:
    outcome = RunOutcome(
        trained={
            "GRU": {
                "train_start": "2026-01-01T00:00:00.000Z",
                "train_end": "2026-01-01T00:00:20.000Z",
            },
            "LSTM": {
                "train_start": "2026-01-01T00:00:00.000Z",
                "train_end": "2026-01-01T00:00:10.500Z",
            },
        },
        performance={"latency_ms": 500.0},
        preprocess_work_s=1.0,
        marks={"preprocessed": 12.0, "trained": 33.0, "selected": 34.0, "inferred": 35.0},
    )
    timings = phase_timings(outcome, t0=0.0, t_infra=10.0)
    assert timings["training_s"] == {"GRU": 20.0, "LSTM": 10.5}
    assert timings["infrastructure_s"] == 10.0
    assert timings["pipeline_s"] == 25.0
    # stage work = preprocess 1 + slowest training 20 + evaluation 1 + inference 0.5
    assert timings["overhead_s"] == pytest.approx(2.5)
    assert timings["overhead_fraction"] == pytest.approx(2.5 / 35.0)
    assert timings["overhead_fraction_of_pipeline"] == pytest.approx(2.5 / 25.0)
    text = timings_table(timings)
    assert "training_s.GRU" in text
    assert "overhead_fraction" in text


def test_plot_has_both_panels_and_is_written(tmp_path: Path) -> None:
    start = dt.datetime(2018, 3, 1)
    rows = [
        {
            "target_ts": (start + dt.timedelta(minutes=2 * i)).isoformat() + "Z",
            "horizon_step": 1,
            "prediction": 1e8 + i,
            "actual": None if i == 999 else 1e8,
        }
        for i in range(1000)
    ]
    path = plot_forecast(rows, "down", "run", tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"identifier": "run-1", "status": "SUCCESS"}, "run-1"),
        ({"operation": "train", "payload": {"identifier": "run-2"}}, "run-2"),
        ({"operation": "train", "payload": '{"identifier": "run-3"}'}, "run-3"),
        ({"operation": "train", "payload": "not json"}, None),
    ],
)
def test_monitor_finds_the_run_of_events_and_dlq_records(value: dict, expected: str | None) -> None:
    assert _identifier_of(value) == expected


def test_step_table_shows_first_and_last_step_and_is_empty_at_horizon_one() -> None:
    from flts.run.report import shown_steps, step_table

    assert step_table([_row("GRU", 1.0, 0.9)]) == ""
    rows = [
        {**_row("GRU", 2.0, 0.9), "mae_by_step": [float(k) for k in range(1, 49)]},
        {**_row("PERSISTENCE", 3.0, 1.0, True), "mae_by_step": [3.0] * 48},
    ]
    assert shown_steps(48) == [1, 10, 20, 29, 39, 48]
    lines = step_table(rows).splitlines()
    assert lines[0].split() == ["MAE", "at", "step", "1", "10", "20", "29", "39", "48"]
    assert lines[2].split() == ["GRU", "1", "10", "20", "29", "39", "48"]


def test_score_table_says_mape_is_undefined_instead_of_a_number() -> None:
    row = {**_row("GRU", 1.0, 0.9), "mape": None}
    assert "n/a" in score_table([row], None)


def test_configuration_counts_the_filled_in_test_targets_after_the_context() -> None:
    from flts.forecasting.dataset import DatasetMeta
    from flts.run.report import configuration_text, run_configuration

    meta = DatasetMeta.model_construct(
        spec=_spec(),
        rows=30,
        context_rows=10,
        unobserved_target_rows=((8, 12), (20, 23)),  # 2 of the first run are context
        config=PreprocessConfig(),
    )
    config = run_configuration(meta)
    assert config["test_filled_targets"] == 5
    assert "filled-in test targets: 5 (never judged" in configuration_text(config)
    clean = {**config, "test_filled_targets": 0}
    assert "filled-in" not in configuration_text(clean)
    assert config["holidays"] is None
    assert "holidays" not in configuration_text(config)
    assert config["clock_zone"] is None
    assert "clock time" not in configuration_text(config)
    zoned = {**config, "clock_zone": "Europe/Berlin"}
    assert "(at the same Europe/Berlin clock time)" in configuration_text(zoned)
    with_calendar = {**config, "holidays": "ES-CT"}
    assert "  public holidays: ES-CT (LightGBM inputs)" in configuration_text(with_calendar)


def _spec() -> ForecastSpec:
    return ForecastSpec(
        target="y",
        feature_order=("y",),
        lookback=2,
        horizon=1,
        step_seconds=60,
        season_steps=1,
        scaler=ScalerParams(columns=("y",), mean=(0.0,), scale=(1.0,)),
    )


def test_the_run_summary_names_a_model_that_could_not_be_trained() -> None:
    from flts.cli.run_cmd import render_summary

    summary = {
        "identifier": "r",
        "config_hash": "h" * 16,
        "target": "down",
        "horizon": 1,
        "test_windows": 10,
        "configuration": {},
        "scores": [_row("PERSISTENCE", 4.7e7, 1.0, True), _row("LSTM", 4.3e7, 0.9)],
        "champion": {"model_type": "LSTM", "model_uri": "models:/m-1"},
        "failed": {
            "GRU": {
                "error_type": "ForecastError",
                "error_details": "cannot fit",
                "dlq_topic": "DLQ-model-training",
            }
        },
        "timings": {"total_s": 1.0},
        "artifacts": {"summary_json": "runs/r/summary.json"},
    }
    text = render_summary(summary)
    assert "not trained: GRU: ForecastError: cannot fit (claim in DLQ-model-training)" in text
    assert "champion: LSTM" in text
    assert "not trained" not in render_summary({**summary, "failed": {}})


def test_the_run_summary_names_the_models_hedged_toward_persistence() -> None:
    from flts.cli.run_cmd import render_summary

    hedged = {**_row("LSTM", 4.3e7, 0.99), "persistence_weights": [0.15]}
    steps = {**_row("GRU", 4.4e7, 0.995), "persistence_weights": [0.2, 0.6, 1.0]}
    summary = {
        "identifier": "r",
        "config_hash": "h" * 16,
        "target": "load",
        "horizon": 1,
        "test_windows": 10,
        "configuration": {},
        "scores": [_row("PERSISTENCE", 4.7e7, 1.0, True), hedged, steps, _row("LINEAR", 5e7, 1.1)],
        "champion": {"model_type": "LSTM", "model_uri": "models:/m-1"},
        "timings": {"total_s": 1.0},
        "artifacts": {"summary_json": "runs/r/summary.json"},
    }
    text = render_summary(summary)
    note = next(line for line in text.splitlines() if line.startswith("hedged toward persistence"))
    assert note.endswith(": GRU 0.2 .. 1, LSTM 0.15")
    assert "LINEAR" not in note
    plain = [{k: v for k, v in r.items() if k != "persistence_weights"} for r in summary["scores"]]
    assert "hedged" not in render_summary({**summary, "scores": plain})
