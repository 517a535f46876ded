"""The compiled KFP pipeline: shape of the DAG, components that really run FLTS code, no drift
from the committed IR, the CLI's compile/submit paths, and the Dockerfile's essentials."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from flts.cli import main
from flts.errors import ConfigError
from flts.kfp import glue
from flts.kfp.components import COMPONENT_FUNCTIONS
from flts.kfp.pipeline import (
    CREDENTIALS_SECRET,
    TASK_NAMES,
    TASK_RESOURCES,
    TRAINERS_LOOP,
    build_pipeline,
    compile_pipeline,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "pipelines" / "flts-pipeline.yaml"


def load_ir(path: Path) -> dict[str, Any]:
    """The pipeline spec, with the platform spec (a second YAML document when the pipeline has
    Kubernetes settings) under ``platforms``."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert 1 <= len(docs) <= 2
    merged: dict[str, Any] = dict(docs[0])
    if len(docs) == 2:
        assert set(docs[1]) == {"platforms"}
        merged["platforms"] = docs[1]["platforms"]
    return merged


@pytest.fixture(scope="module")
def ir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = compile_pipeline(tmp_path_factory.mktemp("kfp") / "p.yaml", image="img.example/flts:t")
    return load_ir(path)


def _component_function(source: str, name: str) -> ast.FunctionDef:
    tree = ast.parse(source)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert len(funcs) == 1, f"embedded source does not define {name}()"
    return funcs[0]


def test_every_stage_is_a_component_and_a_task(ir: dict[str, Any]) -> None:
    assert set(ir["components"]) >= {f"comp-{n}" for n in TASK_NAMES}
    tasks = ir["root"]["dag"]["tasks"]
    assert {"preprocess", "evaluate", "infer"} <= set(tasks)
    assert ir["pipelineInfo"]["name"] == "flts-pipeline"
    # Every task opted out of KFP caching (the stages are idempotent themselves).
    all_tasks = dict(tasks)
    for comp in ir["components"].values():
        all_tasks.update(comp.get("dag", {}).get("tasks", {}))
    assert not any(t.get("cachingOptions", {}).get("enableCache") for t in all_tasks.values())


def test_trainers_fan_out_over_model_types_and_are_collected(ir: dict[str, Any]) -> None:
    tasks = ir["root"]["dag"]["tasks"]
    loops = [(k, t) for k, t in tasks.items() if t["taskInfo"]["name"] == TRAINERS_LOOP]
    assert len(loops) == 1
    loop_key, loop = loops[0]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("model_types")
    assert loop["dependentTasks"] == ["preprocess"]
    loop_dag = ir["components"][loop["componentRef"]["name"]]["dag"]
    assert set(loop_dag["tasks"]) == {"train"}
    models_in = tasks["evaluate"]["inputs"]["artifacts"]["models"]["taskOutputArtifact"]
    assert models_in["producerTask"] == loop_key
    evaluate_inputs = ir["components"]["comp-evaluate"]["inputDefinitions"]["artifacts"]
    assert evaluate_inputs["models"]["isArtifactList"] is True
    infer_inputs = tasks["infer"]["inputs"]["artifacts"]
    assert infer_inputs["inference_data"]["taskOutputArtifact"]["producerTask"] == "preprocess"
    assert infer_inputs["selection"]["taskOutputArtifact"]["producerTask"] == "evaluate"


def test_outputs_are_typed_artifacts(ir: dict[str, Any]) -> None:
    def outs(name: str) -> dict[str, str]:
        arts = ir["components"][f"comp-{name}"]["outputDefinitions"]["artifacts"]
        return {k: v["artifactType"]["schemaTitle"] for k, v in arts.items()}

    assert outs("preprocess") == {
        "training_data": "system.Dataset",
        "inference_data": "system.Dataset",
    }
    assert outs("train") == {"model": "system.Model"}
    assert outs("evaluate") == {"selection": "system.Artifact"}
    assert outs("infer") == {"predictions": "system.Artifact"}


def test_no_credentials_among_pipeline_parameters(ir: dict[str, Any]) -> None:
    params = set(ir["root"]["inputDefinitions"]["parameters"])
    assert {"mlflow_tracking_uri", "s3_endpoint_url", "model_types", "epochs"} <= params
    assert not [p for p in params if re.search(r"secret|password|access_key|token", p)]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_component_body_imports_flts_and_calls_its_glue(ir: dict[str, Any], name: str) -> None:
    executor = ir["deploymentSpec"]["executors"][f"exec-{name}"]["container"]
    assert executor["image"] == "img.example/flts:t"
    assert executor["args"][-1] == name  # --function_to_execute
    assert "kfp.dsl.executor_main" in executor["command"][2]
    func = _component_function(executor["command"][-1], name)
    body = [
        s for s in func.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    assert len(body) == 2, f"{name}: the body must be one import and one glue call"
    imp, call_stmt = body
    assert isinstance(imp, ast.ImportFrom)
    assert (imp.module, [a.name for a in imp.names]) == ("flts.kfp", ["glue"])
    assert isinstance(call_stmt, ast.Expr)
    call = call_stmt.value
    assert isinstance(call, ast.Call)
    assert isinstance(call.func, ast.Attribute)
    assert isinstance(call.func.value, ast.Name)
    assert call.func.value.id == "glue"
    target = getattr(glue, call.func.attr)
    assert call.func.attr == f"{name}_task"
    # Every component input/output reaches the glue function, by its own name.
    params = [a.arg for a in func.args.args]
    assert [(k.arg, k.value.id) for k in call.keywords if isinstance(k.value, ast.Name)] == [
        (p, p) for p in params
    ]
    glue_params = set(inspect.signature(target).parameters) - {"ctx"}
    assert glue_params == set(params)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_has_resources_and_the_credentials_secret(ir: dict[str, Any], name: str) -> None:
    executor = ir["deploymentSpec"]["executors"][f"exec-{name}"]["container"]
    want = TASK_RESOURCES[name]
    res = executor["resources"]
    assert (res["resourceCpuRequest"], res["resourceCpuLimit"]) == (
        want.cpu_request,
        want.cpu_limit,
    )
    assert (res["resourceMemoryRequest"], res["resourceMemoryLimit"]) == (
        want.memory_request,
        want.memory_limit,
    )
    k8s = ir["platforms"]["kubernetes"]["deploymentSpec"]["executors"][f"exec-{name}"]
    (secret,) = k8s["secretAsEnv"]
    assert secret["secretName"] == CREDENTIALS_SECRET
    assert secret["optional"] is False
    assert {(k["secretKey"], k["envVar"]) for k in secret["keyToEnv"]} == {
        ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    }


def test_secret_name_option_and_local_pipeline_without_kubernetes(tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(["kfp", "compile", "-o", str(out), "--secret-name", "site-s3"]) == 0
    k8s = load_ir(out)["platforms"]["kubernetes"]["deploymentSpec"]
    names = {s["secretName"] for e in k8s["executors"].values() for s in e["secretAsEnv"]}
    assert names == {"site-s3"}
    # The local runner's pipeline carries no Kubernetes settings and no resources.
    local = tmp_path / "local.yaml"
    from kfp import compiler

    compiler.Compiler().compile(build_pipeline(secret_name=None), str(local))
    loaded = load_ir(local)
    assert "platforms" not in loaded
    execs = loaded["deploymentSpec"]["executors"].values()
    assert not [e for e in execs if "resources" in e["container"]]


def test_embedded_source_is_the_module_source() -> None:
    """The IR carries the component functions verbatim: no copy of logic lives elsewhere."""
    for name, func in COMPONENT_FUNCTIONS.items():
        assert func.__name__ == name
        assert "glue." in inspect.getsource(func)


def test_compile_matches_committed_ir(tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(["kfp", "compile", "-o", str(out)]) == 0
    assert COMMITTED.is_file(), "pipelines/flts-pipeline.yaml is missing"
    assert out.read_text() == COMMITTED.read_text(), (
        "the committed IR is stale: regenerate it with `flts kfp compile`"
    )


def test_compile_image_option(tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(["kfp", "compile", "-o", str(out), "--image", "registry.local/x:9"]) == 0
    execs = load_ir(out)["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in execs.values()} == {"registry.local/x:9"}


def test_submit_dry_run_contacts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["kfp", "submit", "--host", "http://127.0.0.1:9", "--dry-run", "--image", "i:1"]
    argv += ["--param", "epochs=3", "--param", "model_types=gru,prophet", "--experiment", "e"]
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["dry_run"] is True
    assert plan["parameters"] == {"epochs": 3, "model_types": ["GRU", "PROPHET"]}
    assert (plan["image"], plan["host"], plan["pipeline_name"]) == (
        "i:1",
        "http://127.0.0.1:9",
        "flts-pipeline",
    )


@pytest.mark.parametrize("bad", ["nope=1", "epochs=many", "model_types=GRU,XGB", "epochs"])
def test_submit_rejects_bad_params(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["kfp", "submit", "--host", "http://127.0.0.1:9", "--dry-run", "--param", bad]
    assert main(argv) == 1
    assert "--param" in capsys.readouterr().err


def _dockerfile() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    return [
        ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def test_dockerfile_essentials() -> None:
    lines = _dockerfile()
    instr = [ln.split(None, 1)[0].upper() for ln in lines]
    # The base is a build argument: a registry image by default, a locally made one here.
    assert "ARG BASE_IMAGE=python:3.11-slim" in lines
    froms = [ln.split()[1] for ln in lines if ln.startswith("FROM ")]
    assert froms == ["${BASE_IMAGE}", "${BASE_IMAGE}"], "a build stage and a runtime stage"
    runtime_start = max(i for i, ln in enumerate(lines) if ln.startswith("FROM "))
    runs = [ln for ln in lines if ln.upper().startswith("RUN ") and "pip install" in ln]
    assert len(runs) == 1
    install = runs[0]
    assert lines.index(install) < runtime_start, "install in the build stage only"
    assert re.search(r"(-c|--constraint)\s+constraints\.txt", install)
    assert "--no-index --find-links /wheels" in install
    assert any(ln.startswith("COPY") and "constraints.txt" in ln for ln in lines)
    runtime = lines[runtime_start:]
    assert not [ln for ln in runtime if ln.startswith("COPY") and "wheels" in ln]
    assert [ln for ln in runtime if ln.startswith("COPY --from=build /opt/flts/venv")]
    extras = next(ln for ln in lines if ln.startswith("ARG EXTRAS=")).split("=", 1)[1].split(",")
    assert {"ml", "kfp"} <= set(extras)
    assert "dev" not in extras
    users = [ln.split()[1] for ln in runtime if ln.startswith("USER ")]
    assert users, "the image must switch to a non-root user"
    assert users[-1] not in {"root", "0"}
    assert instr.index("HEALTHCHECK") > runtime_start
    entry = next(ln for ln in lines if ln.startswith("ENTRYPOINT"))
    assert json.loads(entry.split(None, 1)[1]) == ["flts"]


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", ".pytest_cache", ".mypy_cache", "tests"} <= ignored
    assert not {"src", "pyproject.toml", "constraints.txt", "deploy", "deploy/wheelhouse"} & ignored


def test_local_run_arguments_keep_pipeline_defaults_unless_given(tmp_path: Path) -> None:
    from flts.cli import build_parser
    from flts.cli.kfp_cmd import local_arguments

    argv = ["kfp", "run", "--local", "--models", "gru,prophet", "--epochs", "2"]
    argv += ["--train", str(tmp_path / "a.csv"), "--season-steps", "30"]
    argv += ["--timezone", "Europe/Berlin", "--holidays", "DE", "--target", "load"]
    argv += ["--local-clock-lags"]
    args = build_parser(argv).parse_args(argv)
    got = local_arguments(args, "http://m", "http://s3")
    assert got == {
        "identifier": "kfp-local",
        "model_types": ["GRU", "PROPHET"],
        "mlflow_tracking_uri": "http://m",
        "s3_endpoint_url": "http://s3",
        "train_csv_uri": str((tmp_path / "a.csv").resolve()),
        "epochs": 2,
        "season_steps": 30,
        "target": "load",
        "timezone": "Europe/Berlin",
        "holidays": "DE",
        "local_clock_lags": True,
    }
    with pytest.raises(SystemExit):
        build_parser(["kfp", "run", "--local", "--models", "XGB"]).parse_args(
            ["kfp", "run", "--local", "--models", "XGB"]
        )


def test_render_summary_names_the_champion_and_every_row() -> None:
    from flts.cli.kfp_cmd import render_summary

    row = {"rmse": 2.0, "mae": 1.0, "composite_score": 0.5}
    summary = {
        "champion": {
            "model_type": "GRU",
            "run_id": "r1",
            "composite_score": 0.5,
            "registered_model": "m",
            "model_version": "3",
        },
        "report": {
            "rows": [
                {**row, "model_type": "GRU", "is_baseline": False},
                {**row, "model_type": "PERSISTENCE", "is_baseline": True, "composite_score": 1.0},
            ]
        },
        "performance": None,
        "seconds": 1.5,
        "pipeline_root": "/x",
    }
    text = render_summary(summary)
    assert text.splitlines()[0].startswith("champion: GRU (run r1")
    assert "m v3" in text
    assert "PERSISTENCE (baseline)" in text
    assert "no model" in render_summary({**summary, "champion": None})
    assert "why" not in text  # no mae_vs_best_baseline: nothing to explain


def test_render_summary_explains_a_small_gain_from_the_report_rows() -> None:
    from flts.cli.kfp_cmd import render_summary

    gru = {
        "model_type": "GRU",
        "is_baseline": False,
        "rmse": 9.0,
        "mae": 9.9,
        "composite_score": 0.95,
        "mae_vs_best_baseline": 0.99,
        "rmse_vs_best_baseline": 0.9,
    }
    persistence = {
        "model_type": "PERSISTENCE",
        "is_baseline": True,
        "rmse": 10.0,
        "mae": 10.0,
        "composite_score": 1.0,
    }
    summary = {
        "champion": {"model_type": "GRU", "run_id": "r1", "composite_score": 0.95},
        "report": {"rows": [gru, persistence]},
        "performance": None,
        "seconds": 1.5,
        "pipeline_root": "/x",
    }
    lines = render_summary(summary).splitlines()
    assert "why the gain is small (GRU: MAE 0.990x the better baseline):" in lines
    assert any(line.startswith("  RMSE 0.900x against MAE 0.990x") for line in lines)


def _series_file(tmp_path: Path, entries: Any) -> Path:
    path = tmp_path / "series.json"
    path.write_text(json.dumps(entries))
    return path


def test_submit_fleet_dry_run_names_each_series(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = [
        {"series": "cell A", "train_csv_uri": "s3://d/a-train.csv", "test_csv_uri": "s3://d/a.csv"},
        {
            "identifier": "fleet/b",
            "train_csv_uri": "s3://d/b1.csv",
            "test_csv_uri": "s3://d/b2.csv",
        },
    ]
    argv = ["kfp", "submit", "--host", "http://127.0.0.1:9", "--dry-run", "--fleet"]
    argv += ["--series-file", str(_series_file(tmp_path, entries)), "--identifier", "fleet"]
    argv += ["--param", "epochs=2"]
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["pipeline_name"] == "flts-fleet-pipeline"
    assert plan["parameters"]["epochs"] == 2
    assert [s["identifier"] for s in plan["parameters"]["series"]] == ["fleet/cell_A", "fleet/b"]
    assert plan["parameters"]["series"][1]["test_csv_uri"] == "s3://d/b2.csv"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "non-empty JSON list"),
        ([{"series": "a", "train_csv_uri": "s3://x"}], "entry 0: 'test_csv_uri'"),
        ([{"identifier": "r/a", "train_csv_uri": "s3://x", "test_csv_uri": 3}], "'test_csv_uri'"),
        (["s3://x"], "entry 0: expected an object"),
        (
            [{"identifier": "r/a", "train_csv_uri": "s3://x", "test_csv_uri": "s3://y"}] * 2,
            "identifiers used twice",
        ),
    ],
)
def test_submit_fleet_rejects_a_bad_series_file(
    tmp_path: Path, entries: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["kfp", "submit", "--host", "http://127.0.0.1:9", "--dry-run", "--fleet"]
    argv += ["--series-file", str(_series_file(tmp_path, entries)), "--identifier", "r"]
    assert main(argv) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "pipeline"),
    [([], "flts-fleet-pipeline"), (["--global-model"], "flts-fleet-global-pipeline")],
)
def test_submit_fleet_uploads_the_fleet_pipeline(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    pipeline: str,
) -> None:
    import kfp

    seen: dict[str, Any] = {}

    class Client:  # the KFP server's client; no server runs in unit tests
        def __init__(self, host: str, namespace: str | None) -> None:
            seen["host"] = host

        def create_run_from_pipeline_package(self, package: str, **kwargs: Any) -> Any:
            first = next(yaml.safe_load_all(Path(package).read_text()))
            seen["pipeline"] = first["pipelineInfo"]["name"]
            seen["arguments"] = kwargs["arguments"]
            return type("Run", (), {"run_id": "run-1"})()

    monkeypatch.setattr(kfp, "Client", Client)
    entries = [{"identifier": "r/a", "train_csv_uri": "s3://d/a", "test_csv_uri": "s3://d/b"}]
    argv = ["kfp", "submit", "--host", "http://kfp:8080", "--fleet", *extra]
    argv += ["--series-file", str(_series_file(tmp_path, entries)), "--identifier", "r"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "run-1"
    assert seen["pipeline"] == pipeline
    assert seen["arguments"]["series"] == entries
    # The global fit is named after the run (r/_global); the plain fleet has no such parameter.
    assert seen["arguments"].get("run_identifier") == ("r" if extra else None)


@pytest.mark.parametrize("action", ["compile", "submit"])
def test_global_model_needs_fleet(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["kfp", action, "--global-model"]
    argv += ["--host", "http://127.0.0.1:9", "--dry-run"] if action == "submit" else []
    assert main(argv) == 1
    assert "--global-model needs --fleet" in capsys.readouterr().err


def test_submit_series_file_needs_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["kfp", "submit", "--host", "http://127.0.0.1:9", "--dry-run", "--series-file", "x"]
    assert main(argv) == 1
    assert "--fleet and --series-file go together" in capsys.readouterr().err


def test_pipeline_parameters_map_to_the_preprocess_config_with_unset_as_empty() -> None:
    from flts.kfp.glue import preprocess_config

    plain = preprocess_config(30, 1, "down", "time", 0)
    assert (plain.season_steps, plain.timezone) == (None, None)
    zoned = preprocess_config(30, 1, "down", "time", 0, "Europe/Berlin")
    assert zoned.timezone == "Europe/Berlin"
    with pytest.raises(ConfigError, match="unknown time zone"):
        preprocess_config(30, 1, "down", "time", 0, "Berlin")
    assert plain.holidays is None
    assert preprocess_config(30, 1, "down", "time", 0, "", "es-ct").holidays == "ES-CT"
    with pytest.raises(ConfigError, match="not a country the holidays package knows"):
        preprocess_config(30, 1, "down", "time", 0, "", "XX")
    assert plain.local_clock_lags is False
    local = preprocess_config(30, 1, "down", "time", 0, "Europe/Berlin", "", True)
    assert (local.timezone, local.local_clock_lags) == ("Europe/Berlin", True)
