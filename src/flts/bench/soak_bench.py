"""Soak benchmark: /predict load for ten minutes while a full pipeline run goes through the
same services, sampling every service's memory (RSS), open file descriptors and threads.

A first run on a slice leaves the services up with a champion (so the API answers from the
start); then 4 clients POST /predict without pause while a second run on the full bundled data
is driven through the same running services (its champion is hot-swapped in under load). Every
5 s each service process is sampled from /proc. Target: no growth after warm-up: the median of
the last fifth of the samples is within 10 % of the median of the second fifth (RSS) and within
+5 (open files, threads), for every service. Quick mode: one minute, slices only.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, make_result
from flts.chaos.faults import TriggerDisplay
from flts.chaos.load import PredictLoad
from flts.chaos.runner import MODELS, SLICE_CONFIG, make_slices
from flts.datasets import bundled_test_csv, bundled_train_csv
from flts.infra import procs
from flts.infra.components import StackPorts
from flts.infra.procs import free_port
from flts.infra.stack import LocalStack
from flts.run.flow import execute_run
from flts.run.monitor import TopicMonitor
from flts.run.pipeline import WATCHED_TOPICS, PipelineRunner, RunOptions

SAMPLE_EVERY_S = 5.0
RSS_GROWTH_MAX = 1.10
COUNT_GROWTH_MAX = 5


def sample(pid: int) -> dict[str, int] | None:
    """RSS (KiB), open file descriptors and threads of one process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "fds": fds,
        "threads": int(fields["Threads"]),
    }


def growth(series: list[dict[str, int]]) -> dict[str, float]:
    """Last fifth against the second fifth (the first is warm-up), per measure."""
    n = len(series)
    fifth = max(1, n // 5)
    early, late = series[fifth : 2 * fifth], series[-fifth:]
    out: dict[str, float] = {}
    for key in ("rss_kib", "fds", "threads"):
        before = statistics.median(s[key] for s in early)
        after = statistics.median(s[key] for s in late)
        out[key] = after / before if key == "rss_kib" else after - before
    return out


def run(options: BenchOptions) -> list[BenchResult]:
    timer = Timer()
    duration = 60.0 if options.quick else 600.0
    with tempfile.TemporaryDirectory(prefix="flts-bench-soak-") as tmp_name:
        figures = _soak(Path(tmp_name), duration, options.quick)
    met = all(
        g["rss_kib"] <= RSS_GROWTH_MAX
        and g["fds"] <= COUNT_GROWTH_MAX
        and g["threads"] <= COUNT_GROWTH_MAX
        for g in figures["growth"].values()
    ) and bool(figures["full_run_completed"])
    return [
        make_result(
            "soak",
            timer,
            quick=options.quick,
            config={"duration_s": duration, "sample_every_s": SAMPLE_EVERY_S, "clients": 4},
            figures=figures,
            target={
                "description": "no growth after warm-up under /predict load during a full "
                "pipeline run: RSS last/second fifth <= 1.10, open files and threads +5 at most",
                "rss_growth_max": RSS_GROWTH_MAX,
                "count_growth_max": COUNT_GROWTH_MAX,
            },
            target_met=met,
            notes=["growth: median of the last fifth of samples vs the second fifth"],
        )
    ]


def _soak(tmp: Path, duration: float, quick: bool) -> dict[str, Any]:
    train_slice, test_slice = make_slices(tmp / "data")
    stack = LocalStack(tmp / "stack", StackPorts.free())
    captured: list[PipelineRunner] = []
    first = RunOptions(
        identifier=f"soak-warm-{uuid.uuid4().hex[:6]}",
        train_csv=train_slice,
        test_csv=test_slice,
        run_dir=tmp / "run-warm",
        stack_dir=stack.data_dir,
        models=MODELS,
        epochs=2,
        keep_running=True,
        api_port=free_port(),
        preprocess_config_json=json.dumps(SLICE_CONFIG),
    )
    stack.up()
    try:
        summary = execute_run(first, TriggerDisplay(), on_started=captured.append)
        services = captured[0].services
        load = PredictLoad(str(summary["api_url"]), test_slice, "time").start()
        series: dict[str, list[dict[str, int]]] = {s.name: [] for s in services}
        stop = threading.Event()

        def sampler() -> None:
            while not stop.wait(SAMPLE_EVERY_S):
                for svc in services:
                    got = sample(svc.pid)
                    if got is not None:
                        series[svc.name].append(got)

        thread = threading.Thread(target=sampler, name="soak-sampler")
        thread.start()
        started = time.monotonic()
        full_ok = _full_run(tmp, stack, captured[0], quick)
        time.sleep(max(0.0, duration - (time.monotonic() - started)))
        stop.set()
        thread.join()
        load.stop()
    finally:
        if captured:
            procs.stop_all(captured[0].services)
        stack.down()
    statuses = [s for _, s in load.outcomes]
    return {
        "requests": len(statuses),
        "requests_per_s": round(len(statuses) / duration, 1),
        "non_200": sum(s != 200 for s in statuses),
        "status_counts": {str(k): statuses.count(k) for k in sorted(set(statuses))},
        "full_run_completed": full_ok,
        "samples": {name: len(v) for name, v in series.items()},
        "growth": {name: growth(v) for name, v in series.items() if len(v) >= 5},
        "last_sample": {name: v[-1] for name, v in series.items() if v},
    }


def _full_run(tmp: Path, stack: LocalStack, warm: PipelineRunner, quick: bool) -> bool:
    """A second pipeline run through the services already up (the full bundled data)."""
    from flts.adapters.s3 import S3ObjectStore

    options = RunOptions(
        identifier=f"soak-full-{uuid.uuid4().hex[:6]}",
        train_csv=tmp / "data" / "train.csv" if quick else bundled_train_csv(),
        test_csv=tmp / "data" / "test.csv" if quick else bundled_test_csv(),
        run_dir=tmp / "run-full",
        stack_dir=stack.data_dir,
        models=MODELS,
        epochs=2 if quick else None,
        preprocess_config_json=json.dumps(SLICE_CONFIG) if quick else None,
    )
    endpoints = stack.endpoints()
    runner = PipelineRunner(options, endpoints.service_env(), TriggerDisplay())
    runner.services = warm.services
    monitor = TopicMonitor(endpoints.kafka_bootstrap, WATCHED_TOPICS, options.identifier)
    monitor.start()
    try:
        monitor.assigned.wait(timeout=30)
        runner.request_preprocess(S3ObjectStore(endpoints.s3_settings()))
        outcome = runner.follow(monitor)
    finally:
        monitor.stop()
    return outcome.performance is not None
