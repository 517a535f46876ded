"""``flts bench gaps --quick``: the result file follows the benchmark schema and its figures are
the cases it wrote (the full run's numbers are in bench/results/gaps.json)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd

from flts.bench import BenchOptions, runner
from flts.bench.common import SCHEMA_FIELDS
from flts.bench.gap_bench import CASES_FILE, gappy_training_file
from flts.bench.workload import contiguous_quick_data


def test_outages_are_punched_before_the_validation_tail() -> None:
    train_csv, _test = contiguous_quick_data()
    clean = pd.read_csv(io.BytesIO(train_csv))
    gappy = pd.read_csv(io.BytesIO(gappy_training_file(train_csv, "down", seed=3)))
    kept = set(gappy["time"])
    missing = [i for i, t in enumerate(clean["time"]) if t not in kept]
    assert missing
    assert max(missing) < 0.8 * len(clean)
    assert gappy["down"].isna().sum() > 0  # emptied cells
    assert gappy_training_file(train_csv, "down", seed=3) == gappy_training_file(
        train_csv, "down", seed=3
    )


def test_quick_run_writes_a_schema_result_and_its_cases(tmp_path: Path) -> None:
    (result,) = runner("gaps")(BenchOptions(quick=True, out_dir=tmp_path))
    doc = result.to_json()
    assert set(doc) == set(SCHEMA_FIELDS)
    cases = [json.loads(line) for line in (tmp_path / CASES_FILE).read_text().splitlines()]
    assert [c["model"] for c in cases] == ["LINEAR", "LIGHTGBM"]
    assert all(c["filled_training_targets"] > 0 for c in cases)
    figures = doc["figures"]
    assert figures["cases"] == len(cases)
    assert figures["flagged_better"] == sum(c["flagged"] < c["withheld"] for c in cases)
    ratio = math.exp(sum(math.log(c["flagged"] / c["withheld"]) for c in cases) / len(cases))
    assert math.isclose(figures["flagged_over_withheld_geomean"], ratio)
    assert doc["target_met"] == (2 * figures["flagged_better"] > len(cases) and ratio < 1.0)
