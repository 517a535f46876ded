"""The sequence of `flts run`, and the summary it leaves behind (JSON + plot)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from flts.infra import procs
from flts.run.explain import explanation
from flts.run.monitor import TopicMonitor
from flts.run.pipeline import (
    WATCHED_TOPICS,
    PipelineFailed,
    PipelineRunner,
    RunDisplay,
    RunOptions,
    RunOutcome,
    prepare_topics,
    wanted_partitions,
)
from flts.run.report import plot_forecast, read_jsonl, run_configuration

log = logging.getLogger(__name__)


#: Called once the services are started (chaos scenarios inject their faults from it).
StartedHook = Callable[[PipelineRunner], None]


def execute_run(
    options: RunOptions, display: RunDisplay, on_started: StartedHook | None = None
) -> dict[str, Any]:
    from flts.adapters.s3 import S3ObjectStore
    from flts.infra.stack import LocalStack

    t0 = time.monotonic()
    options.run_dir.mkdir(parents=True, exist_ok=True)
    display.phase("infrastructure", f"local stack in {options.stack_dir}")
    wanted_partitions(options)  # before the stack creates its topics
    stack = LocalStack(options.stack_dir)
    was_running = stack.is_running()
    endpoints = stack.up()
    env = endpoints.service_env()
    prepare_topics(endpoints.kafka_bootstrap, options, env)
    runner = PipelineRunner(options, env, display)
    monitor = TopicMonitor(endpoints.kafka_bootstrap, WATCHED_TOPICS, options.identifier)
    monitor.start()
    keep = False
    try:
        runner.start_services()
        display.phase("services", ", ".join(s.name for s in runner.services))
        if on_started is not None:
            on_started(runner)
        wait_until_ready(runner, monitor, options.timeout_s)
        t_infra = time.monotonic()
        display.phase("preprocess", f"{options.train_csv.name} + {options.test_csv.name}")
        store = S3ObjectStore(endpoints.s3_settings())
        runner.request_preprocess(store)
        outcome = runner.follow(monitor)
        summary = build_summary(options, outcome, store, t0=t0, t_infra=t_infra)
        summary["service_restarts"] = runner.restarts
        if options.keep_running:
            keep = True
            summary["api_url"] = f"http://127.0.0.1:{options.api_port}"
            summary["services_file"] = str(procs.remember(runner.services, options.stack_dir))
        write_summary(options, summary)
        return summary
    finally:
        monitor.stop()
        if not keep:
            procs.stop_all(runner.services)
            if not was_running:
                stack.down()


def wait_until_ready(runner: PipelineRunner, monitor: TopicMonitor, timeout_s: float) -> None:
    """Services are ready once each has joined its consumer group (its worker's ready file)."""
    deadline = time.monotonic() + timeout_s
    pending = {svc.name: svc for svc in runner.services}
    while pending:
        for name, svc in list(pending.items()):
            rc = svc.exited()
            if rc is not None:
                raise PipelineFailed(
                    f"service {name} exited with code {rc} at start; log {svc.log_path}:\n"
                    f"{svc.log_tail()}"
                )
            if svc.ready():
                del pending[name]
        if time.monotonic() > deadline:
            raise PipelineFailed(f"services not ready in time: {sorted(pending)}")
        time.sleep(0.2)
    monitor.assigned.wait(timeout=30)


def build_summary(
    options: RunOptions,
    outcome: RunOutcome,
    store: Any,
    *,
    t0: float,
    t_infra: float,
) -> dict[str, Any]:
    selected = outcome.selected or {}
    ident = options.identifier
    config_hash = selected.get("config_hash", outcome.config_hash)
    record_key = f"{ident}/{config_hash}/current.json"
    record = orjson.loads(store.get_bytes("model-promotion", record_key))
    report = record.get("report", {})
    perf = outcome.performance
    configuration = _configuration(store, ident, str(config_hash))
    diagnosis = _training_diagnosis(store, ident, str(config_hash))
    horizon = int(configuration.get("horizon") or 1)
    step = min(max(options.plot_step, 1), horizon)
    artifacts: dict[str, Any] = {"summary_json": str(options.run_dir / "summary.json")}
    if perf is not None:
        jsonl = read_jsonl(store.get_bytes(perf["output_bucket"], perf["output_object"]))
        artifacts["inference_log"] = f"s3://{perf['output_bucket']}/{perf['output_object']}"
        ahead = "" if horizon == 1 else f", {step} of {horizon} steps ahead"
        artifacts["plot_png"] = str(
            plot_forecast(
                jsonl,
                options.target,
                f"{ident}: champion {selected.get('model_type')} vs actual "
                f"({options.target}{ahead})",
                options.run_dir / "forecast.png",
                step=step,
            )
        )
    summary = {
        "identifier": ident,
        "config_hash": config_hash,
        "target": options.target,
        "test_windows": next(iter(outcome.trained.values()), {}).get("test_windows"),
        "horizon": horizon,
        "configuration": configuration,
        #: How predictable the training series' next change is (``flts.run.explain``).
        "diagnosis": diagnosis,
        "champion": selected or None,
        "no_champion_reason": outcome.no_champion,
        "scores": list(report.get("rows", [])),
        "trained": outcome.trained,
        #: Models whose trainer could not train on this data (the run ranked the others).
        "failed": outcome.failed,
        "performance": perf,
        "promotion_record": f"s3://model-promotion/{record_key}",
        "timings": phase_timings(outcome, t0=t0, t_infra=t_infra),
        "artifacts": artifacts,
    }
    # Why the champion gains little over the baselines, as ``flts run`` prints it ([]: it
    # does not, or nothing explains it).
    summary["explanation"] = explanation(summary)
    return summary


def _configuration(store: Any, identifier: str, config_hash: str) -> dict[str, Any]:
    """What the run actually used (detected seasons, default lags, covariates, context rows),
    from the processed test object's metadata; empty if it cannot be read."""
    from flts.errors import FltsError
    from flts.forecasting.dataset import read_meta
    from flts.stages.ports import BUCKET_PROCESSED
    from flts.stages.preprocess import processed_keys

    key = processed_keys(identifier, config_hash)[1]
    try:
        meta = read_meta(store.get_bytes(BUCKET_PROCESSED, key), f"{BUCKET_PROCESSED}/{key}")
    except FltsError:
        log.warning("cannot read %s/%s for the run configuration", BUCKET_PROCESSED, key)
        return {}
    return run_configuration(meta)


def _training_diagnosis(store: Any, identifier: str, config_hash: str) -> dict[str, Any]:
    """Autocorrelation of the training target's one-step changes at lag 1 and each seasonal
    period (``flts.forecasting.diagnosis``), keyed by the lag in steps; empty if the processed
    training object cannot be read."""
    from flts.errors import FltsError
    from flts.forecasting.dataset import read_processed
    from flts.forecasting.diagnosis import change_autocorrelation
    from flts.stages.ports import BUCKET_PROCESSED
    from flts.stages.preprocess import processed_keys

    key = processed_keys(identifier, config_hash)[0]
    try:
        frame, meta = read_processed(
            store.get_bytes(BUCKET_PROCESSED, key), f"{BUCKET_PROCESSED}/{key}"
        )
    except FltsError:
        log.warning("cannot read %s/%s for the run's diagnosis", BUCKET_PROCESSED, key)
        return {}
    spec = meta.spec
    acf = change_autocorrelation(
        frame[spec.target].to_numpy(),
        [1, *spec.seasonal_periods],
        meta.unobserved_mask(),
    )
    return {"change_autocorrelation": {str(lag): value for lag, value in acf.items()}}


def _iso_seconds(start: str, end: str) -> float:
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


def phase_timings(outcome: RunOutcome, *, t0: float, t_infra: float) -> dict[str, Any]:
    """Wall time per phase, and how much of it was stage work versus messaging/orchestration."""
    marks = outcome.marks
    training = {
        model: _iso_seconds(str(ev["train_start"]), str(ev["train_end"]))
        for model, ev in sorted(outcome.trained.items())
    }
    t_end = marks.get("inferred", marks["selected"])
    pipeline_wall = t_end - t_infra
    inference_work = float((outcome.performance or {}).get("latency_ms", 0.0)) / 1000.0
    t_pre = marks["preprocessed"]
    preprocess_work = outcome.preprocess_work_s or (t_pre - t_infra)
    evaluation_wall = marks["selected"] - marks["trained"]
    stage_work = (
        preprocess_work + max(training.values(), default=0.0) + evaluation_wall + inference_work
    )
    overhead = max(pipeline_wall - stage_work, 0.0)
    return {
        "infrastructure_s": t_infra - t0,
        "preprocess_s": t_pre - t_infra,
        "preprocess_work_s": preprocess_work,
        "training_s": training,
        "training_wall_s": marks["trained"] - t_pre,
        "evaluation_s": evaluation_wall,
        "inference_s": t_end - marks["selected"],  # 0 when nothing was promoted
        "inference_work_s": inference_work,
        "pipeline_s": pipeline_wall,
        "total_s": t_end - t0,
        "overhead_s": overhead,
        # The measure: share of the whole run (infrastructure start included) ...
        "overhead_fraction": overhead / (t_end - t0),
        # ... and the stricter one, share of the run after the services were up.
        "overhead_fraction_of_pipeline": overhead / pipeline_wall if pipeline_wall > 0 else 0.0,
    }


def write_summary(options: RunOptions, summary: dict[str, Any]) -> None:
    path = options.run_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
