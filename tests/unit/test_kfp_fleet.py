"""The fleet KFP pipeline: the single-series DAG inside a ParallelFor over series, collected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_kfp_compile import load_ir

from flts.kfp import glue
from flts.kfp.fleet_pipeline import SERIES_LOOP, compile_fleet_pipeline


def test_series_fan_out_runs_the_whole_single_series_dag_and_is_collected(tmp_path: Path) -> None:
    ir = load_ir(compile_fleet_pipeline(tmp_path / "fleet.yaml", image="img.example/flts:t"))
    tasks = ir["root"]["dag"]["tasks"]
    (loop_key,) = [k for k, t in tasks.items() if t["taskInfo"]["name"] == SERIES_LOOP]
    loop = tasks[loop_key]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("series")
    assert loop["iteratorPolicy"]["parallelismLimit"] == 4
    inner = ir["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    (single,) = inner.values()
    single_dag = ir["components"][single["componentRef"]["name"]]["dag"]["tasks"]
    assert {"preprocess", "evaluate", "infer"} <= set(single_dag)
    selections = tasks["collect"]["inputs"]["artifacts"]["selections"]["taskOutputArtifact"]
    assert selections["producerTask"] == loop_key
    assert ir["components"]["comp-collect"]["inputDefinitions"]["artifacts"]["selections"][
        "isArtifactList"
    ]
    assert "platforms" in ir  # every task still gets the credentials Secret


class _Artifact:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.metadata: dict[str, Any] = {}


def test_collect_lists_each_series_champion_or_reason(tmp_path: Path) -> None:
    inputs = []
    for name, selected, reason in (
        ("f/b", None, "no model beat both baselines"),
        ("f/a", {"model_type": "LINEAR", "run_id": "r1"}, "LINEAR has the lowest score"),
    ):
        path = tmp_path / name.replace("/", "_")
        report = {"identifier": name, "config_hash": "h", "reason": reason, "rows": []}
        path.write_text(json.dumps({"selected": selected, "report": report}))
        inputs.append(_Artifact(path))
    out = _Artifact(tmp_path / "fleet.json")
    glue.collect_fleet_task(selections=inputs, fleet=out)
    fleet = json.loads(Path(out.path).read_text())["series"]
    assert [e["identifier"] for e in fleet] == ["f/a", "f/b"]
    assert fleet[0]["champion"]["model_type"] == "LINEAR"
    assert fleet[0]["reason"] is None
    assert fleet[1]["reason"] == "no model beat both baselines"
    assert out.metadata == {"series": 2, "with_champion": 1, "without_champion": 1}


def test_flts_kfp_compile_fleet_matches_the_committed_ir(tmp_path: Path) -> None:
    from flts.cli import main

    out = tmp_path / "fleet.yaml"
    assert main(["kfp", "compile", "--fleet", "-o", str(out)]) == 0
    committed = Path(__file__).resolve().parents[2] / "pipelines" / "flts-fleet-pipeline.yaml"
    assert committed.is_file(), "pipelines/flts-fleet-pipeline.yaml is missing"
    assert out.read_text() == committed.read_text(), (
        "the committed fleet IR is stale: regenerate it with `flts kfp compile --fleet`"
    )
    assert SERIES_LOOP in out.read_text()
