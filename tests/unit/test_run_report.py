"""The end of `flts run`: table, timings split, plot, and which events belong to a run."""

from __future__ import annotations

import datetime as dt
from datetime import date
from pathlib import Path

import pytest

from flts.domain.calendars import holidays_on
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


def _explained_summary(champion: str | None, ratio: float, **configuration: object) -> dict:
    """A run whose LSTM ties persistence, with one bad test day among five."""
    lstm = {**_row("LSTM", 0.0130, ratio), "mae_vs_best_baseline": ratio}
    lstm["rmse_vs_best_baseline"] = ratio - 0.03
    lstm["days"] = {
        "days": 5,
        "pairs": 480,
        "median_ratio": 0.95,
        "worst": [
            {
                "date": "2016-03-28",
                "weekday": "Mon",
                "pairs": 96,
                "mae": 0.032,
                "persistence_mae": 0.0195,
                "excess_mae": 0.0025,
            },
            {
                "date": "2016-04-02",
                "weekday": "Sat",
                "pairs": 96,
                "mae": 0.004,
                "persistence_mae": 0.0037,
                "excess_mae": 0.00006,
            },
            {
                "date": "2016-03-30",
                "weekday": "Wed",
                "pairs": 96,
                "mae": 0.010,
                "persistence_mae": 0.0110,
                "excess_mae": -0.0002,
            },
        ],
    }
    return {
        "identifier": "r",
        "config_hash": "h" * 16,
        "target": "load",
        "horizon": 1,
        "test_windows": 480,
        "configuration": configuration,
        "diagnosis": {"change_autocorrelation": {"1": -0.09, "96": 0.04, "672": 0.08}},
        "scores": [_row("PERSISTENCE", 0.0131, 1.0, True), lstm],
        "champion": {"model_type": champion, "model_uri": "models:/m-1"} if champion else None,
        "timings": {"total_s": 1.0},
        "artifacts": {"summary_json": "runs/r/summary.json"},
    }


def test_a_small_gain_is_explained_by_white_noise_changes_and_its_costliest_day() -> None:
    from flts.cli.run_cmd import render_summary

    text = render_summary(_explained_summary("LSTM", 0.99))
    assert "why the gain is small (LSTM: MAE 0.990x the better baseline):" in text
    assert "lag 1 step -0.09, 96 steps +0.04, 672 steps +0.08 (all within +-0.2)" in text
    assert "close to white noise" in text
    assert (
        "RMSE 0.960x against MAE 0.990x the better baseline: the model gains on the large" in text
    )
    # Ranked by what each day adds; a day that helps the model is not among the costliest.
    assert "median day 0.95x over 5 days; costliest 2016-03-28 (Mon) 1.64x, 2016-04-02" in text
    assert "2016-03-30" not in text
    # Without Easter Monday: (0.0130*480 - 0.032*96) / (0.0131*480 - 0.0195*96).
    assert "2016-03-28 stands out (the whole period without it: 0.717x persistence)" in text
    # Easter Monday: named, with where it is a public holiday (the holidays package's count).
    countries = holidays_on(date(2016, 3, 28))
    assert countries["DE"] == "Easter Monday"
    assert f": Easter Monday, a public holiday in {len(countries)} countries (" in text
    assert "If it is one where the load is, `--holidays <country code>` gives LightGBM" in text
    with_calendar = render_summary(_explained_summary("LSTM", 0.99, holidays="DE"))
    assert "stands out (the whole period without it: 0.717x persistence): a holiday the " in (
        with_calendar
    )
    assert "--holidays" not in with_calendar


def test_a_standout_day_that_is_a_holiday_nowhere_is_said_to_be_so() -> None:
    from flts.run.explain import explanation

    summary = _explained_summary("LSTM", 0.99)
    summary["scores"][1]["days"]["worst"][0]["date"] = "2016-04-10"
    assert holidays_on(date(2016, 4, 10)) == {}  # a Sunday that is no country's holiday
    line = next(line for line in explanation(summary) if "stands out" in line)
    assert line.endswith(
        "a public holiday in none of the holidays package's countries; an outage, a local "
        "event or a data fault?"
    )


def test_no_explanation_for_a_clear_gain_and_one_for_no_champion() -> None:
    from flts.cli.run_cmd import render_summary
    from flts.run.explain import explanation

    assert explanation(_explained_summary("LSTM", 0.80)) == []
    assert "why the gain" not in render_summary(_explained_summary("LSTM", 0.80))
    lines = explanation(_explained_summary(None, 0.80))  # nothing promoted: always explained
    assert lines[0] == (
        "why no model beat the baselines (closest: LSTM, MAE 0.800x the better baseline):"
    )
    # A longer horizon: the one-step autocorrelation is not the question, the days still are.
    longer = {**_explained_summary(None, 1.2), "horizon": 16}
    assert not any("autocorrelation" in line for line in explanation(longer))
    assert any("costliest" in line for line in explanation(longer))


def test_predictable_changes_are_reported_with_the_share_the_best_lag_explains() -> None:
    from flts.run.explain import explanation

    summary = _explained_summary("LSTM", 0.99)
    summary["diagnosis"] = {"change_autocorrelation": {"1": 0.01, "96": 0.24, "672": 0.35}}
    summary["scores"][1]["rmse_vs_best_baseline"] = 0.98  # no RMSE line: within 0.02 of MAE
    assert not any(line.startswith("  RMSE") for line in explanation(summary))
    acf_line = explanation(summary)[1]
    assert acf_line.endswith(
        "672 steps +0.35: the best single lag explains 12% of the next change's variance"
    )


def test_a_fleet_row_gets_the_short_form() -> None:
    from flts.run.explain import brief_explanation

    summary = _explained_summary("LSTM", 0.99)
    countries = len(holidays_on(date(2016, 3, 28)))
    assert brief_explanation(summary) == (
        f"small gain: 2016-03-28 1.64x (0.717x without), Easter Monday in {countries} countries; "
        "next change ~white noise; gain in large errors (RMSE 0.960x)"
    )
    assert brief_explanation(_explained_summary("LSTM", 0.80)) is None
