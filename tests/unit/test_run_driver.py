"""The `flts run` driver's own decisions: which observed events belong to the run, and restarting
a crashed service with backoff (on real child processes)."""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flts.infra import procs
from flts.run.monitor import ObservedEvent
from flts.run.pipeline import (
    TOPICS,
    EventWaiter,
    PipelineFailed,
    run_event_verdict,
)

START = 1_700_000_000_000


def event(topic: str, ts: int, **value: Any) -> ObservedEvent:
    return ObservedEvent(topic=topic, key=None, value={"identifier": "x", **value}, timestamp_ms=ts)


@pytest.mark.parametrize(
    ("ev", "config_hash", "verdict"),
    [
        (event("DLQ-model-training", START - 5000), None, "skip"),  # an earlier run's failure
        (event("DLQ-model-training", START + 5), None, "take"),
        (event(TOPICS.progress, START - 1), "h", "skip"),
        (event(TOPICS.training_data, START - 1, config_hash="h"), None, "skip"),
        (event(TOPICS.training_data, START + 1, config_hash="h"), None, "take"),
        (event(TOPICS.model_selected, START - 9000, config_hash="h"), None, "hold"),
        (event(TOPICS.model_selected, START - 9000, config_hash="h"), "h", "take"),  # reused
        (event(TOPICS.model_selected, START + 9, config_hash="other"), "h", "skip"),
        (event(TOPICS.performance_eval, START + 9, config_hash="h"), "h", "take"),
    ],
)
def test_run_event_verdict(ev: ObservedEvent, config_hash: str | None, verdict: str) -> None:
    assert run_event_verdict(ev, started_ms=START, config_hash=config_hash) == verdict


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)

    def phase(self, name: str, detail: str = "") -> None:
        self.lines.append(f"{name}: {detail}")

    def trained(self, model_type: str, rmse: float) -> None:
        self.lines.append(model_type)


class NoEvents:
    events: queue.Queue[ObservedEvent] = queue.Queue()


def test_a_crashed_service_is_restarted_with_backoff_then_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flts.run.pipeline.RESTART_BACKOFF_S", 0.05)
    monkeypatch.setattr("flts.run.pipeline.MAX_CRASHES", 4)
    crasher = procs.start("svc", [sys.executable, "-c", "raise SystemExit(3)"], {}, tmp_path)
    services = [crasher]
    display = Notes()
    waiter = EventWaiter(NoEvents(), services, display, time.monotonic() + 30)  # type: ignore[arg-type]
    with pytest.raises(PipelineFailed, match="exited with code 3, its 4th crash"):
        waiter.until(lambda: False, lambda _e: None)
    assert waiter.restarts == {"svc": 3}
    assert services[0].pid != crasher.pid  # replaced in place: the run stops the live one
    assert sum("restarting in" in line for line in display.lines) == 3  # backoff 0.05, 0.1, 0.2


def test_the_champions_forecast_seen_before_its_promotion_still_ends_the_run(
    tmp_path: Path,
) -> None:
    """After a rebalance the monitor rereads topics side by side, in any order."""
    from flts.run.pipeline import PipelineRunner, RunOptions

    options = RunOptions("x", tmp_path / "a.csv", tmp_path / "b.csv", tmp_path, tmp_path)
    runner = PipelineRunner(options, {}, Notes())  # type: ignore[arg-type]
    runner.outcome.config_hash = "h"
    fresh = int(time.time() * 1000)
    runner.observe(event(TOPICS.performance_eval, fresh, config_hash="h", run_id="r1"))
    assert runner.outcome.performance is None
    runner.observe(event(TOPICS.model_selected, fresh, config_hash="h", run_id="r1"))
    assert runner.outcome.performance is not None
    assert runner.outcome.performance["run_id"] == "r1"


def _runner(tmp_path: Path, models: str = "GRU,LSTM") -> Any:
    from flts.domain.config import ModelType
    from flts.run.pipeline import PipelineRunner, RunOptions

    options = RunOptions(
        "x",
        tmp_path / "a.csv",
        tmp_path / "b.csv",
        tmp_path,
        tmp_path,
        models=tuple(ModelType.parse(m) for m in models.split(",")),
    )
    runner = PipelineRunner(options, {}, Notes())  # type: ignore[arg-type]
    runner.outcome.config_hash = "h"
    return runner


def _trainer_dlq(ts: int) -> ObservedEvent:
    return ObservedEvent(
        topic="DLQ-model-training",
        key=None,
        value={
            "operation": "train GRU",
            "error_details": "ForecastError: cannot fit",
            "payload": {"identifier": "x", "config_hash": "h"},
        },
        timestamp_ms=ts,
    )


def _failed(ts: int, model: str = "GRU") -> ObservedEvent:
    return event(
        TOPICS.model_training,
        ts,
        config_hash="h",
        model_type=model,
        status="FAILED",
        error_type="ForecastError",
        error_details="cannot fit",
        dlq_topic="DLQ-model-training",
    )


def test_a_model_that_failed_to_train_does_not_stop_the_run(tmp_path: Path) -> None:
    """The trainer's DLQ record and its FAILED event, in either order: the run waits for the
    other models only, and names the failure."""
    runner = _runner(tmp_path)
    fresh = int(time.time() * 1000)
    runner.observe(_trainer_dlq(fresh))  # no longer a PipelineFailed
    assert not runner.training_settled()
    runner.observe(_failed(fresh))
    assert runner.overdue_failure(now=time.monotonic() + 3600) is None  # explained
    assert not runner.training_settled()  # LSTM still to come
    lstm = {"model_type": "LSTM", "status": "SUCCESS", "test_rmse": 1.0}
    runner.observe(event(TOPICS.model_training, fresh, config_hash="h", **lstm))
    assert runner.training_settled()
    assert list(runner.outcome.failed) == ["GRU"]
    assert any(
        "GRU: training failed (ForecastError: cannot fit)" in n for n in runner.display.lines
    )


def test_a_trainer_dlq_record_without_its_failed_event_fails_the_run_after_the_grace(
    tmp_path: Path,
) -> None:
    from flts.run.pipeline import FAILED_EVENT_GRACE_S

    runner = _runner(tmp_path)
    runner.observe(_trainer_dlq(int(time.time() * 1000)))
    assert runner.overdue_failure() is None
    reason = runner.overdue_failure(now=time.monotonic() + FAILED_EVENT_GRACE_S + 1)
    assert reason is not None
    assert "stage train failed" in reason
    assert "cannot fit" in reason
    # An earlier run's FAILED (same lineage, older timestamp) explains nothing of this run.
    runner.observe(_failed(START))
    assert runner.overdue_failure(now=time.monotonic() + FAILED_EVENT_GRACE_S + 1) is not None


def test_when_every_model_failed_the_run_fails_naming_each(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    fresh = int(time.time() * 1000)
    runner.observe(_failed(fresh, "GRU"))
    runner.observe(_failed(fresh, "LSTM"))
    with pytest.raises(PipelineFailed, match=r"every model \(GRU: ForecastError: cannot fit; LSTM"):
        runner.training_settled()


def test_other_stages_dlq_records_still_fail_the_run_at_once(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    dlq = ObservedEvent(
        topic="DLQ-model-selected",
        key=None,
        value={"operation": "evaluate", "error_details": "boom", "payload": {"identifier": "x"}},
        timestamp_ms=int(time.time() * 1000),
    )
    with pytest.raises(PipelineFailed, match="stage evaluate failed"):
        runner.observe(dlq)
