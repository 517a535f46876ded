"""The fleet DAG with a global model, run by kfp.local, against the Kafka fleet run of the same
series and config on the same real stack (issue 13, item 6).

Three series as a directory of per-series CSVs: two scaled PobleSec slices, which the global fit
covers, and a third without the ``up`` column, which it must leave out (its inputs differ) while
the series still gets its local model. The two runs use different run identifiers, so each fits
its own models (no run is reused across them); every score row, the champions and who the
global fit covered must agree. LINEAR keeps both runs to about two minutes together.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from _flts_cli import run_cli
from flts.datasets import bundled_test_csv, bundled_train_csv
from flts.infra import procs
from flts.infra.stack import LocalStack
from flts.kfp.local_run import run_fleet_pipeline_locally

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

PREP = {"lookback": 30, "season_steps": 360}
#: series -> (scale of every numeric column, column dropped)
SERIES = {"site-a": (1.0, None), "site-b": (0.5, None), "narrow": (0.7, "up")}
TAG = uuid.uuid4().hex[:6]


def _series_dirs(root: Path) -> tuple[Path, Path]:
    train = pd.read_csv(bundled_train_csv()).tail(3000)
    test = pd.read_csv(bundled_test_csv()).head(400)
    train_dir, test_dir = root / "train", root / "test"
    train_dir.mkdir()
    test_dir.mkdir()
    for name, (scale, dropped) in SERIES.items():
        for frame, folder in ((train.copy(), train_dir), (test.copy(), test_dir)):
            numeric = [c for c in frame.columns if c != "time"]
            frame[numeric] = frame[numeric] * scale
            if dropped:
                frame = frame.drop(columns=[dropped])
            frame.to_csv(folder / f"{name}.csv", index=False)
    return train_dir, test_dir


def _by_series(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(e["identifier"]).split("/", 1)[1]: e for e in entries}


def test_kfp_global_fleet_matches_the_kafka_fleet_run(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    train_dir, test_dir = _series_dirs(tmp_path)
    endpoints = local_stack.endpoints()
    kfp_run = f"kfpfleet{TAG}"
    arguments = {
        "series": [
            {
                "identifier": f"{kfp_run}/{name}",
                "train_csv_uri": str(train_dir / f"{name}.csv"),
                "test_csv_uri": str(test_dir / f"{name}.csv"),
            }
            for name in SERIES
        ],
        "run_identifier": kfp_run,
        "model_types": ["LINEAR"],
        "experiment": "flts",
        "mlflow_tracking_uri": endpoints.mlflow_uri,
        "s3_endpoint_url": endpoints.s3_endpoint,
        **PREP,
    }
    fleet = run_fleet_pipeline_locally(
        arguments, tmp_path / "kfp-root", env=endpoints.service_env(), global_model=True
    )
    kfp = _by_series(fleet["series"])

    argv = procs.flts_command(
        "run", "--train", str(train_dir), "--test", str(test_dir), "--models", "LINEAR",
        "--config", json.dumps(PREP), "--global-model", "--identifier", f"kafkafleet{TAG}",
        "--data-dir", str(local_stack.data_dir), "--run-dir", str(tmp_path / "kafka"),
        "--json", "--timeout", "600",
    )  # fmt: skip
    done = run_cli(argv, {**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    kafka = _by_series(json.loads(done.stdout)["series"])

    assert set(kfp) == set(kafka) == set(SERIES)
    for name in SERIES:
        k_rows = {r["model_type"]: r for r in kafka[name]["scores"]}
        f_rows = {r["model_type"]: r for r in kfp[name]["scores"]}
        assert set(f_rows) == set(k_rows), name
        for model_type, row in k_rows.items():
            for metric in ("mae", "rmse", "composite_score"):
                assert f_rows[model_type][metric] == pytest.approx(row[metric], rel=1e-9)
        assert kfp[name]["champion"]["model_type"] == kafka[name]["champion"]["model_type"]
        assert kfp[name]["global_member"] is kafka[name]["global_model"]["member"]
    assert {"GLOBAL_LINEAR", "LINEAR"} <= set(r["model_type"] for r in kfp["site-a"]["scores"])
    assert "GLOBAL_LINEAR" not in {r["model_type"] for r in kfp["narrow"]["scores"]}
    assert "differ" in kfp["narrow"]["global_reason"]
    assert kfp["narrow"]["global_reason"] == kafka["narrow"]["global_model"]["excluded"]
