"""Per-series fleet summaries: the ratio rule, the aggregates, the table and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flts.run.fleet_report import (
    fleet_aggregates,
    fleet_summary,
    render_fleet,
    series_ratio,
    series_table,
)
from flts.run.pipeline import RunOptions


def _row(model: str, ratio: float, score: float, baseline: bool = False) -> dict[str, Any]:
    return {
        "model_type": model,
        "is_baseline": baseline,
        "mae_vs_persistence": ratio,
        "composite_score": score,
    }


def _entry(
    sid: str, champion: str | None, rows: list[dict[str, Any]], reason: str | None = None
) -> dict[str, Any]:
    return {
        "series_id": sid,
        "identifier": f"fleet/{sid}",
        "champion": {"model_type": champion} if champion else None,
        "reason": reason,
        "scores": rows,
        "config_hash": "abc" * 10,
    }


ENTRIES = [
    _entry(
        "a",
        "GRU",
        [_row("PERSISTENCE", 1.0, 1.0, True), _row("GRU", 0.8, 0.85), _row("LSTM", 0.7, 0.9)],
    ),
    _entry(
        "b",
        None,
        [_row("PERSISTENCE", 1.0, 1.0, True), _row("GRU", 1.3, 1.2), _row("LSTM", 1.1, 1.05)],
        "no model beat both baselines",
    ),
    _entry("c", "LSTM", [_row("LSTM", 0.9, 0.95)]),
    _entry("flat", None, [], "target 'load' is constant"),
]


def test_ratio_is_the_champions_else_the_best_learned_models() -> None:
    assert series_ratio(ENTRIES[0]) == pytest.approx(0.8)  # the champion, not the lowest MAE
    assert series_ratio(ENTRIES[1]) == pytest.approx(1.1)  # LSTM has the best composite
    assert series_ratio(ENTRIES[3]) is None


def test_aggregates_share_median_and_worst() -> None:
    agg = fleet_aggregates(ENTRIES)
    assert agg["series"] == 4
    assert (agg["with_champion"], agg["without_champion"], agg["scored"]) == (2, 2, 3)
    assert agg["share_beating_persistence"] == pytest.approx(2 / 3)
    assert agg["median_ratio"] == pytest.approx(0.9)
    assert agg["worst_series"] == {"series_id": "b", "ratio": pytest.approx(1.1)}


def test_aggregates_of_a_fleet_with_no_scores() -> None:
    agg = fleet_aggregates([ENTRIES[3]])
    assert agg["share_beating_persistence"] is None
    assert agg["worst_series"] is None


def test_table_names_champion_or_reason() -> None:
    lines = series_table(ENTRIES).splitlines()
    assert lines[0].split()[:4] == ["series", "identifier", "champion", "MAE/pers"]
    assert lines[1].split()[:4] == ["a", "fleet/a", "GRU", "0.800"]
    assert "none" in lines[4]
    assert "constant" in lines[4]


def test_summary_json_and_ratio_plot(tmp_path: Path) -> None:
    base = RunOptions(
        identifier="fleet",
        train_csv=tmp_path,
        test_csv=tmp_path,
        run_dir=tmp_path,
        stack_dir=tmp_path,
    )
    summary = fleet_summary(base, ENTRIES, t0=0.0, t_infra=10.0, t_end=70.0)
    assert [e["series_id"] for e in summary["series"]] == ["a", "b", "c", "flat"]
    assert summary["timings"]["series_per_minute"] == pytest.approx(3.0)
    png = Path(summary["artifacts"]["ratio_png"])
    assert png.read_bytes().startswith(b"\x89PNG")
    text = render_fleet(summary)
    assert "share beating persistence: 67%" in text
    assert "worst series: b (1.100)" in text


def test_equal_ratios_still_plot(tmp_path: Path) -> None:
    from flts.run.fleet_report import plot_ratios

    same = [_entry(s, "GRU", [_row("GRU", 0.88, 0.9)]) for s in "abcd"]
    png = plot_ratios(same, "same", tmp_path / "same.png")
    assert png is not None
    assert png.read_bytes().startswith(b"\x89PNG")
    assert plot_ratios([ENTRIES[3]], "none", tmp_path / "none.png") is None


def test_the_fleet_names_the_series_whose_champion_is_hedged() -> None:
    hedged = _entry("h", "LSTM", [{**_row("LSTM", 0.99, 0.98), "persistence_weights": [0.2]}])
    not_champion = _entry(
        "n",
        "GRU",
        [_row("GRU", 0.9, 0.9), {**_row("LSTM", 0.95, 0.95), "persistence_weights": [0.5]}],
    )
    agg = fleet_aggregates([*ENTRIES, hedged, not_champion])
    assert agg["hedged_champions"] == ["h"]
    assert fleet_aggregates(ENTRIES)["hedged_champions"] == []
    summary = {
        "identifier": "fleet",
        "fleet": agg,
        "series": [*ENTRIES, hedged, not_champion],
        "timings": {"pipeline_s": 1.0, "series_per_minute": None},
        "artifacts": {"summary_json": "runs/fleet/summary.json"},
    }
    assert "champions hedged toward persistence: 1 (h)" in render_fleet(summary)
    plain = {**summary, "fleet": fleet_aggregates(ENTRIES), "series": ENTRIES}
    assert "hedged" not in render_fleet(plain)
