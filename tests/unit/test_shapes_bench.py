"""``flts bench shapes --quick``: monthly files run through preprocessing and every model family
on the baselines' origins (the full run's numbers are in bench/results/shapes.json)."""

from __future__ import annotations

from pathlib import Path

from flts.bench import BenchOptions, runner
from flts.bench.common import SCHEMA_FIELDS


def test_quick_run_fits_every_model_on_month_starts_and_month_ends(tmp_path: Path) -> None:
    (result,) = runner("shapes")(BenchOptions(quick=True, out_dir=tmp_path))
    doc = result.to_json()
    assert set(doc) == set(SCHEMA_FIELDS)
    assert doc["target_met"] is True
    starts, ends = (
        doc["figures"]["synthetic-monthly@h12"],
        doc["figures"]["synthetic-5y-month-ends@h12"],
    )
    assert (starts["step"], ends["step"]) == ("1 month", "1 month (month ends)")
    assert starts["seasonal_periods"] == ends["seasonal_periods"] == [12]
    assert starts["windows"] == ends["windows"] == 24 - 12 + 1  # every test month an origin
    assert ends["lookback"] == 6  # five years: the default lookback gave way
    for case in (starts, ends):
        assert case["same_windows"] is True
        assert set(case["models"]) == {"LINEAR", "LIGHTGBM", "MSTL", "PROPHET", "GRU"}
        assert all(m["mae_vs_persistence"] > 0 for m in case["models"].values())
    # A trend plus a yearly cycle: the linear model beats the same month last year.
    assert starts["models"]["LINEAR"]["mae_vs_best_baseline"] < 1.0
