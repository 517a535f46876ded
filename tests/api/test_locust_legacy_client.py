"""The existing pipeline's load-test client (as a locust file) runs against a real server with
0 failures: ping, wait for model_ready, legacy bodies with a ``ts`` column, forecasts after the
window."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).parents[1] / "load" / "locustfile.py"


def test_locust_legacy_client_finishes_with_zero_failures(api_url: str, tmp_path: Path) -> None:
    prefix = tmp_path / "locust"
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    cmd += ["-u", "8", "-r", "8", "-t", "4s", "--host", api_url, "--csv", str(prefix)]
    cmd += ["--only-summary", "--loglevel", "WARNING"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with (tmp_path / "locust_stats.csv").open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    predict, total = rows["/predict"], rows["Aggregated"]
    assert int(predict["Request Count"]) > 50
    assert int(total["Failure Count"]) == 0
    assert int(rows["/predict_ping"]["Request Count"]) >= 8
