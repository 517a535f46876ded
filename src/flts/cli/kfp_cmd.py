"""`flts kfp compile | run --local | submit`: the Kubeflow Pipelines v2 form of the pipeline."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from flts.domain.config import ModelType
from flts.errors import FltsError

DEFAULT_OUTPUT = Path("pipelines/flts-pipeline.yaml")
DEFAULT_FLEET_OUTPUT = Path("pipelines/flts-fleet-pipeline.yaml")
DEFAULT_FLEET_GLOBAL_OUTPUT = Path("pipelines/flts-fleet-global-pipeline.yaml")
GLOBAL_MODEL_HELP = (
    "with --fleet: also fit one GLOBAL_LINEAR model across the series (as `flts run "
    "--global-model`); each series' champion is chosen among its local and global candidates"
)


def _models(text: str) -> list[str]:
    try:
        types = [ModelType.parse(t).value for t in text.split(",") if t.strip()]
    except FltsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if not types:
        raise argparse.ArgumentTypeError("expected a list like GRU,LSTM,PROPHET")
    return types


def register(parser: argparse.ArgumentParser) -> None:
    from flts.kfp.components import DEFAULT_IMAGE

    sub = parser.add_subparsers(dest="kfp_command", metavar="ACTION", required=True)

    comp = sub.add_parser("compile", help="write the pipeline IR YAML")
    comp.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help=f"YAML path (default {DEFAULT_OUTPUT}, with --fleet {DEFAULT_FLEET_OUTPUT}, "
        f"with --fleet --global-model {DEFAULT_FLEET_GLOBAL_OUTPUT})",
    )
    comp.add_argument(
        "--fleet",
        action="store_true",
        help="the fleet pipeline: the single-series DAG in a ParallelFor over a `series` list "
        "of {identifier, train_csv_uri, test_csv_uri}, collected into one fleet artifact",
    )
    comp.add_argument("--global-model", action="store_true", help=GLOBAL_MODEL_HELP)
    comp.add_argument("--image", default=DEFAULT_IMAGE, help=f"task image ({DEFAULT_IMAGE})")
    comp.add_argument(
        "--secret-name",
        default="flts-credentials",
        help="Kubernetes Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the tasks",
    )
    comp.set_defaults(func=cmd_compile)

    run = sub.add_parser("run", help="run the DAG with kfp.local on the local stack")
    run.add_argument("--local", action="store_true", required=True, help="run on this machine")
    run.add_argument("--train", type=Path, default=None, help="training CSV (default: bundled)")
    run.add_argument("--test", type=Path, default=None, help="test CSV (default: bundled)")
    run.add_argument("--identifier", default="kfp-local", help="run identifier")
    run.add_argument("--time-col", default=None, help="timestamp column (default: time)")
    run.add_argument("--target", default=None, help="column to forecast (default: down)")
    run.add_argument("--models", type=_models, default=["GRU", "LSTM", "PROPHET"])
    run.add_argument("--epochs", type=int, default=None, help="training epochs")
    run.add_argument("--lookback", type=int, default=None, help="input window length")
    run.add_argument("--horizon", type=int, default=None, help="steps forecast ahead")
    run.add_argument("--season-steps", type=int, default=None, help="seasonal-naive period")
    run.add_argument("--torch-threads", type=int, default=None, help="torch threads per trainer")
    run.add_argument(
        "--timezone", default=None, help="IANA zone of naive local clock timestamps (default UTC)"
    )
    run.add_argument(
        "--holidays",
        default=None,
        help="public-holiday calendar for LightGBM, e.g. DE or ES-CT (default: none)",
    )
    run.add_argument(
        "--local-clock-lags",
        action="store_true",
        help="seasonal lags at the same local clock time (needs --timezone); default UTC steps",
    )
    run.add_argument("--data-dir", type=Path, default=None, help="local stack data dir")
    run.add_argument("--run-dir", type=Path, default=None, help="outputs (runs/<identifier>)")
    run.add_argument("--keep-running", action="store_true", help="leave the stack up")
    run.add_argument("--json", action="store_true", help="print only the summary JSON")
    run.set_defaults(func=cmd_run)

    sm = sub.add_parser("submit", help="compile and start a run on a KFP server")
    sm.add_argument("--host", required=True, help="KFP API URL, e.g. http://localhost:8080")
    sm.add_argument("--image", default=DEFAULT_IMAGE, help="task image")
    sm.add_argument("--namespace", default=None, help="Kubernetes namespace (multi-user KFP)")
    sm.add_argument("--experiment", default=None, help="KFP experiment name")
    sm.add_argument("--run-name", default=None, help="run name")
    sm.add_argument("--param", action="append", default=[], metavar="K=V", help="parameter")
    sm.add_argument("--dry-run", action="store_true", help="print the plan, contact nothing")
    sm.add_argument(
        "--fleet",
        action="store_true",
        help="submit the fleet pipeline; its series come from --series-file",
    )
    sm.add_argument(
        "--series-file",
        type=Path,
        default=None,
        help="with --fleet: JSON list of {identifier | series, train_csv_uri, test_csv_uri}",
    )
    sm.add_argument(
        "--identifier",
        default=None,
        help="with --fleet: the run identifier that entries giving 'series' are named under "
        "(and, with --global-model, the global fit's run_identifier)",
    )
    sm.add_argument("--global-model", action="store_true", help=GLOBAL_MODEL_HELP)
    sm.set_defaults(func=cmd_submit)


def cmd_compile(args: argparse.Namespace) -> int:
    from flts.errors import ConfigError
    from flts.kfp.fleet_pipeline import compile_fleet_pipeline
    from flts.kfp.pipeline import compile_pipeline

    if args.global_model and not args.fleet:
        raise ConfigError("--global-model needs --fleet (one model across the fleet's series)")
    if args.fleet:
        default = DEFAULT_FLEET_GLOBAL_OUTPUT if args.global_model else DEFAULT_FLEET_OUTPUT
        path = compile_fleet_pipeline(
            args.output or default,
            image=args.image,
            secret_name=args.secret_name,
            global_model=args.global_model,
        )
    else:
        output = args.output or DEFAULT_OUTPUT
        path = compile_pipeline(output, image=args.image, secret_name=args.secret_name)
    print(f"wrote {path} (image {args.image}, secret {args.secret_name})")
    return 0


def local_arguments(args: argparse.Namespace, mlflow_uri: str, s3_endpoint: str) -> dict[str, Any]:
    """Pipeline arguments for a local run; unset options keep the pipeline's defaults."""
    arguments: dict[str, Any] = {
        "identifier": args.identifier,
        "model_types": args.models,
        "mlflow_tracking_uri": mlflow_uri,
        "s3_endpoint_url": s3_endpoint,
    }
    if args.train is not None:
        arguments["train_csv_uri"] = str(args.train.resolve())
    if args.test is not None:
        arguments["test_csv_uri"] = str(args.test.resolve())
    passed = (
        "time_col",
        "target",
        "epochs",
        "lookback",
        "horizon",
        "season_steps",
        "torch_threads",
        "timezone",
    )
    for name in (*passed, "holidays"):
        if getattr(args, name) is not None:
            arguments[name] = getattr(args, name)
    if args.local_clock_lags:
        arguments["local_clock_lags"] = True
    return arguments


def cmd_run(args: argparse.Namespace) -> int:
    from flts.infra.stack import LocalStack
    from flts.kfp.local_run import run_pipeline_locally, stdout_to_stderr

    run_dir = (args.run_dir or Path("runs") / args.identifier).resolve()
    stack = LocalStack(args.data_dir)
    was_running = stack.is_running()
    quiet: contextlib.AbstractContextManager[None] = (
        stdout_to_stderr() if args.json else contextlib.nullcontext()
    )
    with quiet:
        endpoints = stack.up()
        try:
            result = run_pipeline_locally(
                local_arguments(args, endpoints.mlflow_uri, endpoints.s3_endpoint),
                run_dir / "kfp-outputs",
                env=endpoints.service_env(),
            )
        finally:
            if not was_running and not args.keep_running:
                stack.down()
    summary = result.summary()
    (run_dir / "kfp-summary.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render_summary(summary))
    return 0


def render_summary(summary: dict[str, Any]) -> str:
    """The champion and every scored model as a small table."""
    lines = []
    champion = summary.get("champion")
    if champion:
        lines.append(
            f"champion: {champion['model_type']} (run {champion['run_id']}, "
            f"composite {champion['composite_score']:.4f}, registered "
            f"{champion.get('registered_model')} v{champion.get('model_version')})"
        )
    else:
        lines.append("champion: none (no model beat both persistence and seasonal naive)")
    rows = (summary.get("report") or {}).get("rows") or []
    lines.append(f"{'model':<26}{'rmse':>12}{'mae':>12}{'vs persistence':>16}")
    for row in rows:
        tag = " (baseline)" if row.get("is_baseline") else ""
        lines.append(
            f"{row['model_type'] + tag:<26}{row['rmse']:>12.4g}{row['mae']:>12.4g}"
            f"{row['composite_score']:>16.3f}"
        )
    lines.extend(_explanation(rows, champion))
    perf = summary.get("performance")
    if perf:
        lines.append(
            f"batch inference: {perf['windows']} windows, rmse {perf.get('rmse')}, "
            f"logs s3://{perf['output_bucket']}/{perf['output_object']}"
        )
    lines.append(f"took {summary['seconds']} s; KFP outputs in {summary['pipeline_root']}")
    return "\n".join(lines)


def _explanation(rows: list[dict[str, Any]], champion: dict[str, Any] | None) -> list[str]:
    """``flts run``'s "why the gain is small" from the report rows (the per-day and RMSE
    readings; the training series' autocorrelation, the one reading that depends on the
    horizon, is not in a KFP summary)."""
    from flts.run.explain import explanation

    return explanation({"scores": rows, "champion": champion})


def cmd_submit(args: argparse.Namespace) -> int:
    from flts.errors import ConfigError
    from flts.kfp.submit import (
        SubmitPlan,
        parse_params,
        pipeline_defaults,
        read_series,
        submit,
    )

    if args.fleet != (args.series_file is not None):
        raise ConfigError("--fleet and --series-file go together")
    if args.global_model and not args.fleet:
        raise ConfigError("--global-model needs --fleet (one model across the fleet's series)")
    known = pipeline_defaults(fleet=args.fleet, global_model=args.global_model)
    arguments = parse_params(args.param, known)
    if args.fleet:
        arguments["series"] = read_series(args.series_file, args.identifier)
    if args.global_model and args.identifier and "run_identifier" not in arguments:
        arguments["run_identifier"] = args.identifier
    plan = SubmitPlan(
        host=args.host,
        image=args.image,
        arguments=arguments,
        experiment=args.experiment,
        namespace=args.namespace,
        run_name=args.run_name,
        fleet=args.fleet,
        global_model=args.global_model,
    )
    if args.dry_run:
        print(json.dumps({"dry_run": True, **plan.describe()}, indent=2))
        return 0
    run_id = submit(plan)
    print(json.dumps({"run_id": run_id, **plan.describe()}, indent=2))
    sys.stdout.flush()
    return 0
