"""`flts bench all --quick` (what `make bench-quick` runs in CI): every benchmark runs on a
shrunk workload and writes a well-formed result file plus RESULTS.md. Timings are not
asserted: this machine is shared and noisy; the full run's figures live in bench/results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flts.bench import all_benchmarks
from flts.bench.common import SCHEMA_FIELDS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXPECTED = {*all_benchmarks(), "api_prophet"}


@pytest.mark.timeout(900)
def test_bench_all_quick_writes_results_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "flts", "bench", "all", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    files = {p.stem: p for p in out.glob("*.json")}
    assert set(files) == EXPECTED
    for name, path in files.items():
        doc = json.loads(path.read_text())
        assert list(doc) == list(SCHEMA_FIELDS), name
        assert doc["benchmark"] == name
        assert doc["quick"] is True
        assert isinstance(doc["target_met"], bool)
        assert doc["target"]["description"]
        assert doc["figures"], f"{name} recorded no figures"
        assert doc["machine"]["cores"] >= 1
    markdown = (tmp_path / "RESULTS.md").read_text()
    for name in EXPECTED:
        assert f"## {name}" in markdown
    # Quick results never land in the committed directory.
    committed = Path(__file__).resolve().parents[2] / "bench" / "results"
    for path in committed.glob("*.json"):
        assert json.loads(path.read_text())["quick"] is False
