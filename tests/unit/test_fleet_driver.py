"""The fleet driver: events routed to their series, a failed series does not stop the others."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import pytest

from flts.domain.config import ModelType
from flts.run.fleet import FleetSeries, SeriesRun, _follow, series_options
from flts.run.monitor import ObservedEvent
from flts.run.pipeline import TOPICS, PipelineRunner, RunOptions


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)

    def phase(self, name: str, detail: str = "") -> None:
        self.lines.append(f"{name}: {detail}")

    def trained(self, model_type: str, rmse: float) -> None:
        self.lines.append(model_type)

    def epoch(self, model_type: str, epoch: int, epochs: int, val_loss: float | None) -> None:
        return None


class Events:
    def __init__(self, events: list[ObservedEvent]) -> None:
        self.events: queue.Queue[ObservedEvent] = queue.Queue()
        for e in events:
            self.events.put(e)


def _ev(topic: str, identifier: str, **value: Any) -> ObservedEvent:
    now = int(time.time() * 1000) + 5000
    return ObservedEvent(topic, None, {"identifier": identifier, **value}, now)


def _series(tmp_path: Path, name: str) -> FleetSeries:
    return FleetSeries(name, f"fleet/{name}", tmp_path / "a.csv", tmp_path / "b.csv", "{}")


def test_events_reach_their_series_and_one_failure_is_only_that_series(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b: a trainer DLQ record nothing explains (fails once the grace is over); d: a model that
    could not be trained (DLQ record and FAILED), so eval decided without it."""
    monkeypatch.setattr("flts.run.pipeline.FAILED_EVENT_GRACE_S", 0.2)
    base = RunOptions("fleet", tmp_path, tmp_path, tmp_path, tmp_path, models=(ModelType.LINEAR,))
    display = Notes()
    runs = {}
    for name in ("a", "b", "c", "d"):
        series = _series(tmp_path, name)
        runner = PipelineRunner(series_options(base, series), {}, display)  # type: ignore[arg-type]
        runs[series.identifier] = SeriesRun(series, runner)
    events = [
        _ev(TOPICS.training_data, "fleet/a", config_hash="ha"),
        _ev(TOPICS.training_data, "fleet/b", config_hash="hb"),
        _ev(TOPICS.training_data, "fleet/c", config_hash="hc"),
        _ev("DLQ-model-training", "fleet/b", operation="train", error_details="boom"),
        _ev(TOPICS.model_training, "fleet/a", status="SUCCESS", model_type="LINEAR",
            config_hash="ha", run_id="ra", test_rmse=1.0),
        _ev(TOPICS.model_training, "fleet/c", status="SUCCESS", model_type="LINEAR",
            config_hash="hc", run_id="rc", test_rmse=1.0),
        _ev(TOPICS.progress, "fleet/c", stage="eval", message="no champion promoted: no model"),
        _ev(TOPICS.model_selected, "fleet/a", config_hash="ha", run_id="ra", model_type="LINEAR"),
        _ev(TOPICS.performance_eval, "fleet/a", config_hash="ha", run_id="ra"),
        _ev(TOPICS.model_selected, "other/a", config_hash="ha", run_id="zz"),
        _ev(TOPICS.training_data, "fleet/d", config_hash="hd"),
        _ev("DLQ-model-training", "fleet/d", operation="train LINEAR", error_details="bad"),
        _ev(TOPICS.model_training, "fleet/d", status="FAILED", model_type="LINEAR",
            config_hash="hd", error_type="ForecastError", error_details="bad"),
        _ev(TOPICS.progress, "fleet/d", stage="eval",
            message="no champion promoted: no model was trained (LINEAR: ...)"),
    ]  # fmt: skip
    master = PipelineRunner(base, {}, display)  # type: ignore[arg-type]
    _follow(runs, master, Events(events), display, timeout_s=10)  # type: ignore[arg-type]
    a, b, c, d = (runs[f"fleet/{n}"] for n in "abcd")
    assert a.runner.outcome.performance is not None
    assert a.runner.outcome.selected is not None
    assert a.runner.outcome.selected["run_id"] == "ra"
    assert b.failure is not None
    assert "stage train failed" in b.failure
    assert c.failure is None
    assert c.runner.outcome.no_champion is not None
    assert c.runner.outcome.no_champion.startswith("no champion")
    assert "trained" in a.runner.outcome.marks
    assert d.failure is None
    assert list(d.runner.outcome.failed) == ["LINEAR"]
    assert "trained" in d.runner.outcome.marks
    assert d.runner.outcome.no_champion == (
        "no champion promoted: no model was trained (LINEAR: ...)"
    )


def test_a_series_without_a_result_times_out_alone(tmp_path: Path) -> None:
    base = RunOptions("fleet", tmp_path, tmp_path, tmp_path, tmp_path, models=(ModelType.LINEAR,))
    series = _series(tmp_path, "slow")
    runner = PipelineRunner(series_options(base, series), {}, Notes())  # type: ignore[arg-type]
    runs = {series.identifier: SeriesRun(series, runner)}
    master = PipelineRunner(base, {}, Notes())  # type: ignore[arg-type]
    _follow(runs, master, Events([]), Notes(), timeout_s=0.3)  # type: ignore[arg-type]
    assert runs[series.identifier].failure == "no result within --timeout 0.3 s"


def test_series_options_give_each_series_its_own_identifier_and_folder(tmp_path: Path) -> None:
    base = RunOptions("fleet", tmp_path, tmp_path, tmp_path / "run", tmp_path, keep_running=True)
    options = series_options(base, _series(tmp_path, "a"))
    assert options.identifier == "fleet/a"
    assert options.run_dir == tmp_path / "run" / "series" / "a"
    assert options.keep_running is False
    with pytest.raises(ValueError, match="no CSV pair"):
        series_options(base, FleetSeries("x", "fleet/x", None, None, None, "empty"))
