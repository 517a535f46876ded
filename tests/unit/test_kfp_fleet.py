"""The fleet KFP pipeline: the single-series DAG inside a ParallelFor over series, collected."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _rawcsv import csv_pair
from test_kfp_compile import load_ir
from test_kfp_glue import NO_ENDPOINTS, FakeArtifact, _train

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker
from flts.errors import DataValidationError
from flts.kfp import fleet_glue, glue
from flts.kfp.fleet_pipeline import (
    FLEET_GLOBAL_PIPELINE_NAME,
    PREPROCESS_LOOP,
    SERIES_LOOP,
    compile_fleet_pipeline,
)
from flts.stages.ports import StageContext


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
    fleet_glue.collect_fleet_task(selections=inputs, fleet=out)
    fleet = json.loads(Path(out.path).read_text())["series"]
    assert [e["identifier"] for e in fleet] == ["f/a", "f/b"]
    assert fleet[0]["champion"]["model_type"] == "LINEAR"
    assert fleet[0]["reason"] is None
    assert fleet[1]["reason"] == "no model beat both baselines"
    assert out.metadata == {"series": 2, "with_champion": 1, "without_champion": 1}


@pytest.mark.parametrize(
    ("extra", "committed_name"),
    [([], "flts-fleet-pipeline.yaml"), (["--global-model"], "flts-fleet-global-pipeline.yaml")],
)
def test_flts_kfp_compile_fleet_matches_the_committed_ir(
    tmp_path: Path, extra: list[str], committed_name: str
) -> None:
    from flts.cli import main

    out = tmp_path / "fleet.yaml"
    assert main(["kfp", "compile", "--fleet", *extra, "-o", str(out)]) == 0
    committed = Path(__file__).resolve().parents[2] / "pipelines" / committed_name
    assert committed.is_file(), f"pipelines/{committed_name} is missing"
    assert out.read_text() == committed.read_text(), (
        f"the committed IR {committed_name} is stale: regenerate it with `make kfp-compile`"
    )
    assert SERIES_LOOP in out.read_text()


def test_global_fleet_ir_fits_once_between_the_two_series_loops(tmp_path: Path) -> None:
    ir = load_ir(
        compile_fleet_pipeline(tmp_path / "g.yaml", image="img.example/flts:t", global_model=True)
    )
    assert ir["pipelineInfo"]["name"] == FLEET_GLOBAL_PIPELINE_NAME
    tasks = ir["root"]["dag"]["tasks"]
    names = {t["taskInfo"]["name"]: k for k, t in tasks.items()}
    assert {PREPROCESS_LOOP, SERIES_LOOP, "train-global", "collect-with-global"} <= set(names)
    fit = tasks[names["train-global"]]
    claims = fit["inputs"]["artifacts"]["training_data"]["taskOutputArtifact"]
    assert claims["producerTask"] == names[PREPROCESS_LOOP]
    series_loop = tasks[names[SERIES_LOOP]]
    assert names["train-global"] in series_loop["dependentTasks"]
    inner = ir["components"][series_loop["componentRef"]["name"]]["dag"]["tasks"]
    pick = next(t for t in inner.values() if t["taskInfo"]["name"] == "global-candidate")
    single = next(t for t in inner.values() if t["taskInfo"]["name"] != "global-candidate")
    handed = single["inputs"]["parameters"]["global_candidate"]["taskOutputParameter"]
    assert handed["producerTask"] == next(k for k, t in inner.items() if t is pick)
    assert "platforms" in ir


def _fleet_claims(ctx: StageContext, tmp_path: Path) -> dict[str, FakeArtifact]:
    """Processed data of three series; "narrow" lacks a covariate the others have."""
    claims = {}
    for name, dropped in (("f/a", None), ("f/b", None), ("f/narrow", "up")):
        train_csv, test_csv = csv_pair(train_rows=300, test_rows=40)
        folder = tmp_path / name.replace("/", "_")
        folder.mkdir()
        for raw, file in ((train_csv, "train.csv"), (test_csv, "test.csv")):
            frame = pd.read_csv(io.BytesIO(raw))
            frame = frame.drop(columns=[dropped]) if dropped else frame
            frame.to_csv(folder / file, index=False)
        training, inference = FakeArtifact(str(folder / "td")), FakeArtifact(str(folder / "id"))
        glue.preprocess_task(
            train_csv_uri=str(folder / "train.csv"),
            test_csv_uri=str(folder / "test.csv"),
            identifier=name,
            lookback=5,
            horizon=2,
            target="down",
            time_col="time",
            season_steps=10,
            training_data=training,
            inference_data=inference,
            ctx=ctx,
            **NO_ENDPOINTS,
        )
        claims[name] = training
    return claims


def test_global_fit_shares_reach_each_series_evaluation(tmp_path: Path) -> None:
    ctx = StageContext(store=InMemoryObjectStore(), tracker=InMemoryTracker())
    claims = _fleet_claims(ctx, tmp_path)
    fitted = FakeArtifact(str(tmp_path / "global"))
    fleet_glue.train_global_task(
        training_data=list(claims.values()),
        run_identifier="f",
        experiment="glue",
        global_models=fitted,
        ctx=ctx,
        **NO_ENDPOINTS,
    )
    assert fitted.json()["done"]["identifier"] == "f/_global"
    assert fitted.metadata == {"members": 2, "excluded": 1}
    shares = {
        name: json.loads(fleet_glue.global_candidate_task(global_models=fitted, identifier=name))
        for name in [*claims, "f/never-offered"]
    }
    assert shares["f/a"]["trained"]["model_type"] == "GLOBAL_LINEAR"
    assert shares["f/a"]["trained"]["identifier"] == "f/a"
    assert "differ" in shares["f/narrow"]["excluded"]
    assert shares["f/never-offered"] == {"excluded": "the global fit was not offered this series"}

    selections = []
    for name, training in claims.items():
        local = _train(ctx, training, "LINEAR", tmp_path / f"{name.replace('/', '_')}-linear")
        selection = FakeArtifact(str(tmp_path / f"{name.replace('/', '_')}-sel"))
        glue.evaluate_task(
            models=[local],
            model_types=["LINEAR"],
            registered_model_name="glue-model",
            alias="champion",
            selection=selection,
            global_candidate=json.dumps(shares[name]),
            ctx=ctx,
            **NO_ENDPOINTS,
        )
        selections.append(selection)
        rows = {r["model_type"] for r in selection.json()["report"]["rows"]}
        assert ("GLOBAL_LINEAR" in rows) is (name != "f/narrow"), (name, rows)
    record = selections[2].json()["promotion_record"]
    written = json.loads(ctx.store.get_bytes(record["bucket"], record["key"]))
    assert "differ" in written["waived"]["GLOBAL_LINEAR"]

    out = FakeArtifact(str(tmp_path / "fleet.json"))
    fleet_glue.collect_fleet_task(selections=selections, fleet=out, global_models=fitted)
    entries = {e["identifier"]: e for e in out.json()["series"]}
    assert entries["f/a"]["global_member"] is True
    assert entries["f/a"]["global_reason"] is None
    assert entries["f/narrow"]["global_member"] is False
    assert "differ" in entries["f/narrow"]["global_reason"]


def test_a_malformed_global_candidate_is_refused_by_name(tmp_path: Path) -> None:
    ctx = StageContext(store=InMemoryObjectStore(), tracker=InMemoryTracker())
    for bad in ("not json", "[1]", '{"other": 1}'):
        with pytest.raises(DataValidationError, match="global_candidate must be"):
            glue.evaluate_task(
                models=[],
                model_types=["LINEAR"],
                registered_model_name="m",
                alias="champion",
                selection=FakeArtifact(str(tmp_path / "sel")),
                global_candidate=bad,
                ctx=ctx,
                **NO_ENDPOINTS,
            )
