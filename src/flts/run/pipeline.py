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
from typing import Any, Literal, Protocol

from flts.domain.config import ModelType
from flts.errors import FltsError
from flts.infra import procs
from flts.run.monitor import ObservedEvent, TopicMonitor
from flts.services.wiring import reuses_port, service_command, service_env
from flts.settings import pipeline_topics
from flts.stages.ports import ObjectStore

log = logging.getLogger(__name__)

#: Trainer services of the spec's mapping table (flts.services.wiring), per model type.
TRAIN_SERVICES = {
    ModelType.GRU: "train-gru",
    ModelType.LSTM: "train-lstm",
    ModelType.PROPHET: "nonml-prophet",
    # Issue 10's model families (services in flts.services.wiring.SPEC_SERVICES).
    ModelType.LINEAR: "train-linear",
    ModelType.LIGHTGBM: "train-lightgbm",
    ModelType.MSTL: "nonml-mstl",
}
TOPICS = pipeline_topics()
WATCHED_TOPICS = [
    TOPICS.training_data,
    TOPICS.model_training,
    TOPICS.model_selected,
    TOPICS.performance_eval,
    TOPICS.progress,
    TOPICS.global_results,
    *TOPICS.dead_letter,
]


def wanted_partitions(options: RunOptions) -> int:
    """Partitions for the topics: the largest replica count, or KAFKA_TOPIC_PARTITIONS if larger.

    Replicas beyond a topic's partitions only stand by. Sets KAFKA_TOPIC_PARTITIONS in this
    process so that a stack started by this run creates its topics with that many.
    """
    import os

    from flts.settings import KafkaSettings, load_settings

    configured = load_settings(KafkaSettings, bootstrap_servers="-").topic_partitions
    partitions = max([configured, *options.replicas.values()])
    if partitions > configured:
        os.environ["KAFKA_TOPIC_PARTITIONS"] = str(partitions)
    return partitions


def prepare_topics(bootstrap: str, options: RunOptions, env: dict[str, str]) -> int:
    """Create missing topics with :func:`wanted_partitions` partitions; the services get the
    same KAFKA_TOPIC_PARTITIONS in ``env`` for any topic they create themselves. Topics that
    exist keep their count (tansu cannot add partitions). Returns the count asked for."""
    from flts.kafka_utils import ensure_topics, topic_names

    partitions = wanted_partitions(options)
    ensure_topics(bootstrap, topic_names(), partitions=partitions)
    env["KAFKA_TOPIC_PARTITIONS"] = str(partitions)
    return partitions


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
    #: Horizon step (1-based) the forecast plot shows.
    plot_step: int = 1
    #: Prediction-interval levels the trainers calibrate (None: TrainConfig's default 80, 95).
    interval_levels: tuple[int, ...] | None = None
    #: Processes per service (consumer-group members), by service name; absent means one.
    replicas: dict[str, int] = field(default_factory=dict)
    #: Extra env for every service (e.g. the live loop's LIVE_*/DRIFT_* settings).
    service_env: dict[str, str] = field(default_factory=dict)
    #: Fleets only: also fit one GLOBAL_LINEAR model across the series (``--global-model``);
    #: eval then waits for it per series and picks each champion among local and global.
    global_model: bool = False


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
    #: The run's training-data claim as observed (what a global training request carries).
    claim: dict[str, Any] | None = None
    #: Model type -> its trainer's FAILED event: the model could not be trained on this data,
    #: and the run went on with the others.
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)


#: A service that crashes this often within the window is in a crash loop: the run gives up.
MAX_CRASHES = 10
CRASH_WINDOW_S = 300.0
#: Backoff before a restart: doubles with each recent crash, up to the cap.
RESTART_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0

Verdict = Literal["take", "skip", "hold"]
#: Events the run must see happen during the run itself (older ones belong to earlier runs).
_FRESH_ONLY = frozenset({TOPICS.training_data, TOPICS.progress})


def run_event_verdict(event: ObservedEvent, *, started_ms: int, config_hash: str | None) -> Verdict:
    """Does an observed event of this identifier belong to this run?

    Failures (DLQ records), progress and the preprocess claim count only when produced during
    the run: an earlier run of the same identifier left its own. Results of the lineage
    (SUCCESS, promotion, batch forecast) count when they carry this run's config_hash, also from
    an earlier run: a rerun of the same data reuses them instead of producing them again. Until
    preprocess has named the config_hash such results are held.
    """
    if event.topic.startswith("DLQ-") or event.topic in _FRESH_ONLY:
        return "take" if event.timestamp_ms >= started_ms else "skip"
    if config_hash is None:
        return "hold"
    return "take" if event.value.get("config_hash") == config_hash else "skip"


class EventWaiter:
    """Consumes observed events until ``done``; restarts crashed services with backoff."""

    def __init__(
        self,
        monitor: TopicMonitor,
        services: list[procs.ManagedProcess],
        display: RunDisplay,
        deadline: float,
    ) -> None:
        self.monitor = monitor
        self.services = services
        self.display = display
        self.deadline = deadline
        self.restarts: dict[str, int] = {}
        self._crashes: dict[str, list[float]] = {}
        self._due: dict[str, float] = {}

    def until(self, done: Callable[[], bool], handle: Callable[[ObservedEvent], None]) -> None:
        while not done():
            self._check_services()
            if time.monotonic() > self.deadline:
                raise PipelineFailed("timed out waiting for the pipeline (see the service logs)")
            try:
                event = self.monitor.events.get(timeout=0.25)
            except queue.Empty:
                continue
            handle(event)

    def _check_services(self) -> None:
        now = time.monotonic()
        for i, svc in enumerate(self.services):
            rc = svc.exited()
            if rc is None:
                continue
            due = self._due.get(svc.name)
            if due is None:
                recent = [t for t in self._crashes.get(svc.name, []) if now - t < CRASH_WINDOW_S]
                self._crashes[svc.name] = [*recent, now]
                if len(recent) + 1 >= MAX_CRASHES:
                    raise PipelineFailed(
                        f"service {svc.name} exited with code {rc}, its {len(recent) + 1}th "
                        f"crash in {CRASH_WINDOW_S:.0f}s (a crash loop); "
                        f"log {svc.log_path}:\n{svc.log_tail()}"
                    )
                delay = min(MAX_BACKOFF_S, RESTART_BACKOFF_S * 2 ** len(recent))
                self._due[svc.name] = now + delay
                self.display.note(
                    f"service {svc.name} exited with code {rc}; restarting in {delay:.0f}s"
                )
            elif now >= due:
                del self._due[svc.name]
                self.restarts[svc.name] = self.restarts.get(svc.name, 0) + 1
                self.services[i] = procs.restart(svc)
                log.warning("restarted service %s (pid %d)", svc.name, self.services[i].pid)


#: Dead-letter topic -> the stage whose failure lands there.
DLQ_STAGE = {
    TOPICS.preprocess_dlq: "preprocess",
    f"DLQ-{TOPICS.preprocess_requests}": "preprocess",
    f"DLQ-{TOPICS.training_data}": "train",
    f"DLQ-{TOPICS.model_training}": "train",
    f"DLQ-{TOPICS.model_selected}": "evaluate",
    f"DLQ-{TOPICS.inference_data}": "inference",
    f"DLQ-{TOPICS.performance_eval}": "inference",
    f"DLQ-{TOPICS.global_requests}": "train-global",
}


#: How long a trainer's DLQ record may wait for the FAILED event that explains it (the trainer
#: sends it right after; the monitor reads the two topics side by side). Past that the DLQ
#: record fails the run, as any other stage's does.
FAILED_EVENT_GRACE_S = 20.0


def _describe_dlq(event: ObservedEvent) -> str:
    stage = DLQ_STAGE.get(event.topic, event.topic)
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
        self.services: list[procs.ManagedProcess] = []
        #: Kafka timestamps before this belong to earlier runs (1 s of slack for clock rounding).
        self.started_ms = int(time.time() * 1000) - 1000
        self._held: list[ObservedEvent] = []
        #: Service name -> how often the run restarted it after a crash.
        self.restarts: dict[str, int] = {}
        #: Batch forecasts seen, by the run_id of the model that made them.
        self._forecasts: dict[str, dict[str, Any]] = {}
        #: This run's trainer DLQ records (when seen, the record) and FAILED events.
        self._trainer_dlq: list[tuple[float, ObservedEvent]] = []
        self._fresh_failures = 0

    # -- services -----------------------------------------------------------------------------

    def _spawn(self, spec_name: str, log_name: str, *extra_args: str, **overrides: str) -> None:
        """Start ``spec_name`` once per replica (``RunOptions.replicas``), each in its group."""
        env = service_env(spec_name, {**self.base_env, **self.options.service_env}, **overrides)
        logs = self.options.run_dir / "logs"
        argv = [*service_command(spec_name), *extra_args]
        count = self.options.replicas.get(spec_name, 1)
        for replica in range(1, count + 1):
            name = log_name if replica == 1 else f"{log_name}-{replica}"
            # One process per HTTP port unless they share it (API_REUSE_PORT): later inference
            # replicas use the next ones.
            shared = reuses_port(env)
            if spec_name == "inference" and replica > 1 and "API_PORT" in overrides and not shared:
                env = {**env, "API_PORT": str(int(overrides["API_PORT"]) + replica - 1)}
            self.services.append(procs.start(name, argv, env, logs, ready_dir=logs))

    def start_services(self) -> None:
        """The trainers, eval and inference of the spec's mapping table, one process each."""
        opts = self.options
        # One torch thread per trainer: parallel trainers on few cores slow down badly when
        # each one also spreads over every core (measured 7x slower per batch).
        epochs = {"EPOCHS": str(opts.epochs)} if opts.epochs else {}
        epochs["TORCH_THREADS"] = "1"
        if opts.interval_levels:
            epochs["INTERVAL_LEVELS"] = ",".join(str(level) for level in opts.interval_levels)
        self._skip_earlier_runs()
        for model in opts.models:
            self._spawn(TRAIN_SERVICES[model], f"train-{model.value.lower()}", **epochs)
        expected_types = [m.value for m in opts.models]
        if opts.global_model:
            levels = {k: v for k, v in epochs.items() if k == "INTERVAL_LEVELS"}
            self._spawn("train-global", "train-global", **levels)
            expected_types.append(ModelType.GLOBAL_LINEAR.value)
        self._spawn("preprocess", "preprocess", "--listen")
        expected = ",".join(expected_types)
        self._spawn("eval", "eval", EXPECTED_MODEL_TYPES=expected)
        self._spawn("inference", "inference", API_PORT=str(opts.api_port))

    def _trainer_subscriptions(self) -> list[tuple[str, str]]:
        """(consumer group, input topic) of each trainer this run starts."""
        env = {**self.base_env, **self.options.service_env}
        # Both trainer services read CONSUMER_TOPIC when it is set, as their settings do.
        found = [
            (
                service_env(TRAIN_SERVICES[model], env)["CONSUMER_GROUP_ID"],
                env.get("CONSUMER_TOPIC", TOPICS.training_data),
            )
            for model in self.options.models
        ]
        if self.options.global_model:
            group = service_env("train-global", env)["CONSUMER_GROUP_ID"]
            found.append((group, env.get("CONSUMER_TOPIC", TOPICS.global_requests)))
        return found

    def _skip_earlier_runs(self) -> None:
        """Trainers start past earlier runs' records (``flts.run.backlog``), with a note."""
        from flts.run.backlog import skip_earlier_records

        skipped = skip_earlier_records(
            self.base_env["KAFKA_BOOTSTRAP_SERVERS"], self._trainer_subscriptions(), self.started_ms
        )
        for moved in skipped:
            self.display.note(
                f"{moved.group}: {moved.records} record(s) of earlier runs on {moved.topic} "
                "skipped (this run trains on its own data only)"
            )

    def request_preprocess(self, store: ObjectStore) -> None:
        """Upload the CSVs and ask the preprocess service (on-request mode) to process them."""
        from flts.kafka_utils import create_producer, produce_message
        from flts.services.preprocess import build_config, request_for

        opts = self.options
        config = build_config(opts.preprocess_config_json, opts.time_col, opts.target)
        request = request_for(store, opts.identifier, opts.train_csv, opts.test_csv, config)
        producer = create_producer(bootstrap_servers=self.base_env["KAFKA_BOOTSTRAP_SERVERS"])
        topic = TOPICS.preprocess_requests
        if not produce_message(producer, topic, request, key=opts.identifier):
            raise PipelineFailed("stage preprocess: the request was not confirmed by the broker")
        self.outcome.marks["requested"] = time.monotonic()

    # -- following the run --------------------------------------------------------------------

    def observe(self, event: ObservedEvent) -> None:
        """Route one event of this identifier: skip other runs', fail on this run's DLQ records."""
        verdict = run_event_verdict(
            event, started_ms=self.started_ms, config_hash=self.outcome.config_hash
        )
        if verdict == "hold":
            self._held.append(event)
            return
        if verdict == "skip":
            return
        if event.topic.startswith("DLQ-"):
            if DLQ_STAGE.get(event.topic) != "train":
                raise PipelineFailed(_describe_dlq(event))
            # A model that cannot be trained on this data: its FAILED event follows, and the
            # run goes on with the other models (overdue_failure() if it does not come).
            self._trainer_dlq.append((time.monotonic(), event))
            return
        known = self.outcome.config_hash
        self._handle(event)
        if known is None and self.outcome.config_hash is not None:
            held, self._held = self._held, []
            for earlier in held:
                self.observe(earlier)

    def _handle(self, event: ObservedEvent) -> None:
        value, out = event.value, self.outcome
        if event.topic == TOPICS.progress:
            self._handle_progress(value)
        elif event.topic == TOPICS.training_data and "preprocessed" not in out.marks:
            out.config_hash = value.get("config_hash")
            out.claim = value
            out.marks["preprocessed"] = time.monotonic()
        elif event.topic == TOPICS.model_training and value.get("status") == "SUCCESS":
            model = str(value.get("model_type"))
            if model not in out.trained:
                out.trained[model] = value
                out.config_hash = str(value.get("config_hash"))
                self.display.trained(model, float(value.get("test_rmse", float("nan"))))
                out.marks[f"trained:{model}"] = time.monotonic()
        elif event.topic == TOPICS.model_training and value.get("status") == "FAILED":
            model = str(value.get("model_type"))
            if event.timestamp_ms >= self.started_ms:
                self._fresh_failures += 1
            if model not in out.failed and model not in out.trained:
                out.failed[model] = value
                self.display.note(
                    f"{model}: training failed ({value.get('error_type')}: "
                    f"{value.get('error_details')}); the run goes on with the other models"
                )
        elif event.topic == TOPICS.model_selected and out.selected is None:
            out.selected = value
            out.marks["selected"] = time.monotonic()
            self.display.phase("inference", f"champion {value.get('model_type')}")
        elif event.topic == TOPICS.performance_eval:
            # Topics are read side by side: after a rebalance the monitor may see the batch
            # forecast before the promotion it answers (found by the chaos suite's network cut).
            self._forecasts[str(value.get("run_id"))] = value
        selected = out.selected
        if selected is not None and out.performance is None:
            champion = self._forecasts.get(str(selected.get("run_id")))
            if champion is not None:
                out.performance = champion
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

    def overdue_failure(self, now: float | None = None) -> str | None:
        """A trainer DLQ record of this run that no FAILED event explained in time, described
        (the trainer died between the two, or the failure was the platform's); else None."""
        unexplained = self._trainer_dlq[self._fresh_failures :]
        if not unexplained:
            return None
        seen, event = unexplained[0]
        if (time.monotonic() if now is None else now) - seen < FAILED_EVENT_GRACE_S:
            return None
        return _describe_dlq(event)

    def training_settled(self) -> bool:
        """Every expected model trained or failed; raises when none can be ranked."""
        out = self.outcome
        expected = {m.value for m in self.options.models}
        if not expected <= set(out.trained) | set(out.failed):
            return False
        if not out.trained:
            reasons = "; ".join(
                f"{m}: {v.get('error_type')}: {v.get('error_details')}"
                for m, v in sorted(out.failed.items())
            )
            raise PipelineFailed(f"stage train failed for every model ({reasons})")
        return True

    def _unless_overdue(self, done: Callable[[], bool]) -> Callable[[], bool]:
        def check() -> bool:
            reason = self.overdue_failure()
            if reason is not None:
                raise PipelineFailed(reason)
            return done()

        return check

    def follow(self, monitor: TopicMonitor) -> RunOutcome:
        opts, out = self.options, self.outcome
        waiter = EventWaiter(
            monitor, self.services, self.display, time.monotonic() + opts.timeout_s
        )
        expected = {m.value for m in opts.models}
        waiter.until(lambda: "preprocessed" in out.marks, self.observe)
        self.display.phase("training", ", ".join(sorted(expected)))
        waiter.until(self._unless_overdue(self.training_settled), self.observe)
        out.marks["trained"] = time.monotonic()
        self.display.phase("evaluation", "scoring against persistence and seasonal naive")
        waiter.until(
            self._unless_overdue(lambda: out.selected is not None or out.no_champion is not None),
            self.observe,
        )
        if out.selected is not None:
            waiter.until(lambda: out.performance is not None, self.observe)
        self.restarts = dict(waiter.restarts)
        return out
