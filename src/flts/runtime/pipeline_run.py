"""`flts run`: the whole event-driven pipeline on one machine.

Brings up the local stack if needed, starts the services of the spec as processes, runs the
one-shot preprocess service, then follows the run's events on Kafka until the champion is
promoted and batch inference is done. Every stage talks only through Kafka and claim checks;
this module only watches and reports.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from flts.domain.config import ModelType
from flts.errors import FltsError
from flts.runtime import supervisor
from flts.runtime.monitor import ObservedEvent, TopicMonitor
from flts.runtime.services import service_command, service_env
from flts.stages.ports import ObjectStore

log = logging.getLogger(__name__)

#: Trainer services of the spec's mapping table (flts.runtime.services), per model type.
TRAIN_SERVICES = {
    ModelType.GRU: "train-gru",
    ModelType.LSTM: "train-lstm",
    ModelType.PROPHET: "nonml-prophet",
    # Issue 10's model families (services in flts.runtime.services.SPEC_SERVICES).
    ModelType.LINEAR: "train-linear",
    ModelType.LIGHTGBM: "train-lightgbm",
    ModelType.MSTL: "nonml-mstl",
}
WATCHED_TOPICS = [
    "training-data",
    "model-training",
    "model-selected",
    "performance-eval",
    "flts-progress",
    "DLQ-preprocess",
    "DLQ-preprocess-requests",
    "DLQ-training-data",
    "DLQ-model-training",
    "DLQ-model-selected",
    "DLQ-inference-data",
    "DLQ-performance-eval",
]


class PipelineFailed(FltsError):
    """A stage of the run failed; the message names the stage and its error."""


class RunDisplay(Protocol):
    def phase(self, name: str, detail: str = "") -> None: ...

    def epoch(self, model_type: str, epoch: int, epochs: int, val_loss: float | None) -> None: ...

    def trained(self, model_type: str, rmse: float) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass
class RunOptions:
    identifier: str
    train_csv: Path
    test_csv: Path
    run_dir: Path
    stack_dir: Path
    models: tuple[ModelType, ...] = (ModelType.GRU, ModelType.LSTM, ModelType.PROPHET)
    time_col: str = "time"
    target: str = "down"
    epochs: int | None = None
    keep_running: bool = False
    api_port: int = 18000
    timeout_s: float = 1800.0
    preprocess_config_json: str | None = None


@dataclass
class RunOutcome:
    """What the run observed on Kafka, plus wall-clock phase boundaries (monotonic seconds)."""

    config_hash: str | None = None
    trained: dict[str, dict[str, Any]] = field(default_factory=dict)
    selected: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    preprocess_work_s: float | None = None
    #: Why eval promoted nothing (no model beat persistence); the run then ends without inference.
    no_champion: str | None = None
    marks: dict[str, float] = field(default_factory=dict)


class EventWaiter:
    """Consumes observed events until ``done``; fails fast on DLQ records and dead services."""

    def __init__(
        self,
        monitor: TopicMonitor,
        services: list[supervisor.ServiceProcess],
        display: RunDisplay,
        deadline: float,
    ) -> None:
        self.monitor = monitor
        self.services = services
        self.display = display
        self.deadline = deadline

    def until(self, done: Callable[[], bool], handle: Callable[[ObservedEvent], None]) -> None:
        while not done():
            self._check_services()
            if time.monotonic() > self.deadline:
                raise PipelineFailed("timed out waiting for the pipeline (see the service logs)")
            try:
                event = self.monitor.events.get(timeout=0.25)
            except queue.Empty:
                continue
            if event.topic.startswith("DLQ-"):
                raise PipelineFailed(_describe_dlq(event))
            handle(event)

    def _check_services(self) -> None:
        for svc in self.services:
            rc = svc.exited()
            if rc is not None:
                raise PipelineFailed(
                    f"service {svc.name} exited with code {rc}; "
                    f"log {svc.log_path}:\n{svc.log_tail()}"
                )


def _describe_dlq(event: ObservedEvent) -> str:
    stage = {
        "DLQ-preprocess": "preprocess",
        "DLQ-preprocess-requests": "preprocess",
        "DLQ-training-data": "train",
        "DLQ-model-training": "train",
        "DLQ-model-selected": "evaluate",
        "DLQ-inference-data": "inference",
        "DLQ-performance-eval": "inference",
    }.get(event.topic, event.topic)
    value = event.value
    return (
        f"stage {stage} failed ({event.topic}): {value.get('operation', '?')}: "
        f"{value.get('error_details', value)}"
    )


class PipelineRunner:
    """Drives one run: services up, preprocess, then follow events to the batch forecast."""

    def __init__(self, options: RunOptions, base_env: dict[str, str], display: RunDisplay) -> None:
        self.options = options
        self.base_env = base_env
        self.display = display
        self.outcome = RunOutcome()
        self.services: list[supervisor.ServiceProcess] = []

    # -- services -----------------------------------------------------------------------------

    def _spawn(self, spec_name: str, log_name: str, **overrides: str) -> None:
        env = service_env(spec_name, self.base_env, **overrides)
        self.services.append(
            supervisor.spawn(
                log_name, service_command(spec_name), env, self.options.run_dir / "logs"
            )
        )

    def start_services(self) -> None:
        """The trainers, eval and inference of the spec's mapping table, one process each."""
        opts = self.options
        # One torch thread per trainer: parallel trainers on few cores slow down badly when
        # each one also spreads over every core (measured 7x slower per batch).
        epochs = {"EPOCHS": str(opts.epochs)} if opts.epochs else {}
        epochs["TORCH_THREADS"] = "1"
        for model in opts.models:
            self._spawn(TRAIN_SERVICES[model], f"train-{model.value.lower()}", **epochs)
        self.services.append(
            supervisor.spawn(
                "preprocess",
                [*service_command("preprocess"), "--listen"],
                service_env("preprocess", self.base_env),
                opts.run_dir / "logs",
            )
        )
        expected = ",".join(m.value for m in opts.models)
        self._spawn("eval", "eval", EXPECTED_MODEL_TYPES=expected)
        self._spawn("inference", "inference", API_PORT=str(opts.api_port))

    def request_preprocess(self, store: ObjectStore) -> None:
        """Upload the CSVs and ask the preprocess service (on-request mode) to process them."""
        from flts.kafka_utils import PREPROCESS_REQUEST_TOPIC, create_producer, produce_message
        from flts.runtime.svc_preprocess import build_config, request_for

        opts = self.options
        config = build_config(opts.preprocess_config_json, opts.time_col, opts.target)
        request = request_for(store, opts.identifier, opts.train_csv, opts.test_csv, config)
        producer = create_producer(bootstrap_servers=self.base_env["KAFKA_BOOTSTRAP_SERVERS"])
        if not produce_message(producer, PREPROCESS_REQUEST_TOPIC, request, key=opts.identifier):
            raise PipelineFailed("stage preprocess: the request was not confirmed by the broker")
        self.outcome.marks["requested"] = time.monotonic()

    # -- following the run --------------------------------------------------------------------

    def _handle(self, event: ObservedEvent) -> None:
        value, out = event.value, self.outcome
        if event.topic == "flts-progress":
            self._handle_progress(value)
        elif event.topic == "training-data" and "preprocessed" not in out.marks:
            out.config_hash = value.get("config_hash")
            out.marks["preprocessed"] = time.monotonic()
        elif event.topic == "model-training" and value.get("status") == "SUCCESS":
            model = str(value.get("model_type"))
            if model not in out.trained:
                out.trained[model] = value
                out.config_hash = str(value.get("config_hash"))
                self.display.trained(model, float(value.get("test_rmse", float("nan"))))
                out.marks[f"trained:{model}"] = time.monotonic()
        elif event.topic == "model-selected" and out.selected is None:
            out.selected = value
            out.marks["selected"] = time.monotonic()
            self.display.phase("inference", f"champion {value.get('model_type')}")
        elif event.topic == "performance-eval" and self._is_champion_inference(value):
            out.performance = value
            out.marks["inferred"] = time.monotonic()

    def _handle_progress(self, value: dict[str, Any]) -> None:
        stage = value.get("stage")
        if stage == "train" and value.get("epoch") is not None:
            self.display.epoch(
                str(value.get("model_type")),
                int(value["epoch"]),
                int(value.get("epochs") or value["epoch"]),
                value.get("val_loss"),
            )
        elif stage == "preprocess" and value.get("duration_s") is not None:
            self.outcome.preprocess_work_s = value.get("duration_s")
        elif stage == "eval":
            message = str(value.get("message", ""))
            self.display.note(f"eval: {message}")
            if message.startswith("no champion"):
                self.outcome.no_champion = message
                self.outcome.marks["selected"] = time.monotonic()

    def _is_champion_inference(self, value: dict[str, Any]) -> bool:
        selected = self.outcome.selected
        return selected is not None and value.get("run_id") == selected.get("run_id")

    def follow(self, monitor: TopicMonitor) -> RunOutcome:
        opts, out = self.options, self.outcome
        waiter = EventWaiter(
            monitor, self.services, self.display, time.monotonic() + opts.timeout_s
        )
        expected = {m.value for m in opts.models}
        waiter.until(lambda: "preprocessed" in out.marks, self._handle)
        self.display.phase("training", ", ".join(sorted(expected)))
        waiter.until(lambda: expected <= set(out.trained), self._handle)
        out.marks["trained"] = time.monotonic()
        self.display.phase("evaluation", "scoring against persistence and seasonal naive")
        waiter.until(lambda: out.selected is not None or out.no_champion is not None, self._handle)
        if out.selected is not None:
            waiter.until(lambda: out.performance is not None, self._handle)
        return out
