"""The faults, as scenario functions over a :class:`Chaos` context, and what they record.

Each scenario waits for its moment in the run (the first training epoch, the preprocess request,
the promotion...), injects the fault for real and heals it the way an operator would
(`flts stack up` restarts only what is down; the run's supervisor restarts crashed services).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flts.chaos.proxy import TcpProxy
from flts.infra.stack import LocalStack
from flts.run.pipeline import PipelineRunner

log = logging.getLogger(__name__)


class TriggerDisplay:
    """The run's display, recording when things happened so faults can be timed against them."""

    def __init__(self) -> None:
        self.first_epoch = threading.Event()
        self.times: list[tuple[float, str]] = []

    def _seen(self, what: str) -> None:
        self.times.append((time.monotonic(), what))

    def phase(self, name: str, detail: str = "") -> None:
        self._seen(f"phase {name}")

    def epoch(self, model_type: str, epoch: int, epochs: int, val_loss: float | None) -> None:
        self._seen(f"{model_type} epoch {epoch}")
        self.first_epoch.set()

    def trained(self, model_type: str, rmse: float) -> None:
        self._seen(f"{model_type} trained")

    def note(self, text: str) -> None:
        self._seen(text)

    def first_after(self, t: float) -> float | None:
        return next((when for when, _ in self.times if when > t), None)


@dataclass
class Chaos:
    """What a scenario acts on, and its record of faults (monotonic times)."""

    stack: LocalStack
    display: TriggerDisplay
    proxy: TcpProxy | None = None
    runner: PipelineRunner | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    faults: list[str] = field(default_factory=list)
    healed_at: list[float] = field(default_factory=list)
    fault_at: list[float] = field(default_factory=list)
    _injector: threading.Thread | None = field(default=None, repr=False)

    def wait(self, predicate: Callable[[], bool], timeout_s: float = 600.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        return False

    def marked(self, mark: str) -> Callable[[], bool]:
        """True once the run's driver recorded ``mark`` (requested, trained, selected...)."""
        return lambda: self.runner is not None and mark in self.runner.outcome.marks

    def starter(self, inject: Callable[[Chaos], None]) -> Callable[[PipelineRunner], None]:
        """The run's ``on_started`` hook: remember its runner, then inject in a thread."""

        def on_started(runner: PipelineRunner) -> None:
            self.runner = runner
            self._injector = threading.Thread(target=inject, args=(self,), name="chaos-injector")
            self._injector.start()

        return on_started

    def finish(self) -> None:
        """Tell the injector the run ended and wait for it (at most 2 minutes)."""
        self.stop.set()
        if self._injector is not None and self._injector.is_alive():
            self._injector.join(timeout=120)

    def fault(self, text: str) -> None:
        self.fault_at.append(time.monotonic())
        self.faults.append(text)
        log.warning("chaos: %s", text)

    def healed(self) -> None:
        self.healed_at.append(time.monotonic())

    def outage(self, component: str, seconds: float) -> None:
        """Stop a stack component, wait, then `flts stack up` (restarts only what is down)."""
        self.fault(f"{component} stopped for {seconds:.0f}s")
        self.stack.stop_component(component)
        self.stop.wait(seconds)
        self.stack.up()
        self.healed()


def broker_kill(c: Chaos) -> None:
    """a. The broker SIGKILLed mid-training, restarted by `flts stack up`."""
    if not c.wait(c.display.first_epoch.is_set):
        return
    c.fault("broker SIGKILLed mid-training")
    c.stack.signal("kafka", signal.SIGKILL)
    c.stop.wait(3.0)
    c.stack.up()
    c.healed()


def s3_outage(c: Chaos) -> None:
    """b. S3 stopped for 20 s mid-preprocess and again mid-batch-inference."""
    if c.wait(c.marked("requested")):
        c.outage("seaweedfs", 20.0)
    if c.wait(c.marked("selected")):
        c.outage("seaweedfs", 20.0)


def mlflow_outage(c: Chaos) -> None:
    """c. MLflow down for 20 s during training and again during promotion."""
    if c.wait(c.display.first_epoch.is_set):
        c.outage("mlflow", 20.0)
    if c.wait(c.marked("trained")):
        c.outage("mlflow", 20.0)


def network_cut(c: Chaos) -> None:
    """d. Every connection to the broker cut for 15 s mid-training, then healed."""
    assert c.proxy is not None
    if not c.wait(c.display.first_epoch.is_set):
        return
    c.fault("network to the broker cut for 15s")
    c.proxy.cut()
    c.stop.wait(15.0)
    c.proxy.heal()
    c.healed()


def random_kills(c: Chaos, kills: int = 20, every_s: float = 2.0, seed: int = 7) -> None:
    """e. ``kills`` SIGKILLs of random services over the run; the run's supervisor restarts
    them with backoff."""
    rng = random.Random(seed)
    if not c.wait(lambda: c.runner is not None and "requested" in c.runner.outcome.marks):
        return
    for _ in range(kills):
        if c.stop.wait(every_s) or c.runner is None:
            return
        live = [s for s in c.runner.services if s.exited() is None]
        if not live:
            continue
        victim = rng.choice(live)
        c.fault(f"SIGKILL {victim.name}")
        import os

        try:
            os.killpg(victim.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    c.healed()
