"""A small fleet through the real local stack: each series gets the champion and metrics of a
single-series run of the same data and config, its own registry alias, and /predict answers
with that series' model. LINEAR keeps it to a few minutes.

The fleet runs with ``--global-model`` (issue 13): every series with data also gets a
GLOBAL_LINEAR candidate from one fit across the fleet, eval's promotion record of each series
scores local and global candidates side by side, and the champion is chosen among them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from _flts_cli import run_cli
from flts.chaos.audit import read_run
from flts.datasets import bundled_test_csv, bundled_train_csv
from flts.domain.series import champion_alias
from flts.infra import procs
from flts.infra.procs import free_port
from flts.infra.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CONFIG = json.dumps({"lookback": 30, "season_steps": 360})
SCALES = {"site-a": 1.0, "site b": 0.5}


def _fleet_files(root: Path) -> tuple[Path, Path, dict[str, tuple[Path, Path]]]:
    train = pd.read_csv(bundled_train_csv()).tail(3000)
    test = pd.read_csv(bundled_test_csv()).head(400)
    long_train, long_test, singles = [], [], {}
    for cell, scale in SCALES.items():
        a, b = train.copy(), test.copy()
        numeric = [c for c in a.columns if c != "time"]
        a[numeric], b[numeric] = a[numeric] * scale, b[numeric] * scale
        single = (root / f"{cell}_train.csv", root / f"{cell}_test.csv")
        a.to_csv(single[0], index=False)
        b.to_csv(single[1], index=False)
        singles[cell] = single
        long_train.append(a.assign(cell=cell))
        long_test.append(b.assign(cell=cell))
    flat = train.head(300).assign(cell="flat", down=5.0)
    long_train.append(flat)
    long_test.append(test.head(20).assign(cell="flat", down=5.0))
    paths = root / "fleet.csv", root / "fleet_test.csv"
    pd.concat(long_train).to_csv(paths[0], index=False)
    pd.concat(long_test).to_csv(paths[1], index=False)
    return paths[0], paths[1], singles


def _run(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    argv = procs.flts_command(
        "run", "--models", "LINEAR", "--config", CONFIG, "--data-dir", str(stack.data_dir),
        "--json", "--timeout", "900", *args,
    )  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return run_cli(argv, env, timeout=1200)


def test_fleet_run_matches_single_series_runs(local_stack: LocalStack, tmp_path: Path) -> None:
    train, test, singles = _fleet_files(tmp_path)
    port = free_port()
    fleet = _run(
        local_stack, "--train", str(train), "--test", str(test), "--series-col", "cell",
        "--identifier", "fleet-e2e", "--run-dir", str(tmp_path / "fleet"),
        "--api-port", str(port), "--keep-running", "--global-model",
    )  # fmt: skip
    try:
        assert fleet.returncode == 2, fleet.stderr[-4000:]  # "flat" has no champion
        summary = json.loads(fleet.stdout)
        series = {e["series_id"]: e for e in summary["series"]}
        assert set(series) == {"site-a", "site b", "flat"}
        assert series["site b"]["identifier"] == "fleet-e2e/site_b"
        assert "constant" in series["flat"]["reason"]
        assert summary["fleet"]["with_champion"] == 2
        _check_global(summary, series)
        assert Path(summary["artifacts"]["ratio_png"]).stat().st_size > 1000
        _check_api(port, singles["site b"][0], series)
        bootstrap = local_stack.endpoints().kafka_bootstrap
        for cell in SCALES:
            audit = read_run(bootstrap, series[cell]["identifier"])
            assert list(audit.promotions.values()) == [1], (cell, audit.promotions)
    finally:
        procs.stop_remembered(local_stack.data_dir)
    client = MlflowClient(local_stack.endpoints().mlflow_uri)
    for cell in SCALES:
        entry = series[cell]
        alias = champion_alias(entry["identifier"])
        version = client.get_model_version_by_alias("flts-forecaster", alias)
        assert version.run_id == entry["champion"]["run_id"]
    single_train, single_test = singles["site b"]
    alone = _run(
        local_stack, "--train", str(single_train), "--test", str(single_test),
        "--identifier", "fleet-e2e-single", "--run-dir", str(tmp_path / "single"),
        "--api-port", str(free_port()),
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-4000:]
    single = json.loads(alone.stdout)
    entry = series["site b"]
    fleet_rows = {r["model_type"]: r for r in entry["scores"]}
    if entry["champion"]["model_type"] != "GLOBAL_LINEAR":  # the global candidate may win
        assert entry["champion"]["model_type"] == single["champion"]["model_type"]
    for row in single["scores"]:
        for metric in ("mae", "rmse", "composite_score"):
            assert fleet_rows[row["model_type"]][metric] == pytest.approx(row[metric], rel=1e-9)


def _check_global(summary: dict, series: dict[str, dict]) -> None:
    """Both candidates of each series are in its promotion record, the champion is the one
    the promotion rules rank first, and the table says whether it is global."""
    for cell in SCALES:
        entry = series[cell]
        assert entry["global_model"]["member"] is True
        assert entry["global_model"]["fitted_on_series"] == 2  # "flat" never had a claim
        rows = {r["model_type"]: r for r in entry["scores"]}
        assert {"LINEAR", "GLOBAL_LINEAR", "PERSISTENCE", "SEASONAL_NAIVE"} <= set(rows)
        learned = [r for r in rows.values() if not r["is_baseline"] and r["beats_baselines"]]
        best = min(learned, key=lambda r: (r["composite_score"], r["rmse"], r["model_type"]))
        assert entry["champion"]["model_type"] == best["model_type"]
    agg = summary["fleet"]
    assert agg["global_champions"] + agg["local_champions"] == 2
    print(
        "fleet-e2e champions:",
        {c: series[c]["champion"]["model_type"] for c in SCALES},
        {c: {r["model_type"]: r["composite_score"] for r in series[c]["scores"]} for c in SCALES},
    )


def _check_api(port: int, train_csv: Path, series: dict[str, dict]) -> None:
    base = f"http://127.0.0.1:{port}"
    # LINEAR reads a day of history plus the day-old lags (1,440 rows at 2 minutes).
    window = pd.read_csv(train_csv).tail(1500)
    rows = window.to_dict(orient="records")
    for cell in SCALES:
        ident = series[cell]["identifier"]
        body = {"observations": rows, "identifier": ident}
        reply = httpx.post(f"{base}/predict", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        assert reply.json()["model"]["run_id"] == series[cell]["champion"]["run_id"]
        model = httpx.get(f"{base}/model", params={"identifier": ident}, timeout=30).json()
        assert model["run_id"] == series[cell]["champion"]["run_id"]
    unknown = {"observations": rows, "identifier": "fleet-e2e/flat"}
    assert httpx.post(f"{base}/predict", json=unknown, timeout=30).status_code == 404
    listed = httpx.get(f"{base}/models", timeout=30).json()
    assert {m["identifier"] for m in listed["series"]} == {series[c]["identifier"] for c in SCALES}
