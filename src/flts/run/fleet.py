"""`flts run --series-col`: every series of a fleet through one set of services.

The stack and the services start once; each runnable series then gets its own preprocess
request under its own identifier (``<run>/<series>``, :mod:`flts.domain.series`), so it gets its
own config_hash, claims, training runs, promotion record and registry alias, with the message
fields of a single run. One monitor watches ``<run>/`` and routes each event to that series'
:class:`PipelineRunner`, which applies the single-run rules (which events belong to the run,
what a DLQ record means). A series that fails (a DLQ record, or nothing before the timeout)
gets that as its reason; the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flts.domain.series import global_identifier
from flts.infra import procs
from flts.run.monitor import ObservedEvent, TopicMonitor, identifier_of
from flts.run.pipeline import (
    TOPICS,
    WATCHED_TOPICS,
    EventWaiter,
    PipelineFailed,
    PipelineRunner,
    RunDisplay,
    RunOptions,
    _describe_dlq,
    prepare_topics,
    wanted_partitions,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetSeries:
    """One series of a fleet: runnable (CSV pair + checked config) or skipped with a reason."""

    series_id: str
    identifier: str
    train_csv: Path | None
    test_csv: Path | None
    preprocess_config_json: str | None
    reason: str | None = None


@dataclass
class FleetOptions:
    #: Options shared by every series; its identifier is the run's (no series part).
    base: RunOptions
    series: list[FleetSeries] = field(default_factory=list)


class _SeriesDisplay:
    """The run's display with the series named on every line; no per-epoch bars per series."""

    def __init__(self, display: RunDisplay, series_id: str) -> None:
        self._display = display
        self._series = series_id

    def phase(self, name: str, detail: str = "") -> None:
        self._display.note(f"[{self._series}] {name}: {detail}".rstrip(": "))

    def epoch(self, model_type: str, epoch: int, epochs: int, val_loss: float | None) -> None:
        return None  # dozens of series x epochs would bury everything else

    def trained(self, model_type: str, rmse: float) -> None:
        self._display.note(f"[{self._series}] {model_type}: trained, test RMSE {rmse:.4e}")

    def note(self, text: str) -> None:
        self._display.note(f"[{self._series}] {text}")


@dataclass
class SeriesRun:
    series: FleetSeries
    runner: PipelineRunner
    failure: str | None = None
    #: With --global-model: series the global fit covered (True), left out (False), or not
    #: known yet (None); ``global_reason`` says why it was left out.
    global_member: bool | None = None
    global_reason: str | None = None
    global_series: int | None = None

    @property
    def settled(self) -> bool:
        out = self.runner.outcome
        return (
            self.failure is not None or out.no_champion is not None or out.performance is not None
        )


def series_options(base: RunOptions, series: FleetSeries) -> RunOptions:
    if series.train_csv is None or series.test_csv is None:
        raise ValueError(f"series {series.series_id!r} has no CSV pair: {series.reason}")
    safe = series.identifier.rsplit("/", 1)[-1]
    return replace(
        base,
        identifier=series.identifier,
        train_csv=series.train_csv,
        test_csv=series.test_csv,
        run_dir=base.run_dir / "series" / safe,
        preprocess_config_json=series.preprocess_config_json,
        keep_running=False,
    )


def execute_fleet(
    options: FleetOptions,
    display: RunDisplay,
    on_started: Callable[[PipelineRunner], None] | None = None,
) -> dict[str, Any]:
    """Run every runnable series; the fleet summary (also written to ``summary.json``).

    ``on_started`` gets the runner of the fleet's services once they are ready (the chaos
    suite's hook, as for :func:`flts.run.flow.execute_run`).
    """
    from flts.adapters.s3 import S3ObjectStore
    from flts.infra.stack import LocalStack
    from flts.run.fleet_report import fleet_summary, write_fleet_summary
    from flts.run.flow import build_summary, wait_until_ready

    base = options.base
    t0 = time.monotonic()
    base.run_dir.mkdir(parents=True, exist_ok=True)
    display.phase("infrastructure", f"local stack in {base.stack_dir}")
    wanted_partitions(base)  # before the stack creates its topics
    stack = LocalStack(base.stack_dir)
    was_running = stack.is_running()
    endpoints = stack.up()
    env = endpoints.service_env()
    prepare_topics(endpoints.kafka_bootstrap, base, env)
    # Only champions forecast a fleet's test data: a provisional forecast per series on its
    # first SUCCESS would double the batch inference work and is never reported.
    env["RUN_INFERENCE_ON_TRAIN_SUCCESS"] = "0"
    master = PipelineRunner(base, env, display)
    monitor = TopicMonitor(
        endpoints.kafka_bootstrap, WATCHED_TOPICS, base.identifier + "/", prefix=True
    )
    monitor.start()
    keep = False
    try:
        master.start_services()
        display.phase("services", ", ".join(s.name for s in master.services))
        wait_until_ready(master, monitor, base.timeout_s)
        if on_started is not None:
            on_started(master)
        t_infra = time.monotonic()
        store = S3ObjectStore(endpoints.s3_settings())
        runs = _request_all(options, env, display, store)
        global_request = _GlobalRequest(base, env, display) if base.global_model else None
        _follow(runs, master, monitor, display, base.timeout_s, global_request)
        t_end = time.monotonic()
        per_series: list[dict[str, Any]] = []
        for series in options.series:
            run = runs.get(series.identifier)
            per_series.append(_series_summary(series, run, store, build_summary, t0, t_infra))
        summary = fleet_summary(base, per_series, t0=t0, t_infra=t_infra, t_end=t_end)
        summary["service_restarts"] = master.restarts
        if base.keep_running:
            keep = True
            summary["api_url"] = f"http://127.0.0.1:{base.api_port}"
            summary["services_file"] = str(procs.remember(master.services, base.stack_dir))
        write_fleet_summary(base.run_dir, summary)
        return summary
    finally:
        monitor.stop()
        if not keep:
            procs.stop_all(master.services)
            if not was_running:
                stack.down()


def _request_all(
    options: FleetOptions, env: dict[str, str], display: RunDisplay, store: Any
) -> dict[str, SeriesRun]:
    runs: dict[str, SeriesRun] = {}
    runnable = [s for s in options.series if s.reason is None]
    display.phase("preprocess", f"{len(runnable)} series requested")
    for series in runnable:
        opts = series_options(options.base, series)
        opts.run_dir.mkdir(parents=True, exist_ok=True)
        runner = PipelineRunner(opts, env, _SeriesDisplay(display, series.series_id))
        runs[series.identifier] = SeriesRun(series, runner)
        try:
            runner.request_preprocess(store)
        except PipelineFailed as exc:
            runs[series.identifier].failure = str(exc)
    return runs


class _GlobalRequest:
    """Sends one global training request once every series has its claim (or has failed), and
    applies the global trainer's answer (members, left-out series) to the series' runs."""

    def __init__(self, base: RunOptions, env: dict[str, str], display: RunDisplay) -> None:
        self.identifier = global_identifier(base.identifier)
        self.env = env
        self.display = display
        self.sent = False
        self.started_ms = int(time.time() * 1000) - 1000

    def maybe_send(self, runs: dict[str, SeriesRun]) -> None:
        if self.sent or any(
            r.failure is None and not r.settled and r.runner.outcome.claim is None
            for r in runs.values()
        ):
            return
        from flts.domain.messages import GlobalTrainingRequested, TrainingDataReady
        from flts.kafka_utils import create_producer, produce_message

        claims = [
            TrainingDataReady.model_validate(r.runner.outcome.claim)
            for r in runs.values()
            if r.failure is None and r.runner.outcome.claim is not None
        ]
        self.sent = True
        if not claims:
            return
        request = GlobalTrainingRequested(identifier=self.identifier, claims=claims)
        producer = create_producer(bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"])
        if not produce_message(producer, TOPICS.global_requests, request, key=self.identifier):
            for r in runs.values():
                if not r.settled:
                    r.failure = "the global training request was not confirmed by the broker"
            return
        self.display.phase("global model", f"one fit requested over {len(claims)} series")

    def observe(self, event: ObservedEvent, runs: dict[str, SeriesRun]) -> None:
        if event.timestamp_ms < self.started_ms:
            return  # an earlier run's
        if event.topic.startswith("DLQ-"):
            # Eval would wait for the global candidate for ever: the series fail with why.
            for r in runs.values():
                if r.failure is None and not r.settled:
                    r.failure = f"global model: {_describe_dlq(event)}"
            return
        if event.topic != TOPICS.global_results:
            return
        members = [str(m) for m in event.value.get("members") or []]
        for identifier in members:
            if identifier in runs:
                runs[identifier].global_member = True
                runs[identifier].global_series = len(members)
        for item in event.value.get("excluded") or []:
            run = runs.get(str(item.get("identifier")))
            if run is not None:
                run.global_member, run.global_reason = False, str(item.get("reason"))
                self.display.note(
                    f"[{run.series.series_id}] no global candidate: {run.global_reason}"
                )
        self.display.phase("global model", f"fitted over {len(members)} series")


def _follow(
    runs: dict[str, SeriesRun],
    master: PipelineRunner,
    monitor: TopicMonitor,
    display: RunDisplay,
    timeout_s: float,
    global_request: _GlobalRequest | None = None,
) -> None:
    """Route events to their series until every series is settled (or the time is up)."""

    def route(event: ObservedEvent) -> None:
        _route(event)
        if global_request is not None:
            global_request.maybe_send(runs)

    def _route(event: ObservedEvent) -> None:
        ident = identifier_of(event.value) or ""
        if global_request is not None and ident == global_request.identifier:
            global_request.observe(event, runs)
            return
        run = runs.get(ident)
        if run is None or run.failure is not None:
            return
        try:
            run.runner.observe(event)
        except PipelineFailed as exc:
            run.failure = str(exc)
            display.note(f"[{run.series.series_id}] failed: {exc}")
        out = run.runner.outcome
        expected = {m.value for m in run.runner.options.models}
        if "trained" not in out.marks and expected <= set(out.trained) | set(out.failed):
            out.marks["trained"] = time.monotonic()
        if run.settled:
            done = sum(r.settled for r in runs.values())
            display.phase("series done", f"{run.series.series_id} ({done}/{len(runs)})")

    def settled() -> bool:
        for run in runs.values():
            reason = None if run.settled else run.runner.overdue_failure()
            if reason is not None:
                run.failure = reason
                display.note(f"[{run.series.series_id}] failed: {reason}")
        return all(r.settled for r in runs.values())

    waiter = EventWaiter(monitor, master.services, display, time.monotonic() + timeout_s)
    try:
        waiter.until(settled, route)
    except PipelineFailed as exc:
        if "timed out" not in str(exc):
            raise
        for run in runs.values():
            if not run.settled:
                run.failure = f"no result within --timeout {timeout_s:g} s"
    master.restarts = dict(waiter.restarts)


def _series_summary(
    series: FleetSeries,
    run: SeriesRun | None,
    store: Any,
    build_summary: Any,
    t0: float,
    t_infra: float,
) -> dict[str, Any]:
    """The single-run summary of one series (plus its id), or its id and the reason it has none."""
    head: dict[str, Any] = {"series_id": series.series_id, "identifier": series.identifier}
    if run is not None and run.runner.options.global_model:
        head["global_model"] = {
            "member": run.global_member,
            "fitted_on_series": run.global_series,
            "excluded": run.global_reason,
        }
    if run is None:
        return {**head, "champion": None, "reason": series.reason, "scores": []}
    if run.failure is not None:
        return {**head, "champion": None, "reason": run.failure, "scores": []}
    out = run.runner.outcome
    out.marks.setdefault("trained", out.marks.get("selected", time.monotonic()))
    try:
        summary = build_summary(run.runner.options, out, store, t0=t0, t_infra=t_infra)
    except Exception as exc:  # one unreadable record must not lose the other series' results
        log.exception("summary of %s failed", series.identifier)
        return {**head, "champion": None, "reason": f"summary failed: {exc}", "scores": []}
    from flts.run.flow import write_summary

    write_summary(run.runner.options, summary)
    from flts.run.explain import brief_explanation

    # No champion: the evaluation's reason; a champion that gains little: why, in short.
    reason = (
        brief_explanation(summary) if summary.get("champion") else summary.get("no_champion_reason")
    )
    return {**summary, **head, "reason": reason}
